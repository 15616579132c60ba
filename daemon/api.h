// The daemon's HTTP API (cpp-httplib's server on its own threads, JSON via nlohmann-json).
//
//   GET  /healthz                     200 "ok" (never needs the token)
//   GET  /metrics                     Prometheus text format
//   GET  /api/jobs                    every job: schedule, last run, status, next due
//   GET  /api/jobs/NAME               one job and its latest runs
//   GET  /api/jobs/NAME/results       ?since=1h&limit=N&changed=1
//   GET  /api/errors                  ?job=NAME&kind=K&since=1h&limit=N
//   POST /api/reload                  reload the job files; 200 with the outcome
//   POST /api/jobs/NAME/run           run the job now (202), 404 unknown, 409 already running
//
// Queries open the database read-only per request, so the event loop is never involved;
// reload and run are handed to the loop through `ApiHooks`. With a token configured, every
// path but /healthz needs "Authorization: Bearer TOKEN". Listens on loopback by default.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/metrics.h"
#include "storage/writer.h"

namespace scraperd::daemon {

struct ReloadOutcome {
  bool ok = false;
  std::vector<std::string> errors;  // file:line:col: ... when not ok
};

enum class RunNow { kStarted, kUnknownJob, kAlreadyRunning };

struct ApiHooks {
  std::function<ReloadOutcome()> reload;                  // blocks until the reload is done
  std::function<RunNow(const std::string& job)> run_now;  // blocks until the loop answered
};

class Api {
 public:
  Api(config::Api settings, std::string db_path, Metrics& metrics, const storage::Writer& writer,
      ApiHooks hooks);
  ~Api();  // stops serving
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;

  // Binds `settings.listen` (port 0: any free port) and serves on a thread of its own.
  // False, with `error` set, when the address cannot be bound.
  bool start(std::string* error);
  int port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace scraperd::daemon
