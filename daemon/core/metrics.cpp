#include "daemon/core/metrics.h"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

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

// The standard process_* metrics of Prometheus' client libraries, from /proc.
std::string process_metrics() {
  std::string out;
  auto gauge = [&](const char* name, const char* type, const char* help, double value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  std::ifstream stat_file("/proc/self/stat");
  std::string stat((std::istreambuf_iterator<char>(stat_file)), std::istreambuf_iterator<char>());
  // Fields after the command name, which is in parentheses and may hold spaces: field 3 on.
  std::vector<std::string> fields;
  if (auto close = stat.rfind(')'); close != std::string::npos) {
    std::istringstream rest(stat.substr(close + 1));
    for (std::string f; rest >> f;) fields.push_back(f);
  }
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  auto field = [&](std::size_t n) {  // n: the 1-based field number of proc(5)
    return n >= 3 && n - 3 < fields.size() ? std::strtod(fields[n - 3].c_str(), nullptr) : 0.0;
  };
  if (fields.size() >= 22) {
    gauge("process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds.",
          (field(14) + field(15)) / ticks);
    gauge("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", field(23));
    gauge("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
          field(24) * page);
    double boot = 0;
    std::ifstream proc_stat("/proc/stat");
    for (std::string line; std::getline(proc_stat, line);)
      if (line.starts_with("btime ")) boot = std::strtod(line.c_str() + 6, nullptr);
    gauge("process_start_time_seconds", "gauge",
          "Start time of the process since unix epoch in seconds.", boot + field(22) / ticks);
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec))
    ++fds;
  if (!ec) gauge("process_open_fds", "gauge", "Number of open file descriptors.", double(fds));
  if (rlimit limit{}; getrlimit(RLIMIT_NOFILE, &limit) == 0)
    gauge("process_max_fds", "gauge", "Maximum number of open file descriptors.",
          double(limit.rlim_cur));
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

void Metrics::run_ended(const std::string& job, const std::string& status, int count) {
  std::lock_guard lock(mu_);
  runs_[{job, status}] += static_cast<std::uint64_t>(count);
}

void Metrics::changed(const std::string& job) {
  std::lock_guard lock(mu_);
  ++changes_[job];
}

void Metrics::webhook(const std::string& job, const std::string& outcome) {
  std::lock_guard lock(mu_);
  ++webhooks_[{job, outcome}];
}

std::string Metrics::render(const WriterFigures& writer) const {
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

  header("scraperd_build_info", "gauge", "Always 1; the version of scraperd in its label.");
  out += fmt::format("scraperd_build_info{{version=\"{}\"}} 1\n", label(SCRAPERD_VERSION));
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
  out += fmt::format("scraperd_writer_queue_rows {}\n", writer.rows_queued);
  header("scraperd_writer_committed_rows_total", "counter", "Rows committed to the database.");
  out += fmt::format("scraperd_writer_committed_rows_total {}\n", writer.rows_committed);
  header("scraperd_writer_commit_failures_total", "counter",
         "Commits that failed (busy or full disk); the rows are kept and retried.");
  out += fmt::format("scraperd_writer_commit_failures_total {}\n", writer.commit_failures);
  header("scraperd_runs_total", "counter",
         "Job runs ended, by job and status (ok, partial, failed, cancelled, skipped).");
  for (const auto& [key, n] : runs_)
    out += fmt::format("scraperd_runs_total{{job=\"{}\",status=\"{}\"}} {}\n", label(key.first),
                       label(key.second), n);
  header("scraperd_changes_total", "counter",
         "Fetches whose content differed from the last one stored for the URL, by job.");
  for (const auto& [job, n] : changes_)
    out += fmt::format("scraperd_changes_total{{job=\"{}\"}} {}\n", label(job), n);
  header("scraperd_webhook_deliveries_total", "counter",
         "Webhook attempts by job and outcome (ok, retried, failed).");
  for (const auto& [key, n] : webhooks_)
    out += fmt::format("scraperd_webhook_deliveries_total{{job=\"{}\",outcome=\"{}\"}} {}\n",
                       label(key.first), label(key.second), n);
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
  out += process_metrics();
  return out;
}

}  // namespace scraperd::daemon
