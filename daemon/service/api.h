// The daemon's HTTP API (cpp-httplib's server on its own threads, JSON via nlohmann-json).
//
//   GET  /                            this list, as JSON; a browser (Accept: text/html) is
//                                     sent to /ui/
//   GET  /ui/, /ui/job, /ui/errors    the dashboard (daemon/ui/, embedded); /ui/login its form
//   GET  /healthz                     200 "ok" (never needs the token)
//   GET  /metrics                     Prometheus text format
//   GET  /api/status                  the daemon: pid, since, job file, runs going on (live
//                                     progress), the writer's queue, the last reload
//   GET  /api/jobs                    jobs by name: state, schedule, last run, status, next due;
//                                     ?q=TEXT&state=S filter every job, then ?offset=&limit=
//                                     page them (X-Total-Count: how many matched); ?recent=N
//                                     adds each job's last N run durations and last change
//   GET  /api/jobs/NAME               one job and its latest runs
//   GET  /api/jobs/NAME/results       ?since=1h&limit=N&changed=1&latest=1&previous=1 (404 for
//                                     an unknown job)
//   GET  /api/results                 ?job=NAME&since=1h&limit=N&changed=1&latest=1&previous=1
//   GET  /api/runs                    ?job=NAME&since=1h&limit=N
//   GET  /api/errors                  ?job=NAME&kind=K&since=1h&limit=N
//   GET  /api/errors/groups           ?job=NAME: errors of 24 h by job, kind, host; 1 h/24 h counts
//   GET  /api/jobs/NAME/series        ?since=7d&limit=N&points=P: numeric field values over
//                                     time (storage's field_values)
//   GET  /api/cluster                 the nodes on this PostgreSQL database: id, job files' hash,
//                                     heartbeat age, live, leases, groups and hosts owned;
//                                     `warnings` when hashes differ (404 on SQLite)
//   POST /api/reload                  reload the job files; 200 with the outcome
//   POST /api/jobs/NAME/run           run the job now (202), 404 unknown, 409 running or paused,
//                                     or owned by another node (named)
//   POST /api/jobs/NAME/pause         pause the job (persisted), 200; 404 unknown
//   POST /api/jobs/NAME/resume        resume it, 200; 404 unknown
//
// NAME is percent-decoded ("a%2Fb" is the job "a/b"). A path of another method answers 405
// with Allow; a POST needs no body and no Content-Length. Queries open the database read-only
// per request, so the event loop is never involved; reload, run and pause are handed to the
// loop through `ApiHooks`. With a token configured, every path but /healthz needs
// "Authorization: Bearer TOKEN" (the scheme in any case) or the dashboard's login cookie; a
// request that sends Origin (a browser) must come from the daemon's own origin to change
// anything, and needs a token. Listens on loopback by default.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/core/metrics.h"
#include "daemon/schedule/scheduler.h"
#include "storage/writer.h"

namespace scraperd::daemon {

struct ReloadOutcome {
  bool ok = false;
  std::vector<std::string> errors;  // file:line:col: ... when not ok
};

enum class Pause { kDone, kAlready, kUnknownJob };

// What the daemon says of itself in /api/status (the API adds the writer's figures and the
// runs going on, from the database).
struct DaemonStatus {
  std::string since;        // when it started, "2026-12-03T10:15:00Z"
  std::string config_path;  // the job file
  int jobs = 0;             // jobs scheduled
  int paused = 0;           // of them, paused
  int requests_in_flight = 0;
  bool last_reload_ok = true;
  std::string last_reload_at;  // "" when there was none
  std::vector<std::string> last_reload_errors;
};

struct ApiHooks {
  std::function<ReloadOutcome()> reload;                  // blocks until the reload is done
  std::function<RunNow(const std::string& job)> run_now;  // blocks until the loop answered
  // Pauses (true) or resumes a job of the daemon: persisted first (throws storage::Error
  // when it cannot be), then the scheduler is told. Blocks until the loop answered.
  std::function<Pause(const std::string& job, bool pause)> set_paused;
  // The job file the daemon runs now (for /api/jobs: removed and never-run jobs).
  std::function<std::shared_ptr<const config::Config>()> config;
  std::function<DaemonStatus()> status;  // blocks until the loop answered
  // On PostgreSQL (several nodes, daemon/cluster/): the node that owns `job`'s hosts when it
  // is another one ("" when it is this one), and GET /api/cluster's JSON body. Unset on SQLite.
  std::function<std::string(const std::string& job)> owner_elsewhere;
  std::function<std::string()> cluster;
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
