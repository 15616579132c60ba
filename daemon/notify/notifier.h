// Notifier: tells people when something happened, through a job's `notify:` (a JSON POST to
// notify.webhook):
//   - on_change: a URL's content changed (its first fetch is not news);
//   - failing_streak: N runs in a row where every URL failed ("failing"), and the first run
//     that succeeds after it ("recovered").
// Deliveries go through Politeness like any request (the host's rate, Retry-After, the job's
// timeouts and retries); a delivery that fails is an error row (url = the webhook).
// Loop-thread only.
#pragma once

#include <asio/awaitable.hpp>
#include <cstdint>
#include <map>
#include <string>

#include "config/config.h"
#include "daemon/core/metrics.h"
#include "daemon/core/row_sink.h"
#include "daemon/crawl/politeness.h"

namespace scraperd::daemon {

// How a run ended, as far as notifications care.
struct RunOutcome {
  std::int64_t run_id = 0;
  int ok = 0;
  int failed = 0;
  int cancelled = 0;
  std::string last_error;  // the daemon's last error line, for "failing"
};

class Notifier {
 public:
  // `failing`: job → runs in a row where every URL failed, as persisted.
  Notifier(Politeness& politeness, RowSink& rows, Metrics& metrics,
           std::map<std::string, int> failing)
      : politeness_(politeness), rows_(rows), metrics_(metrics), failing_(std::move(failing)) {}

  // After each run of a job with notify.failing_streak.
  asio::awaitable<void> run_ended(const config::Job& job, RunOutcome run);

  // A URL of `job` changed from (`previous_data`, `previous_hash`) to (`data`, `hash`):
  // the delivery to await (or spawn) when the job has notify.on_change.
  asio::awaitable<void> changed(const config::Job& job, std::int64_t run_id, const std::string& url,
                                const std::string& previous_data, const std::string& previous_hash,
                                const std::string& data, const std::string& hash);

 private:
  asio::awaitable<void> deliver(const config::Job& job, std::string payload, std::int64_t run_id);

  Politeness& politeness_;
  RowSink& rows_;
  Metrics& metrics_;
  std::map<std::string, int> failing_;
};

}  // namespace scraperd::daemon
