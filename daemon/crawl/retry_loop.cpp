#include "daemon/crawl/retry_loop.h"

#include <spdlog/spdlog.h>

#include "daemon/crawl/retry.h"

namespace scraperd::daemon {
namespace {

double seconds(Steady::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

asio::awaitable<Sent> RetryLoop::send(const RetryPlan& plan) {
  int retries_used = 0;
  std::chrono::milliseconds stalled{0};
  Sent sent;
  for (int attempt = 1;; ++attempt) {
    sent.attempt = attempt;
    auto asked = Steady::now();
    auto permit = co_await frontier_.acquire(plan.host, plan.limits);
    // The attempt's time is when it goes out, after its wait for the host (or when it stopped
    // waiting): a rate-limited host's pages are stamped as they were fetched, not queued.
    sent.sent_at = storage::Clock::now();
    if (auto waited = Steady::now() - asked; waited > std::chrono::milliseconds(1))
      metrics_.waited(seconds(waited));
    if (!permit) {
      sent.end = Sent::End::kNotSent;
      co_return sent;
    }
    FetchRequest request = plan.request();
    auto sent_now = [this] {  // fetches and rendered pages
      return static_cast<int>(fetcher_.in_flight() + (renderer_ ? renderer_->loading() : 0));
    };
    metrics_.in_flight = sent_now() + 1;
    if (plan.render && renderer_)
      sent.result = co_await renderer_->render(std::move(request), *plan.render);
    else
      sent.result = co_await fetcher_.fetch(std::move(request));
    metrics_.in_flight = sent_now();
    const FetchResult& r = sent.result;
    if (r.error_kind == "cancelled") {  // the daemon is stopping and cut the drain short
      sent.end = Sent::End::kCut;
      co_return sent;
    }
    if (!plan.counted_job.empty())
      metrics_.request(plan.counted_job, plan.host,
                       !r.ok()           ? r.error_kind
                       : r.status >= 400 ? std::string("http")
                                         : "ok",
                       seconds(r.elapsed));
    permit = {};  // the host's slot is free as soon as the response is in
    if (plan.done(r)) {
      sent.end = Sent::End::kDone;
      co_return sent;
    }

    // What next: a server that asks for a pause gets it, without using up a retry; other
    // transient failures are retried after a backoff.
    std::string next;
    std::chrono::milliseconds wait{-1};
    if (r.ok() && (r.status == 429 || r.status == 503) && !r.retry_after.empty()) {
      auto pause = retry_after(r.retry_after, std::chrono::system_clock::now());
      if (!pause) {
        next = "; Retry-After '" + r.retry_after + "' is not seconds or a date: ignored";
      } else if (stalled + *pause > plan.retries.max_stall) {
        next =
            fmt::format("; Retry-After {}s would stall this request past {}s (retries.max_stall)",
                        pause->count(), seconds(plan.retries.max_stall));
      } else {
        stalled += *pause;
        frontier_.pause(plan.host, Steady::now() + *pause);
        next = fmt::format("; Retry-After: {} paused for {}s", plan.host, pause->count());
        wait = std::chrono::milliseconds(0);  // acquire() waits out the pause
      }
    }
    if (wait.count() < 0 && retries_used < plan.retries.max &&
        retryable(plan.retries, r.error_kind, r.status)) {
      ++retries_used;
      std::uniform_real_distribution<double> u(0.0, 1.0);
      wait = backoff(plan.retries, retries_used, u(random_));
      next +=
          fmt::format("; retry {} of {} in {:.1f}s", retries_used, plan.retries.max, seconds(wait));
    }
    const bool last = wait.count() < 0;
    Attempt failed{attempt, sent.sent_at, r, std::move(next), last};
    if (std::optional<storage::Row> row = plan.failed(failed))
      co_await rows_.store(std::move(*row));
    if (last) {
      sent.end = Sent::End::kFailed;
      co_return sent;
    }
    if (!co_await naps_.nap(wait)) {
      sent.end = Sent::End::kRetryNotSent;
      sent.attempt = attempt + 1;
      sent.sent_at = storage::Clock::now();
      co_return sent;
    }
  }
}

}  // namespace scraperd::daemon
