#include "daemon/metrics.h"

#include <fmt/format.h>

namespace scraperd::daemon {
namespace {

double unix_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Label values escape backslash, quote and newline (the text format's rules).
std::string label(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

void Metrics::Histogram::observe(double v) {
  for (std::size_t i = 0; i < bounds.size(); ++i)
    if (v <= bounds[i]) {
      ++counts[i];
      break;
    }
  sum += v;
  ++count;
}

void Metrics::request(const std::string& job, const std::string& host, const std::string& outcome,
                      double seconds) {
  std::lock_guard lock(mu_);
  ++requests_[{job, host, outcome}];
  duration_.observe(seconds);
}

void Metrics::run_started(double lag_seconds) {
  std::lock_guard lock(mu_);
  lag_.observe(lag_seconds);
}

void Metrics::success(const std::string& job, std::chrono::system_clock::time_point when) {
  std::lock_guard lock(mu_);
  last_success_[job] = unix_seconds(when);
}

void Metrics::waited(double seconds) {
  std::lock_guard lock(mu_);
  ++waits_;
  wait_seconds_ += seconds;
}

void Metrics::reloaded(bool ok) {
  std::lock_guard lock(mu_);
  last_reload_ok_ = ok;
  last_reload_at_ = unix_seconds(std::chrono::system_clock::now());
  ++reloads_;
}

std::string Metrics::render(std::size_t rows_queued, std::uint64_t rows_committed,
                            std::uint64_t commit_failures) const {
  std::lock_guard lock(mu_);
  std::string out;
  auto header = [&](const char* name, const char* type, const char* help) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  };
  auto histogram = [&](const char* name, const char* help, const Histogram& h) {
    header(name, "histogram", help);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < h.bounds.size(); ++i) {
      cumulative += h.counts[i];
      out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, h.bounds[i], cumulative);
    }
    out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, h.count, name,
                       h.sum, name, h.count);
  };

  header("scraperd_requests_total", "counter", "Requests by job, host and outcome (ok or kind).");
  for (const auto& [key, n] : requests_) {
    const auto& [job, host, outcome] = key;
    out += fmt::format("scraperd_requests_total{{job=\"{}\",host=\"{}\",outcome=\"{}\"}} {}\n",
                       label(job), label(host), label(outcome), n);
  }
  histogram("scraperd_request_duration_seconds", "Time from sending a request to its last byte.",
            duration_);
  histogram("scraperd_scheduler_lag_seconds", "How late runs started after their due time.", lag_);
  header("scraperd_requests_in_flight", "gauge", "Requests sent and not yet answered.");
  out += fmt::format("scraperd_requests_in_flight {}\n", in_flight.load());
  header("scraperd_jobs", "gauge", "Jobs scheduled.");
  out += fmt::format("scraperd_jobs {}\n", jobs.load());
  header("scraperd_rate_limit_waits_total", "counter",
         "Requests that waited for their host's limits.");
  out += fmt::format("scraperd_rate_limit_waits_total {}\n", waits_);
  header("scraperd_rate_limit_wait_seconds_total", "counter", "Time spent waiting on limits.");
  out += fmt::format("scraperd_rate_limit_wait_seconds_total {}\n", wait_seconds_);
  header("scraperd_writer_queue_rows", "gauge", "Rows waiting to be committed.");
  out += fmt::format("scraperd_writer_queue_rows {}\n", rows_queued);
  header("scraperd_writer_committed_rows_total", "counter", "Rows committed to the database.");
  out += fmt::format("scraperd_writer_committed_rows_total {}\n", rows_committed);
  header("scraperd_writer_commit_failures_total", "counter",
         "Commit attempts that failed (the rows are kept and retried).");
  out += fmt::format("scraperd_writer_commit_failures_total {}\n", commit_failures);
  header("scraperd_last_success_timestamp_seconds", "gauge",
         "When each job last stored a result (unix time).");
  for (const auto& [job, at] : last_success_)
    out += fmt::format("scraperd_last_success_timestamp_seconds{{job=\"{}\"}} {:.3f}\n", label(job),
                       at);
  header("scraperd_config_last_reload_successful", "gauge",
         "1 if the last reload loaded the file (or none happened), 0 if it had errors.");
  out += fmt::format("scraperd_config_last_reload_successful {}\n", last_reload_ok_ ? 1 : 0);
  header("scraperd_config_last_reload_timestamp_seconds", "gauge",
         "When the last reload was attempted (unix time, 0: never).");
  out += fmt::format("scraperd_config_last_reload_timestamp_seconds {:.3f}\n", last_reload_at_);
  header("scraperd_config_reloads_total", "counter", "Reloads attempted.");
  out += fmt::format("scraperd_config_reloads_total {}\n", reloads_);
  return out;
}

}  // namespace scraperd::daemon
