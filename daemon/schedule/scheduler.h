// Scheduler: when each job runs. Holds a slot per job, one queue of slots ordered by wake-up
// time (due time plus jitter) and one coroutine that sleeps on a single timer set to the
// earliest; starts runs (through the RunJob it was given: it knows nothing of HTTP), records
// due points passed during a run as skipped, persists each job's next due time, and applies a
// reload by job name (apply()). Pure rules of due times: schedule.h. Loop-thread only.
//
//   Scheduler scheduler(io.get_executor(), {.rows = rows, .metrics = metrics}, options,
//                       [&](const config::Job& job, TimePoint due) {
//                         return crawler.run(job, due);
//                       });
//   co_await scheduler.start(config);  // every job queued
//   co_await scheduler.wait();         // until stop(), or with `once` every job ran once
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/system_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>

#include "config/config.h"
#include "daemon/core/metrics.h"
#include "daemon/core/row_sink.h"
#include "daemon/core/task_group.h"
#include "daemon/schedule/schedule.h"

namespace scraperd::daemon {

// What asking a job to run now came to.
enum class RunNow { kStarted, kUnknownJob, kAlreadyRunning, kPaused };

// What a claim (SchedulerOptions::claim) decided for a run.
struct ClaimAnswer {
  bool run = true;
  // Not run: the job's due time as the cluster knows it (another node ran it); unset: the
  // schedule's next point.
  std::optional<TimePoint> due;
};

struct SchedulerOptions {
  bool once = false;  // every job runs once, now; then wait() returns
  // Each job's next due time as persisted by the last daemon (jobs.next_due).
  std::map<std::string, TimePoint> persisted_due;
  std::set<std::string> paused;  // jobs paused in the database (`scraperd pause`)
  // Several daemons on one database (daemon/cluster/): asked before every run, `due` the
  // run's due time, `next` the schedule's point after it, `scheduled` false for a run now.
  // The run starts only when the answer says so. Set, the cluster keeps jobs.next_due (the
  // scheduler does not persist it). Unset (one daemon alone): every run starts.
  std::function<asio::awaitable<ClaimAnswer>(const config::Job& job, TimePoint due, TimePoint next,
                                             bool scheduled)>
      claim;
};

class Scheduler {
 public:
  // Runs `job` due at `due`; the scheduler waits for it before queuing the job again.
  using RunJob = std::function<asio::awaitable<void>(const config::Job& job, TimePoint due)>;

  Scheduler(asio::any_io_executor executor, RowSink& rows, Metrics& metrics,
            SchedulerOptions options, RunJob run_job);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Registers `config`'s jobs (jobs rows) and queues each one not paused.
  asio::awaitable<void> start(std::shared_ptr<const config::Config> config);
  // Until stop() and the end of every run, or (once) until every job has run.
  asio::awaitable<void> wait() { return jobs_.wait(); }
  // No run starts any more; sleeping jobs end. Runs going on are not touched.
  void stop();

  // A reload: jobs matched by name. Unchanged ones keep their schedule and runs, changed ones
  // switch after their current run (at once when idle), removed ones end after their current
  // run, new ones start. Logs what changed.
  asio::awaitable<void> apply(std::shared_ptr<const config::Config> next);

  // The API's run now: wakes the job to run now; its schedule stays as it was.
  RunNow request_run(const std::string& name);
  // A paused job starts no run (the one going on finishes); a resumed one runs at its next
  // due time. replace_paused(): the whole set, as read from the database.
  void set_paused(const std::string& name, bool pause);
  void replace_paused(std::set<std::string> paused) { paused_ = std::move(paused); }
  // set_paused() calls so far: a read of the database's table taken before one is stale.
  std::uint64_t pause_changes() const { return pause_changes_; }

  // Whether `name` is a job of the current config; the current config.
  bool has_job(const std::string& name) const;
  std::shared_ptr<const config::Config> config() const { return config_; }
  int jobs() const { return static_cast<int>(slots_.size()); }
  int paused_jobs() const;

 private:
  // A job as the scheduler holds it. `config` keeps the snapshot `job` points into alive; a
  // reload leaves the job's new definition in `next` (taken when the job next wakes, or after
  // its current run) or marks it `removed`. At any moment a job is queued (waiting for its
  // time in queue_), running, or between the two; never two of these.
  struct Slot;
  using Queue = std::multimap<TimePoint, Slot*>;  // by wake-up time; equal times in FIFO order
  struct Slot {
    std::shared_ptr<const config::Config> config;
    const config::Job* job = nullptr;
    std::shared_ptr<const config::Config> next_config;
    const config::Job* next = nullptr;
    TimePoint due;  // the schedule's next point
    bool removed = false;
    bool running = false;
    bool run_now = false;                   // asked for by the API
    std::optional<Queue::iterator> queued;  // while it waits in queue_
  };

  Slot& add_slot(std::shared_ptr<const config::Config> config, const config::Job& job);
  asio::awaitable<void> register_jobs(const config::Config& config);
  bool take_next(Slot& slot);
  asio::awaitable<void> loop();
  void enqueue(Slot& slot, TimePoint at);
  void poke(Slot& slot);
  asio::awaitable<void> sleep(Slot& slot);
  asio::awaitable<void> wake(Slot& slot, TimePoint now);
  asio::awaitable<void> run_slot(Slot& slot, TimePoint due, bool scheduled);
  asio::awaitable<void> claim_slot(Slot& slot, TimePoint due, bool scheduled);
  void end_slot(Slot& slot);
  asio::awaitable<void> store_skipped(const config::Job& job, TimePoint due, int skipped);
  std::chrono::milliseconds jitter(std::chrono::milliseconds max);

  RowSink& rows_;
  Metrics& metrics_;
  const bool once_;
  const std::map<std::string, TimePoint> persisted_due_;
  RunJob run_job_;
  decltype(SchedulerOptions::claim) claim_;
  bool stopping_ = false;
  std::shared_ptr<const config::Config> config_;  // the current snapshot
  TaskGroup jobs_;                                // the scheduler's loop and the runs going on
  std::map<std::string, std::unique_ptr<Slot>> slots_;
  Queue queue_;                    // jobs waiting for their time
  asio::system_timer wake_timer_;  // the loop's, set to the earliest time in queue_
  std::set<std::string> paused_;
  std::uint64_t pause_changes_ = 0;
  std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace scraperd::daemon
