#include "daemon/schedule/scheduler.h"

#include <spdlog/spdlog.h>

#include <asio/experimental/as_tuple.hpp>
#include <vector>

#include "daemon/core/blocking.h"

namespace scraperd::daemon {

Scheduler::Scheduler(asio::any_io_executor executor, RowSink& rows, Metrics& metrics,
                     SchedulerOptions options, RunJob run_job)
    : rows_(rows),
      metrics_(metrics),
      once_(options.once),
      persisted_due_(std::move(options.persisted_due)),
      run_job_(std::move(run_job)),
      claim_(std::move(options.claim)),
      jobs_(executor, "scheduler"),
      wake_timer_(executor),
      paused_(std::move(options.paused)) {}

asio::awaitable<void> Scheduler::start(std::shared_ptr<const config::Config> config) {
  config_ = config;
  co_await register_jobs(*config);
  std::vector<Slot*> fresh;
  for (const auto& job : config->jobs) {
    if (job.paused)
      spdlog::info("job '{}' is paused (paused: true in {})", job.name, job.file);
    else if (once_ && paused_.contains(job.name))
      spdlog::info("job '{}' is paused (scraperd resume {})", job.name, job.name);
    else
      fresh.push_back(&add_slot(config, job));
  }
  for (const auto& name : paused_)
    if (slots_.contains(name)) spdlog::info("job '{}' is paused (scraperd resume {})", name, name);
  for (Slot* slot : fresh) co_await sleep(*slot);
  jobs_.spawn(loop());
}

void Scheduler::stop() {
  stopping_ = true;
  wake_timer_.cancel();
}

asio::awaitable<void> Scheduler::apply(std::shared_ptr<const config::Config> next) {
  std::map<std::string, const config::Job*> wanted;
  for (const auto& job : next->jobs)
    if (!job.paused) wanted[job.name] = &job;
  int unchanged = 0;
  std::vector<std::string> added, changed, removed;
  for (auto& [name, slot] : slots_) {
    auto it = wanted.find(name);
    if (it == wanted.end()) {
      if (!slot->removed) removed.push_back(name);
      slot->removed = true;
      poke(*slot);
      continue;
    }
    const config::Job& current = slot->next ? *slot->next : *slot->job;
    bool same = !slot->removed && config::same_job(current, *it->second);
    slot->removed = false;
    slot->next_config = next;
    slot->next = it->second;
    if (same) {
      ++unchanged;  // moves to the new snapshot when it next wakes, nothing else changes
    } else {
      changed.push_back(name);
      poke(*slot);
    }
    wanted.erase(it);
  }
  std::vector<Slot*> fresh;
  for (const auto& [name, job] : wanted) {
    fresh.push_back(&add_slot(next, *job));
    added.push_back(name);
  }
  for (Slot* slot : fresh) co_await sleep(*slot);
  config_ = next;
  // "2 changed (a, b)": the names, up to ten of each.
  auto named = [](const std::vector<std::string>& names, const char* what) {
    std::string text = fmt::format("{} {}", names.size(), what);
    if (names.empty()) return text;
    for (std::size_t i = 0; i < names.size() && i < 10; ++i)
      text += (i == 0 ? " (" : ", ") + names[i];
    if (names.size() > 10) text += fmt::format(" and {} more", names.size() - 10);
    return text + ")";
  };
  spdlog::info("reload: {}, {}, {}, {} unchanged", named(added, "job(s) added"),
               named(changed, "changed"), named(removed, "removed"), unchanged);
  co_await register_jobs(*next);
}

RunNow Scheduler::request_run(const std::string& name) {
  auto it = slots_.find(name);
  if (it == slots_.end() || it->second->removed || stopping_) return RunNow::kUnknownJob;
  Slot& slot = *it->second;
  if (slot.running || slot.run_now) return RunNow::kAlreadyRunning;
  if (paused_.contains(name)) return RunNow::kPaused;
  slot.run_now = true;
  poke(slot);
  return RunNow::kStarted;
}

void Scheduler::set_paused(const std::string& name, bool pause) {
  ++pause_changes_;
  if (pause ? !paused_.insert(name).second : paused_.erase(name) == 0) return;
  spdlog::info("job '{}' {}", name, pause ? "paused" : "resumed");
}

bool Scheduler::has_job(const std::string& name) const {
  if (!config_) return false;
  for (const auto& job : config_->jobs)
    if (job.name == name) return true;
  return false;
}

int Scheduler::paused_jobs() const {
  int n = 0;
  for (const auto& [name, slot] : slots_) n += paused_.contains(name) ? 1 : 0;
  return n;
}

// Adds a job, due for its first run; sleep() queues it. Two steps, so that every job is in
// slots_ before anything waits (a reload coming meanwhile finds them all).
Scheduler::Slot& Scheduler::add_slot(std::shared_ptr<const config::Config> config,
                                     const config::Job& job) {
  auto owned = std::make_unique<Slot>();
  Slot& slot = *owned;
  slot.config = std::move(config);
  slot.job = &job;
  slots_[job.name] = std::move(owned);
  metrics_.jobs = static_cast<int>(slots_.size());
  auto now = std::chrono::system_clock::now();
  auto persisted = persisted_due_.find(job.name);
  slot.due = once_ ? now
                   : first_due(job.schedule, job.name, now,
                               persisted == persisted_due_.end()
                                   ? std::nullopt
                                   : std::optional<TimePoint>(persisted->second));
  return slot;
}

asio::awaitable<void> Scheduler::register_jobs(const config::Config& config) {
  for (const auto& job : config.jobs) {
    storage::Row seen =
        storage::JobSeen{job.name, describe(job.schedule), static_cast<int>(job.urls.size()),
                         std::chrono::system_clock::now()};
    co_await rows_.store(std::move(seen));
  }
}

// Takes the definition a reload left for the job; true when its schedule changed.
bool Scheduler::take_next(Slot& slot) {
  if (!slot.next) return false;
  bool schedule_changed = !(slot.next->schedule == slot.job->schedule);
  slot.config = std::move(slot.next_config);
  slot.job = std::exchange(slot.next, nullptr);
  return schedule_changed;
}

// The one coroutine that sleeps for every job (a sleeping coroutine per job would cost ~2 KB
// each: docs/performance.md): waits for the earliest time in queue_, then wakes every job
// whose time came. Ends on stop(), and with --once when every job has run.
asio::awaitable<void> Scheduler::loop() {
  while (!stopping_ && !(once_ && slots_.empty())) {
    wake_timer_.expires_at(queue_.empty() ? TimePoint::max() : queue_.begin()->first);
    co_await wake_timer_.async_wait(asio::experimental::as_tuple(here()));
    auto now = std::chrono::system_clock::now();
    while (!stopping_ && !queue_.empty() && queue_.begin()->first <= now) {
      Slot& slot = *queue_.begin()->second;
      queue_.erase(queue_.begin());
      slot.queued.reset();
      co_await wake(slot, now);
    }
  }
}

// Puts the job in the queue at `at` (moving it when it is there already).
void Scheduler::enqueue(Slot& slot, TimePoint at) {
  if (slot.queued) queue_.erase(*slot.queued);
  slot.queued = queue_.emplace(at, &slot);
  if (*slot.queued == queue_.begin()) wake_timer_.cancel();  // earlier than the loop waits
}

// Something changed a queued job (a reload, the API): it wakes now rather than at its time.
void Scheduler::poke(Slot& slot) {
  if (slot.queued) enqueue(slot, std::chrono::system_clock::now());
}

// Queues the job for its next due time (plus jitter), or for now when something changed it
// meanwhile; ends it when its schedule has no next point.
asio::awaitable<void> Scheduler::sleep(Slot& slot) {
  if (slot.due == TimePoint::max()) {
    end_slot(slot);
    co_return;
  }
  if (!once_ && !claim_) {
    storage::Row persist = storage::JobDue{slot.job->name, slot.due};  // named: see RowSink
    co_await rows_.store(std::move(persist));
  }
  if (stopping_) co_return;
  bool changed = slot.removed || slot.run_now || slot.next;  // while the row waited
  enqueue(slot, changed ? std::chrono::system_clock::now()
                        : slot.due + jitter(slot.job->schedule.jitter));
}

// A queued job's time came, or something changed it: run it, or queue it again.
asio::awaitable<void> Scheduler::wake(Slot& slot, TimePoint now) {
  if (slot.removed) {
    end_slot(slot);
  } else if (slot.run_now) {  // an extra run, off the schedule: `due` stays where it is
    slot.run_now = false;
    slot.running = true;
    jobs_.spawn(claim_ ? claim_slot(slot, now, false) : run_slot(slot, now, false));
  } else if (take_next(slot)) {  // a reload changed its schedule: sleep on the new one
    slot.due = first_due(slot.job->schedule, slot.job->name, now, std::nullopt);
    co_await sleep(slot);
  } else if (now < slot.due) {  // woken early by a reload that kept the schedule
    co_await sleep(slot);
  } else if (paused_.contains(slot.job->name)) {  // no run; the schedule goes on
    spdlog::debug("job '{}' is paused: its run due {} does not start", slot.job->name,
                  storage::format_time(slot.due));
    slot.due = next_due(slot.job->schedule, slot.due, now).due;
    co_await sleep(slot);
  } else {
    slot.running = true;
    jobs_.spawn(claim_ ? claim_slot(slot, slot.due, true) : run_slot(slot, slot.due, true));
  }
}

// With a cluster: the run starts when the claim says so; otherwise the job sleeps until the
// due time the cluster knows, or its next point (a refused run now leaves `due` as it is).
asio::awaitable<void> Scheduler::claim_slot(Slot& slot, TimePoint due, bool scheduled) {
  const config::Job& job = *slot.job;
  auto snapshot = slot.config;  // keeps the job alive through a reload during the claim
  TimePoint next = next_due(job.schedule, due, std::chrono::system_clock::now()).due;
  ClaimAnswer answer = co_await claim_(job, due, next, scheduled);
  if (answer.run) {
    co_await run_slot(slot, due, scheduled);
    co_return;
  }
  slot.running = false;
  if (stopping_) co_return;
  if (scheduled) slot.due = answer.due ? *answer.due : next;
  co_await sleep(slot);
}

// Runs the job (due at `due`; `scheduled` false for an extra run), then queues its next run.
asio::awaitable<void> Scheduler::run_slot(Slot& slot, TimePoint due, bool scheduled) {
  auto snapshot = slot.config;  // keeps the job alive through a reload during the run
  const config::Job& job = *slot.job;
  co_await run_job_(job, due);
  slot.running = false;
  if (stopping_) co_return;
  if (slot.removed || once_) {
    end_slot(slot);
    co_return;
  }
  auto now = std::chrono::system_clock::now();
  if (take_next(slot)) {
    slot.due = first_due(slot.job->schedule, slot.job->name, now, std::nullopt);
  } else if (scheduled) {
    auto next = next_due(job.schedule, due, now);
    if (next.skipped > 0) {
      spdlog::warn(
          "job '{}': {} due time(s) passed while it ran or the daemon was down; skipped them",
          job.name, next.skipped);
      metrics_.run_ended(job.name, "skipped", next.skipped);
      co_await store_skipped(job, due, next.skipped);
    }
    slot.due = next.due;
  }
  co_await sleep(slot);
}

// The job leaves the scheduler (removed by a reload, run once, or no next due time).
void Scheduler::end_slot(Slot& slot) {
  const std::string& name = slot.job->name;
  if (slot.removed && !stopping_) spdlog::info("job '{}' removed by a reload", name);
  if (slot.queued) queue_.erase(*slot.queued);
  // A later reload re-adding the job makes a new slot.
  if (auto it = slots_.find(name); it != slots_.end() && it->second.get() == &slot)
    slots_.erase(it);  // destroys `slot`
  metrics_.jobs = static_cast<int>(slots_.size());
  if (once_ && slots_.empty()) wake_timer_.cancel();  // the loop's work is done
}

// One row per skipped point, up to a bound: visible in `scraperd runs`.
asio::awaitable<void> Scheduler::store_skipped(const config::Job& job, TimePoint due, int skipped) {
  auto at = due;
  for (int i = 0; i < std::min(skipped, 100); ++i) {
    at = next_due(job.schedule, at, at).due;
    storage::Row row = storage::RunSkipped{job.name, at};
    co_await rows_.store(std::move(row));
  }
}

// A random delay in [0, max], so runs of jobs on the same schedule do not start together.
std::chrono::milliseconds Scheduler::jitter(std::chrono::milliseconds max) {
  if (max.count() <= 0) return max;
  return std::chrono::milliseconds(
      std::uniform_int_distribution<std::int64_t>(0, max.count())(random_));
}

}  // namespace scraperd::daemon
