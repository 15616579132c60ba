// What the daemon counts, for GET /metrics (Prometheus text format 0.0.4).
//
// The engine (loop thread) records; the API (its own threads) renders. Thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace scraperd::daemon {

class Metrics {
 public:
  // A request ended: `outcome` is "ok" or the error kind; `seconds` from send to last byte.
  void request(const std::string& job, const std::string& host, const std::string& outcome,
               double seconds);
  // A run started `lag_seconds` after it was due.
  void run_started(double lag_seconds);
  // A URL of `job` ended in a result at `when`.
  void success(const std::string& job, std::chrono::system_clock::time_point when);
  // A request waited `seconds` for its host's rate limit or concurrency cap.
  void waited(double seconds);
  void reloaded(bool ok);
  // `count` runs of `job` ended with `status` (ok, partial, failed, cancelled, skipped).
  void run_ended(const std::string& job, const std::string& status, int count = 1);
  // A fetch of `job` saw content different from the last one stored for its URL.
  void changed(const std::string& job);
  // A webhook attempt of `job` ended: "ok", "retried" (failed, tried again) or "failed".
  void webhook(const std::string& job, const std::string& outcome);

  std::atomic<int> in_flight{0};  // requests sent, not yet answered
  std::atomic<int> jobs{0};       // jobs scheduled

  // The writer's figures, handed to render() by the caller.
  struct WriterFigures {
    std::size_t rows_queued = 0;
    std::uint64_t rows_committed = 0;
    std::uint64_t commit_failures = 0;
  };
  // Everything, the writer's figures, build_info and the standard process_* metrics.
  std::string render(const WriterFigures& writer) const;

 private:
  struct Histogram {
    std::vector<double> bounds;
    std::vector<std::uint64_t> counts;  // per bound, not cumulative; +Inf in `count`
    double sum = 0;
    std::uint64_t count = 0;
    explicit Histogram(std::vector<double> b) : bounds(std::move(b)), counts(bounds.size()) {}
    void observe(double v);
  };

  mutable std::mutex mu_;
  std::map<std::tuple<std::string, std::string, std::string>, std::uint64_t> requests_;
  Histogram duration_{{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60}};
  Histogram lag_{{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60}};
  std::map<std::string, double> last_success_;  // job → unix seconds
  std::uint64_t waits_ = 0;
  double wait_seconds_ = 0;
  bool last_reload_ok_ = true;
  double last_reload_at_ = 0;  // unix seconds, 0: never
  std::uint64_t reloads_ = 0;
  std::map<std::pair<std::string, std::string>, std::uint64_t> runs_;      // job, status
  std::map<std::string, std::uint64_t> changes_;                           // job
  std::map<std::pair<std::string, std::string>, std::uint64_t> webhooks_;  // job, outcome
};

}  // namespace scraperd::daemon
