// The engine: one event loop, one scheduler over every job's due time, a coroutine per run,
// every request on the loop itself (libcurl's multi interface), rows to one SQLite writer.
//
//   scheduler ── a job is due ── run: fetch every URL concurrently (TaskGroup)
//        fetch ── Fetcher (curl's sockets waited on by the loop) ── result or error row
//        ── storage::Writer
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "config/config.h"

namespace scraperd::daemon {

struct RunOptions {
  std::string db_path;
  bool once = false;             // run every job once, commit, return
  std::string config_path{};     // read again on SIGHUP; empty: no reload
  bool log_level_fixed = false;  // --log-level given: a reload leaves the level alone
  // --debug-loop: log every event-loop step longer than this (0: off). See loop_watch.h.
  std::chrono::milliseconds debug_loop{0};
  // On PostgreSQL (storage.url): this node's id in the cluster (--node-id); empty: the host
  // name. See daemon/cluster/cluster.h.
  std::string node_id{};
};

// Runs the jobs of `config` until SIGINT or SIGTERM (or, with `once`, until every job has run
// once), then lets in-flight fetches finish, commits every row and returns 0 (with `once`: 3
// when some URL ended in an error). Returns 1 when the database cannot be opened or is in use
// by another run (storage/db_lock.h), when the API address cannot be bound, and when rows
// could not be committed by the end. Blocks the calling thread, which becomes the event loop.
// SIGHUP reloads `config_path`. Tells systemd READY / RELOADING / STOPPING and pings its
// watchdog (systemd.h). When the drain after SIGTERM is cut short (a second signal, or
// `shutdown_timeout`), requests still in flight are removed and recorded as cancelled, every
// row is committed, every thread joined, and it returns 0. SIGINT, SIGTERM and SIGHUP blocked by
// the caller (as `scraperd run` does from its start) are unblocked on this thread once it handles
// them.
int run(std::shared_ptr<const config::Config> config, const RunOptions& options);

// Blocks SIGINT, SIGTERM and SIGHUP on the calling thread (and the threads it starts later),
// so that one arriving before run() handles signals is held rather than killing the process.
void hold_signals();

}  // namespace scraperd::daemon
