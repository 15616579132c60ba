#include "daemon/notify/notifier.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "storage/store.h"

namespace scraperd::daemon {
namespace {

// "2026-11-27T17:50:00.123Z"
std::string iso_now() {
  std::string s = storage::format_time(std::chrono::system_clock::now());
  s[10] = 'T';
  return s + "Z";
}

nlohmann::ordered_json json_or_null(const std::string& text) {
  return text.empty() ? nlohmann::ordered_json(nullptr)
                      : nlohmann::ordered_json::parse(text, nullptr, false);
}

}  // namespace

asio::awaitable<void> Notifier::run_ended(const config::Job& job, RunOutcome run) {
  if (!job.notify || job.notify->failing_streak <= 0 || run.cancelled > 0) co_return;
  // Runs where everything failed, in a row: told once when the streak reaches the limit,
  // and once more when a run succeeds again.
  int& streak = failing_[job.name];
  const int limit = job.notify->failing_streak;
  std::string event;
  if (run.ok == 0 && run.failed > 0) {
    if (++streak == limit) event = "failing";
  } else {
    if (streak >= limit) event = "recovered";
    streak = 0;
  }
  if (event.empty()) co_return;
  nlohmann::ordered_json body = {{"event", event},
                                 {"job", job.name},
                                 {"failed_runs", event == "failing" ? limit : 0},
                                 {"last_error", run.last_error},
                                 {"time", iso_now()}};
  co_await deliver(job, body.dump(), run.run_id);
}

asio::awaitable<void> Notifier::changed(const config::Job& job, std::int64_t run_id,
                                        const std::string& url, const std::string& previous_data,
                                        const std::string& previous_hash, const std::string& data,
                                        const std::string& hash) {
  // Not a coroutine's body until the payload is built: the references are read at once.
  nlohmann::ordered_json event = {{"event", "change"},
                                  {"job", job.name},
                                  {"url", url},
                                  {"previous", json_or_null(previous_data)},
                                  {"current", json_or_null(data)},
                                  {"previous_hash", previous_hash},
                                  {"current_hash", hash},
                                  {"time", iso_now()}};
  return deliver(job, event.dump(), run_id);
}

asio::awaitable<void> Notifier::deliver(const config::Job& job, std::string payload,
                                        std::int64_t run_id) {
  const std::string webhook = job.notify->webhook;
  auto target = config::parse_url(webhook);  // validated at load
  RetryPlan plan;
  plan.host = host_key(*target);
  plan.limits = job.per_host;
  plan.retries = job.retries;
  plan.request = [&job, &webhook, &payload] {
    FetchRequest request = request_for(job, webhook);
    request.method = "POST";
    request.headers = {{"Content-Type", "application/json"}};
    request.body = payload;
    request.max_body = 1024 * 1024;
    return request;
  };
  plan.done = [](const FetchResult& r) { return r.ok() && r.status < 300; };
  plan.failed = [this, &job, &webhook, run_id](const Attempt& a) -> std::optional<storage::Row> {
    const FetchResult& r = a.result;
    storage::ErrorRow e{
        .run_id = run_id,
        .job = job.name,
        .url = webhook,
        .attempt = a.number,
        .kind = r.ok() ? "http" : r.error_kind,
        .status = std::nullopt,
        .message = "webhook: " +
                   (r.ok() ? "HTTP status " + std::to_string(r.status) : r.error_message) + a.next,
        .elapsed_ms = std::chrono::duration<double, std::milli>(r.elapsed).count(),
        .fetched_at = a.sent_at};
    if (r.status > 0) e.status = r.status;
    metrics_.webhook(job.name, a.last ? "failed" : "retried");
    spdlog::warn("job '{}': {}: {}", job.name, e.kind, rows_.shown(e.message));
    return e;
  };
  Sent sent = co_await politeness_.send(plan);
  // Stopping: a notification is not worth holding the exit for.
  if (sent.end == Sent::End::kDone) {
    metrics_.webhook(job.name, "ok");
    spdlog::info("job '{}': notified {}", job.name, rows_.shown(webhook));
  }
}

}  // namespace scraperd::daemon
