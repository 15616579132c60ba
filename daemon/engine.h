// The engine: one event loop running a coroutine per job, fetches on a thread pool, rows to
// one SQLite writer.
//
//   job coroutine ── waits until due ── run: fetch every URL concurrently (TaskGroup)
//        fetch ── cpp-httplib on the fetch pool ── result or error row ── storage::Writer
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "config/config.h"

namespace scraperd::daemon {

struct RunOptions {
  std::string db_path;
  bool once = false;  // run every job once, commit, return
  // --debug-loop: log every event-loop step longer than this (0: off). See loop_watch.h.
  std::chrono::milliseconds debug_loop{0};
};

// Runs the jobs of `config` until SIGINT or SIGTERM (or, with `once`, until every job has run
// once), then lets in-flight fetches finish, commits every row and returns 0. Returns 1 when
// the database cannot be opened. Blocks the calling thread, which becomes the event loop.
int run(std::shared_ptr<const config::Config> config, const RunOptions& options);

}  // namespace scraperd::daemon
