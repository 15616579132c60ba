#include "daemon/engine.h"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>

#include <spdlog/spdlog.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/system_timer.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <random>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "config/url.h"
#include "daemon/api.h"
#include "daemon/blocking.h"
#include "daemon/extract.h"
#include "daemon/fetch.h"
#include "daemon/frontier.h"
#include "daemon/loop_watch.h"
#include "daemon/metrics.h"
#include "daemon/progress.h"
#include "daemon/render/render.h"
#include "daemon/retry.h"
#include "daemon/robots.h"
#include "daemon/schedule.h"
#include "daemon/systemd.h"
#include "daemon/task_group.h"
#include "storage/db_lock.h"
#include "storage/writer.h"

namespace scraperd::daemon {
namespace {

using asio::awaitable;

double millis(Steady::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// A robots.txt Crawl-delay raises the host's delay up to this; more would let one file stall
// a job for hours.
constexpr std::chrono::milliseconds kMaxCrawlDelay = std::chrono::minutes(1);
// Redirects followed to a robots.txt; more make it unavailable (RFC 9309 2.3.1.2).
constexpr int kMaxRobotsRedirects = 5;

// "2026-11-27T17:50:00.123Z"
std::string iso_time(std::chrono::system_clock::time_point t) {
  std::string s = storage::format_time(t);
  s[10] = 'T';
  return s + "Z";
}

double seconds(Steady::duration d) {
  return std::chrono::duration<double>(d).count();
}

// The jobs paused in the database at `db`; none (and a warning) when it cannot be read.
std::set<std::string> paused_in(const std::string& db) {
  std::set<std::string> out;
  try {
    for (const auto& [name, since] : storage::paused_jobs(db)) out.insert(name);
  } catch (const storage::Error& e) {
    spdlog::warn("cannot read the paused jobs ({}); none is paused", e.what());
  }
  return out;
}

class Engine {
 public:
  Engine(asio::io_context& io, Fetcher& fetcher, asio::thread_pool& cpu_pool,
         storage::Writer& writer, std::shared_ptr<const config::Config> config,
         const RunOptions& options, Metrics& metrics,
         std::map<std::string, storage::Clock::time_point> persisted_due,
         std::map<std::pair<std::string, std::string>, storage::UrlState> url_states,
         std::map<std::string, int> failing, std::set<std::string> paused)
      : io_(io),
        fetcher_(fetcher),
        cpu_pool_(cpu_pool),
        writer_(writer),
        config_(std::move(config)),
        options_(options),
        metrics_(metrics),
        once_(options.once),
        jobs_(io.get_executor(), "scheduler"),
        wake_timer_(io),
        frontier_(io.get_executor(), config_->concurrency),
        max_active_(std::max(16, 2 * config_->concurrency)),
        persisted_due_(std::move(persisted_due)),
        known_(remembered(std::move(url_states))),
        failing_(std::move(failing)),
        paused_(std::move(paused)),
        secrets_(config_->secrets),
        random_(std::random_device{}()) {}

  awaitable<void> main() {
    co_await register_jobs(*config_);
    std::vector<Slot*> fresh;
    for (const auto& job : config_->jobs) {
      if (job.paused)
        spdlog::info("job '{}' is paused (paused: true in {})", job.name, job.file);
      else if (once_ && paused_.contains(job.name))
        spdlog::info("job '{}' is paused (scraperd resume {})", job.name, job.name);
      else
        fresh.push_back(&add_slot(config_, job));
    }
    for (const auto& name : paused_)
      if (slots_.contains(name))
        spdlog::info("job '{}' is paused (scraperd resume {})", name, name);
    for (Slot* slot : fresh) co_await sleep(*slot);
    jobs_.spawn(scheduler());
    co_await release_freed_memory();
    systemd::ready(status());
    co_await jobs_.wait();
  }

  // Stop scheduling: sleeping jobs wake and end; requests already sent finish (bounded by
  // their timeout, and by abandon()); requests not yet sent (waiting for their host, or for a
  // retry) end as `cancelled` error rows. Nothing is left without a row.
  void stop() {
    stopping_ = true;
    wake_timer_.cancel();
    for (auto* timer : napping_) timer->cancel();
    frontier_.close();
  }

  // Cuts a stop short: every request still in flight ends now as `cancelled` (its row says
  // why), and so does every request a run would still send; the runs end as `cancelled`.
  void abandon(const std::string& why) {
    abandoned_ = true;
    abandon_reason_ = why;
    fetcher_.close();
    render::renderer(io_).close();
  }

  bool abandoned() const { return abandoned_; }
  std::size_t in_flight() const { return fetcher_.in_flight(); }

  // SIGHUP: reads the job files again. A file with errors changes nothing (every error is
  // logged); otherwise jobs are matched by name: unchanged ones keep their schedule and runs,
  // changed ones switch after their current run (at once when idle), removed ones end after
  // their current run, new ones start. Reloads asked for during a reload run after it.
  awaitable<void> reload() {
    if (reloading_) {
      reload_again_ = true;
      co_return;
    }
    reloading_ = true;
    do {
      reload_again_ = false;
      systemd::reloading();
      std::string path = options_.config_path;
      auto load = [path] { return config::load_file(path); };
      config::LoadResult loaded = co_await run_blocking(cpu_pool_, std::move(load));
      // Pauses written to the database while no API could tell the daemon (scraperd pause
      // without one) count from here.
      for (;;) {  // read again if the API paused or resumed a job meanwhile
        std::uint64_t changes = pause_changes_;
        std::string db = options_.db_path;
        auto read_paused = [db] { return paused_in(db); };
        std::set<std::string> paused = co_await run_blocking(cpu_pool_, std::move(read_paused));
        if (changes != pause_changes_) continue;
        paused_ = std::move(paused);
        break;
      }
      last_reload_errors_.clear();
      if (!loaded.ok()) {
        for (const auto& e : loaded.errors) {
          spdlog::error("reload: {}", e.str());
          last_reload_errors_.push_back(e.str());
        }
        last_reload_ok_ = false;
        last_error_ = "reload failed: " + loaded.errors.front().str();
        spdlog::error("reload: {} error(s) in {}; every job keeps running as before",
                      loaded.errors.size(), path);
      } else {
        for (const auto& w : loaded.warnings) spdlog::warn("reload: {}", w.str());
        co_await apply(loaded.config);
        last_reload_ok_ = true;
      }
      metrics_.reloaded(last_reload_ok_);
      last_reload_at_ = iso_time(std::chrono::system_clock::now());
      systemd::ready(status());
    } while (reload_again_ && !stopping_);
    reloading_ = false;
  }

  // For POST /api/reload: reloads (or joins the reload going on) and reports how it went.
  awaitable<void> reload_for(std::shared_ptr<std::promise<ReloadOutcome>> answer) {
    co_await reload();
    while (reloading_) {  // another reload was running: ours is its next round
      bool awake = co_await nap(std::chrono::milliseconds(10));
      if (!awake) break;
    }
    ReloadOutcome outcome{last_reload_ok_, last_reload_errors_};
    answer->set_value(std::move(outcome));
  }

  // For POST /api/jobs/NAME/run: wakes the job to run now; its schedule stays as it was.
  RunNow request_run(const std::string& name) {
    auto it = slots_.find(name);
    if (it == slots_.end() || it->second->removed || stopping_) return RunNow::kUnknownJob;
    Slot& slot = *it->second;
    if (slot.running || slot.run_now) return RunNow::kAlreadyRunning;
    if (paused_.contains(name)) return RunNow::kPaused;
    slot.run_now = true;
    poke(slot);
    return RunNow::kStarted;
  }

  // What every run so far came to: run --once's last line and exit status.
  struct Totals {
    std::int64_t urls = 0, ok = 0, changed = 0, failed = 0;
    std::map<std::string, std::int64_t> kinds;  // failed URLs by error kind
  };
  const Totals& totals() const { return totals_; }

  // Called about once a second: queues the counters of each run going on whose counters moved
  // (RunProgress; skipped when the writer's queue is full, the next call catches up) and
  // returns a line per run for the terminal ("shop: 12/20 URLs, 8.1/s, 1 failed").
  std::vector<std::string> progress() {
    std::vector<std::string> lines;
    for (Run* run : running_) {
      std::tuple<int, int, int> now{run->ok, run->failed + run->cancelled, run->urls()};
      if (now != run->reported) {
        storage::Row row =
            storage::RunProgress{run->run_id, std::get<0>(now), std::get<1>(now), std::get<2>(now)};
        if (writer_.try_push(row)) run->reported = now;
      }
      const int done = run->ok + run->failed + run->cancelled;
      const double secs = std::max(seconds(Steady::now() - run->started), 0.001);
      std::string line =
          fmt::format("{}: {}/{} URLs, {:.1f}/s", run->job.name, done, run->urls(), done / secs);
      if (int failed = run->failed + run->cancelled; failed > 0)
        line += fmt::format(", {} failed", failed);
      lines.push_back(std::move(line));
    }
    return lines;
  }

  // For the API: whether `name` is a job of the job file the daemon runs now.
  bool has_job(const std::string& name) const {
    for (const auto& job : config_->jobs)
      if (job.name == name) return true;
    return false;
  }

  // For the API, once the pause is persisted: a paused job starts no run (the one going on
  // finishes); a resumed one runs at its next due time.
  void set_paused(const std::string& name, bool pause) {
    ++pause_changes_;
    if (pause ? !paused_.insert(name).second : paused_.erase(name) == 0) return;
    spdlog::info("job '{}' {}", name, pause ? "paused" : "resumed");
  }

  std::shared_ptr<const config::Config> config() const { return config_; }

  // For /api/status.
  DaemonStatus daemon_status() const {
    DaemonStatus d;
    d.since = started_at_;
    d.config_path = options_.config_path;
    d.jobs = static_cast<int>(slots_.size());
    for (const auto& [name, slot] : slots_) d.paused += paused_.contains(name) ? 1 : 0;
    d.requests_in_flight = static_cast<int>(fetcher_.in_flight());
    d.last_reload_ok = last_reload_ok_;
    d.last_reload_at = last_reload_at_;
    d.last_reload_errors = last_reload_errors_;
    return d;
  }

  // For systemd's STATUS= and the logs.
  std::string status() const {
    std::string s =
        fmt::format("{} jobs, {} requests in flight", slots_.size(), fetcher_.in_flight());
    if (!last_error_.empty()) s += "; last error: " + last_error_;
    return s;
  }

 private:
  // One run of a job: its counts, its fetches, and for `follow` jobs the URLs seen so far.
  // At most max_active_ fetch coroutines live at once; the rest of the run's URLs wait as
  // plain strings (the job's own by index, followed links in `pending`), so a job of 100,000
  // URLs does not hold 100,000 coroutine frames.
  struct Run {
    explicit Run(const config::Job& j) : job(j) {}
    const config::Job& job;
    std::int64_t run_id = 0;
    int ok = 0;
    int failed = 0;
    int cancelled = 0;
    TaskGroup* fetches = nullptr;
    int active = 0;                                   // fetch coroutines alive
    std::size_t next_own = 0;                         // the next of job.urls to start
    std::deque<std::pair<std::string, int>> pending;  // followed links (url, depth) to start
    std::unordered_set<std::string> seen;    // follow jobs: every URL of the run, its own too
    std::unique_ptr<LinkFinder> links;       // set for follow jobs
    std::unique_ptr<FieldExtractor> fields;  // set for jobs with `extract`
    std::unique_ptr<CookieJar> cookies;      // set for jobs with `cookies: true`
    int urls() const { return static_cast<int>(links ? seen.size() : job.urls.size()); }
    // For the end-of-run summary: results whose content changed, and per error kind the URLs
    // that ended in it and the first of them ("URL: message").
    int changed = 0;
    std::map<std::string, std::pair<int, std::string>> failures;
    Steady::time_point started = Steady::now();
    std::tuple<int, int, int> reported{0, 0, 0};  // ok, failed, urls last sent as RunProgress
  };

  // Starts fetches of the run's waiting URLs while there is room.
  void pump(Run& run) {
    while (run.active < max_active_) {
      if (run.next_own < run.job.urls.size()) {
        ++run.active;
        run.fetches->spawn(fetch_task(run, run.job.urls[run.next_own++], 0));
      } else if (!run.pending.empty()) {
        auto [url, depth] = std::move(run.pending.front());
        run.pending.pop_front();
        ++run.active;
        run.fetches->spawn(fetch_task(run, std::move(url), depth));
      } else {
        break;
      }
    }
  }

  awaitable<void> fetch_task(Run& run, std::string url, int depth) {
    struct Done {  // also when fetch_one throws
      Engine* engine;
      Run& run;
      ~Done() {
        --run.active;
        engine->pump(run);
      }
    } done{this, run};
    co_await fetch_one(run, std::move(url), depth);
  }

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

  // Adds a job, due for its first run; sleep() queues it. Two steps, so that every job is in
  // slots_ before anything waits (a reload coming meanwhile finds them all).
  Slot& add_slot(std::shared_ptr<const config::Config> config, const config::Job& job) {
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

  awaitable<void> register_jobs(const config::Config& config) {
    for (const auto& job : config.jobs) {
      storage::Row seen =
          storage::JobSeen{job.name, describe(job.schedule), static_cast<int>(job.urls.size()),
                           std::chrono::system_clock::now()};
      co_await store(std::move(seen));
    }
  }

  awaitable<void> apply(std::shared_ptr<const config::Config> next) {
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
    if (next->storage.path != config_->storage.path || next->concurrency != config_->concurrency)
      spdlog::warn("reload: 'storage.path' and 'concurrency' take effect at the next start");
    if (!options_.log_level_fixed) spdlog::set_level(spdlog::level::from_str(next->log.level));
    for (const auto& secret : next->secrets)
      if (std::find(secrets_.begin(), secrets_.end(), secret) == secrets_.end())
        secrets_.push_back(secret);
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
    co_await release_freed_memory();
  }

  // Reading a job file builds a large short-lived tree (10,000 jobs: ~25 MB), and glibc keeps
  // the pages it freed: hand them back to the system, off the loop (a trim takes milliseconds).
  awaitable<void> release_freed_memory() {
    co_await run_blocking(cpu_pool_, [] { ::malloc_trim(0); });
  }

  // Takes the definition a reload left for the job; true when its schedule changed.
  bool take_next(Slot& slot) {
    if (!slot.next) return false;
    bool schedule_changed = !(slot.next->schedule == slot.job->schedule);
    slot.config = std::move(slot.next_config);
    slot.job = std::exchange(slot.next, nullptr);
    return schedule_changed;
  }

  // The one coroutine that sleeps for every job (a sleeping coroutine per job would cost ~2 KB
  // each: docs/performance.md): waits for the earliest time in queue_, then wakes every job
  // whose time came. Ends on stop(), and with --once when every job has run.
  awaitable<void> scheduler() {
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
  void enqueue(Slot& slot, TimePoint at) {
    if (slot.queued) queue_.erase(*slot.queued);
    slot.queued = queue_.emplace(at, &slot);
    if (*slot.queued == queue_.begin()) wake_timer_.cancel();  // earlier than the scheduler waits
  }

  // Something changed a queued job (a reload, the API): it wakes now rather than at its time.
  void poke(Slot& slot) {
    if (slot.queued) enqueue(slot, std::chrono::system_clock::now());
  }

  // Queues the job for its next due time (plus jitter), or for now when something changed it
  // meanwhile; ends it when its schedule has no next point.
  awaitable<void> sleep(Slot& slot) {
    if (slot.due == TimePoint::max()) {
      end_slot(slot);
      co_return;
    }
    if (!once_) {
      storage::Row persist = storage::JobDue{slot.job->name, slot.due};  // named: see store()
      co_await store(std::move(persist));
    }
    if (stopping_) co_return;
    bool changed = slot.removed || slot.run_now || slot.next;  // while store_due waited
    enqueue(slot, changed ? std::chrono::system_clock::now()
                          : slot.due + jitter(slot.job->schedule.jitter));
  }

  // A queued job's time came, or something changed it: run it, or queue it again.
  awaitable<void> wake(Slot& slot, TimePoint now) {
    if (slot.removed) {
      end_slot(slot);
    } else if (slot.run_now) {  // an extra run, off the schedule: `due` stays where it is
      slot.run_now = false;
      slot.running = true;
      jobs_.spawn(run_slot(slot, now, false));
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
      jobs_.spawn(run_slot(slot, slot.due, true));
    }
  }

  // Runs the job (due at `due`; `scheduled` false for an extra run), then queues its next run.
  awaitable<void> run_slot(Slot& slot, TimePoint due, bool scheduled) {
    auto snapshot = slot.config;  // keeps the job alive through a reload during the run
    const config::Job& job = *slot.job;
    co_await run_job(job, due);
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
            "job '{}': {} due time(s) passed while it ran or the daemon was down; "
            "skipped them",
            job.name, next.skipped);
        metrics_.run_ended(job.name, "skipped", next.skipped);
        co_await store_skipped(job, due, next.skipped);
      }
      slot.due = next.due;
    }
    co_await sleep(slot);
  }

  // The job leaves the scheduler (removed by a reload, run once, or no next due time).
  void end_slot(Slot& slot) {
    const std::string& name = slot.job->name;
    if (slot.removed && !stopping_) spdlog::info("job '{}' removed by a reload", name);
    if (slot.queued) queue_.erase(*slot.queued);
    // A later reload re-adding the job makes a new slot.
    if (auto it = slots_.find(name); it != slots_.end() && it->second.get() == &slot)
      slots_.erase(it);  // destroys `slot`
    metrics_.jobs = static_cast<int>(slots_.size());
    if (once_ && slots_.empty()) wake_timer_.cancel();  // the scheduler's work is done
  }

  // One row per skipped point, up to a bound: visible in `scraperd runs`.
  awaitable<void> store_skipped(const config::Job& job, TimePoint due, int skipped) {
    auto at = due;
    for (int i = 0; i < std::min(skipped, 100); ++i) {
      at = next_due(job.schedule, at, at).due;
      storage::Row row = storage::RunSkipped{job.name, at};
      co_await store(std::move(row));
    }
  }

  // A random delay in [0, max], so runs of jobs on the same schedule do not start together.
  std::chrono::milliseconds jitter(std::chrono::milliseconds max) {
    if (max.count() <= 0) return max;
    return std::chrono::milliseconds(
        std::uniform_int_distribution<std::int64_t>(0, max.count())(random_));
  }

  awaitable<void> run_job(const config::Job& job, TimePoint due) {
    auto start = Steady::now();
    Run run(job);
    run.run_id = writer_.new_run_key();
    metrics_.run_started(
        std::chrono::duration<double>(std::chrono::system_clock::now() - due).count());
    storage::Row started =
        storage::RunStarted{run.run_id, job.name, due, std::chrono::system_clock::now(),
                            static_cast<int>(job.urls.size())};
    co_await store(std::move(started));
    // Listed while it runs, for progress(); off the list before RunFinished is queued.
    struct Listed {
      Listed(std::list<Run*>& l, Run* r) : list(l), at(l.insert(l.end(), r)) {}
      ~Listed() { list.erase(at); }
      Listed(const Listed&) = delete;
      Listed& operator=(const Listed&) = delete;
      std::list<Run*>& list;
      std::list<Run*>::iterator at;
    };
    std::optional<Listed> listed(std::in_place, running_, &run);
    TaskGroup fetches(io_.get_executor(), "job '" + job.name + "'");
    run.fetches = &fetches;
    if (!job.extract.empty()) run.fields = std::make_unique<FieldExtractor>(job.extract);
    if (job.cookies) run.cookies = std::make_unique<CookieJar>();
    if (job.follow) {
      run.links = std::make_unique<LinkFinder>(*job.follow);
      run.seen.insert(job.urls.begin(), job.urls.end());
    }
    pump(run);
    co_await fetches.wait();
    listed.reset();
    const char* status = run.cancelled > 0 ? "cancelled"
                         : run.failed == 0 ? "ok"
                         : run.ok == 0     ? "failed"
                                           : "partial";
    metrics_.run_ended(job.name, status);
    storage::Row finished =
        storage::RunFinished{run.run_id, std::chrono::system_clock::now(), status,
                             run.ok,     run.failed + run.cancelled,       run.urls()};
    co_await store(std::move(finished));
    log_summary(run, Steady::now() - start);
    if (job.notify && job.notify->failing_streak > 0 && run.cancelled == 0) {
      // Runs where everything failed, in a row: told once when the streak reaches the limit,
      // and once more when a run succeeds again.
      int& streak = failing_[job.name];
      const int limit = job.notify->failing_streak;
      std::string event;
      if (run.ok == 0 && run.failed > 0) {
        if (++streak == limit) event = "failing";
      } else {
        if (streak >= limit) event = "recovered";
        streak = 0;
      }
      if (!event.empty()) {
        nlohmann::ordered_json body = {{"event", event},
                                       {"job", job.name},
                                       {"failed_runs", event == "failing" ? limit : 0},
                                       {"last_error", last_error_},
                                       {"time", iso_time(std::chrono::system_clock::now())}};
        co_await deliver(job, body.dump(), run.run_id);
      }
    }
  }

  // One URL: attempts until a response that is not an error, a failure that is not worth
  // another try, or no retries left. Every failed attempt is an error row (with its attempt
  // number, and what happens next in the message); the URL ends as one result row or as a
  // final error row.
  // `depth`: link hops from the job's own URLs (0 for them).
  awaitable<void> fetch_one(Run& run, std::string url, int depth) {
    const config::Job& job = run.job;
    auto target = config::parse_url(url);  // validated when the config was loaded
    std::string host = target->host + ":" + std::to_string(target->port);
    config::PerHost limits = job.per_host;
    if (job.robots) {
      const RobotsEntry* robots = co_await robots_for(job, *target, host);
      if (!robots) {
        co_await cancelled(job, url, run, 1, storage::Clock::now(), "the request was not sent");
        co_return;
      }
      std::string refusal, kind = "robots";
      if (!robots->rules) {
        kind = robots->problem_kind;
        refusal = kind == "robots" ? "robots.txt of " + target->origin() + " answered " +
                                         robots->problem + ": the whole host counts as disallowed"
                                   : robots->problem + " (reading robots.txt)";
      } else if (!robots->rules->allowed(job.user_agent, target->target)) {
        refusal = "disallowed by " + target->origin() + "/robots.txt for '" +
                  Robots::product_token(job.user_agent) + "'";
      }
      if (!refusal.empty()) {
        count_failure(run, kind, url, refusal);
        storage::Row row = storage::ErrorRow{.run_id = run.run_id,
                                             .job = job.name,
                                             .url = url,
                                             .attempt = 1,
                                             .kind = kind,
                                             .status = std::nullopt,
                                             .message = refusal,
                                             .elapsed_ms = 0,
                                             .fetched_at = storage::Clock::now()};
        co_await store(std::move(row));
        co_return;
      }
      if (auto delay = robots->rules->crawl_delay(job.user_agent))
        limits.delay = std::max(limits.delay, std::min(*delay, kMaxCrawlDelay));
    }
    int retries_used = 0;
    std::chrono::milliseconds stalled{0};
    for (int attempt = 1;; ++attempt) {
      auto fetched_at = storage::Clock::now();
      auto asked = Steady::now();
      auto permit = co_await frontier_.acquire(host, limits);
      if (auto waited = Steady::now() - asked; waited > std::chrono::milliseconds(1))
        metrics_.waited(seconds(waited));
      if (!permit) {
        co_await cancelled(job, url, run, attempt, fetched_at, "the request was not sent");
        co_return;
      }
      FetchRequest request = make_request(run, url);
      metrics_.in_flight = static_cast<int>(fetcher_.in_flight()) + 1;
      FetchResult r;
      if (job.render.chromium)  // render: chromium (daemon/render/), after the same politeness
        r = co_await render::render_page(io_, std::move(request), job.render);
      else
        r = co_await fetcher_.fetch(std::move(request));
      metrics_.in_flight = static_cast<int>(fetcher_.in_flight());
      if (r.error_kind == "cancelled") {  // the daemon is stopping and cut the drain short
        co_await cancelled(job, url, run, attempt, fetched_at,
                           "the response did not come in time (" + abandon_reason_ + ")",
                           r.elapsed);
        co_return;
      }
      metrics_.request(job.name, host,
                       !r.ok()           ? r.error_kind
                       : r.status >= 400 ? std::string("http")
                                         : "ok",
                       seconds(r.elapsed));
      permit = {};  // the host's slot is free as soon as the response is in
      if (r.ok() && r.status < 400) {
        co_await succeeded(run, url, depth, r, fetched_at);
        co_return;
      }

      storage::ErrorRow e{
          .run_id = run.run_id,
          .job = job.name,
          .url = url,
          .attempt = attempt,
          .kind = r.ok() ? "http" : r.error_kind,
          .status = std::nullopt,
          .message = r.ok() ? "HTTP status " + std::to_string(r.status) : r.error_message,
          .elapsed_ms = millis(r.elapsed),
          .fetched_at = fetched_at};
      if (r.status > 0) e.status = r.status;
      // What next: a server that asks for a pause gets it, without using up a retry;
      // other transient failures are retried after a backoff.
      std::chrono::milliseconds wait{-1};
      if (r.ok() && (r.status == 429 || r.status == 503) && !r.retry_after.empty()) {
        auto pause = retry_after(r.retry_after, std::chrono::system_clock::now());
        if (!pause) {
          e.message += "; Retry-After '" + r.retry_after + "' is not seconds or a date: ignored";
        } else if (stalled + *pause > job.retries.max_stall) {
          e.message += fmt::format(
              "; Retry-After {}s would stall this request past {}s "
              "(retries.max_stall)",
              pause->count(), seconds(job.retries.max_stall));
        } else {
          stalled += *pause;
          frontier_.pause(host, Steady::now() + *pause);
          e.message += fmt::format("; Retry-After: {} paused for {}s", host, pause->count());
          wait = std::chrono::milliseconds(0);  // acquire() waits out the pause
        }
      }
      if (wait.count() < 0 && retries_used < job.retries.max &&
          retryable(job.retries, r.error_kind, r.status)) {
        ++retries_used;
        std::uniform_real_distribution<double> u(0.0, 1.0);
        wait = backoff(job.retries, retries_used, u(random_));
        e.message += fmt::format("; retry {} of {} in {:.1f}s", retries_used, job.retries.max,
                                 seconds(wait));
      }
      if (wait.count() < 0) {
        last_error_ = fmt::format("job '{}': {} {}", job.name, e.kind, shown(url));
        count_failure(run, e.kind, url, e.message);
        storage::Row row = std::move(e);
        co_await store(std::move(row));
        co_return;
      }
      spdlog::debug("job '{}': {}: {}: {}", job.name, shown(url), e.kind, shown(e.message));
      storage::Row row = std::move(e);
      co_await store(std::move(row));
      if (!co_await nap(wait)) {
        co_await cancelled(job, url, run, attempt + 1, storage::Clock::now(),
                           "the retry was not sent");
        co_return;
      }
    }
  }

  // robots.txt of one origin: fetched once (concurrent askers wait for the first), kept for a
  // day, or for a few minutes when it could not be read. Null when the engine is stopping.
  struct RobotsEntry {
    std::optional<Robots> rules;  // nullopt: unreachable (5xx, 429, network): nothing allowed
    std::string problem;          // why it is unreachable
    std::string problem_kind;     // robots (a status), or the network failure's kind
    Steady::time_point expires{};
    bool loading = false;
  };

  awaitable<const RobotsEntry*> robots_for(const config::Job& job, const config::Url& target,
                                           const std::string& host) {
    const std::string origin = target.origin();
    // References into an unordered_map stay valid while other keys come and go.
    RobotsEntry& entry = robots_[origin];
    while (entry.loading) {  // another fetch of this origin is reading it
      if (!co_await nap(std::chrono::milliseconds(20))) co_return nullptr;
    }
    if (Steady::now() < entry.expires) co_return &entry;
    entry.loading = true;
    struct Done {
      RobotsEntry& e;
      ~Done() { e.loading = false; }
    } done{entry};
    // The job's way to the site (timeouts, proxy, TLS, retries), none of its headers or
    // cookies. One byte over Robots::kMaxBytes tells the parser that the body was cut.
    FetchResult r;
    for (int attempt = 1;; ++attempt) {
      auto permit = co_await frontier_.acquire(host, job.per_host);
      if (!permit) co_return nullptr;
      FetchRequest request = request_for(job, origin + "/robots.txt");
      request.method = "GET";
      request.headers.clear();
      request.body.clear();
      request.max_body = Robots::kMaxBytes + 1;
      request.cut_body = true;
      request.max_redirects = kMaxRobotsRedirects;
      r = co_await fetcher_.fetch(std::move(request));
      permit = {};
      if (r.error_kind == "cancelled") co_return nullptr;  // stopping: nothing learnt
      if (attempt > job.retries.max || !retryable(job.retries, r.error_kind, r.status)) break;
      std::uniform_real_distribution<double> u(0.0, 1.0);
      auto wait = backoff(job.retries, attempt, u(random_));
      spdlog::debug("{}/robots.txt: {}; retry {} of {} in {:.1f}s", origin,
                    r.ok() ? "HTTP status " + std::to_string(r.status) : r.error_message, attempt,
                    job.retries.max, seconds(wait));
      if (!co_await nap(wait)) co_return nullptr;
    }
    auto now = Steady::now();
    // RFC 9309 2.3.1: a 2xx is the rules; "unavailable" (a 4xx, or a redirect chain longer
    // than kMaxRobotsRedirects or that cannot be followed) allows everything; "unreachable"
    // (a 5xx, the network) disallows everything for a while. A 429 is unreachable, as Google
    // reads it: a site that asks to slow down is not inviting a full crawl.
    const bool redirects = r.error_kind == "redirect_loop" || r.error_kind == "http" ||
                           (r.ok() && r.status >= 300 && r.status < 400);
    if (r.ok() && r.status >= 200 && r.status < 300) {
      entry.rules = Robots::parse(r.body);
      entry.expires = now + std::chrono::hours(24);
      const Robots::Summary& s = entry.rules->summary();
      spdlog::debug("{}/robots.txt: {} bytes{}, {} directives, {} unknown lines", origin, s.bytes,
                    s.cut ? fmt::format(" (cut at {} KiB)", Robots::kMaxBytes / 1024) : "",
                    s.directives, s.unknown);
    } else if (redirects || (r.ok() && r.status >= 400 && r.status < 500 && r.status != 429)) {
      entry.rules = Robots::allow_all();
      entry.expires = now + std::chrono::hours(24);
      spdlog::debug("{}/robots.txt: unavailable ({}): everything allowed", origin,
                    r.ok() ? "HTTP status " + std::to_string(r.status) : r.error_message);
    } else {
      entry.rules.reset();
      entry.problem = r.ok() ? "HTTP status " + std::to_string(r.status) : r.error_message;
      entry.problem_kind = r.ok() ? "robots" : r.error_kind;
      entry.expires = now + std::chrono::minutes(5);
      // Once per origin and 5 minutes; each refused URL is an error row and a debug line.
      spdlog::warn("{}/robots.txt is unreachable ({}): its URLs count as disallowed for 5 min",
                   origin, entry.problem);
    }
    if (robots_.size() > 10'000)  // origins met once, long ago: bounded memory
      std::erase_if(robots_, [&](const auto& kv) {
        return !kv.second.loading && kv.second.expires < now && &kv.second != &entry;
      });
    co_return &entry;
  }

  // POSTs `payload` (JSON) to the job's notify.webhook through the same frontier, with the
  // job's timeouts and retries. A delivery that fails is an error row (url = the webhook).
  awaitable<void> deliver(const config::Job& job, std::string payload, std::int64_t run_id) {
    const std::string webhook = job.notify->webhook;
    auto target = config::parse_url(webhook);  // validated at load
    const std::string host = target->host + ":" + std::to_string(target->port);
    for (int attempt = 1;; ++attempt) {
      auto at = storage::Clock::now();
      auto permit = co_await frontier_.acquire(host, job.per_host);
      if (!permit) co_return;  // stopping: a notification is not worth holding the exit for
      FetchRequest request = request_for(job, webhook);
      request.method = "POST";
      request.headers = {{"Content-Type", "application/json"}};
      request.body = payload;
      request.max_body = 1024 * 1024;
      FetchResult r = co_await fetcher_.fetch(std::move(request));
      permit = {};
      if (r.error_kind == "cancelled") co_return;  // stopping
      if (r.ok() && r.status < 300) {
        metrics_.webhook(job.name, "ok");
        spdlog::info("job '{}': notified {}", job.name, shown(webhook));
        co_return;
      }
      bool again = attempt <= job.retries.max && retryable(job.retries, r.error_kind, r.status);
      std::chrono::milliseconds wait{0};
      if (again) {
        std::uniform_real_distribution<double> u(0.0, 1.0);
        wait = backoff(job.retries, attempt, u(random_));
      }
      storage::ErrorRow e{
          .run_id = run_id,
          .job = job.name,
          .url = webhook,
          .attempt = attempt,
          .kind = r.ok() ? "http" : r.error_kind,
          .status = std::nullopt,
          .message =
              "webhook: " + (r.ok() ? "HTTP status " + std::to_string(r.status) : r.error_message) +
              (again ? fmt::format("; retry in {:.1f}s", seconds(wait)) : std::string()),
          .elapsed_ms = millis(r.elapsed),
          .fetched_at = at};
      if (r.status > 0) e.status = r.status;
      metrics_.webhook(job.name, again ? "retried" : "failed");
      spdlog::warn("job '{}': {}: {}", job.name, e.kind, shown(e.message));
      storage::Row row = std::move(e);
      co_await store(std::move(row));
      if (!again) co_return;
      bool awake = co_await nap(wait);
      if (!awake) co_return;
    }
  }

  FetchRequest make_request(Run& run, const std::string& url) const {
    const config::Job& job = run.job;
    FetchRequest request = request_for(job, url);
    request.cookies = run.cookies.get();
    request.group = static_cast<std::uint64_t>(run.run_id);
    // A conditional GET with what the last full response said, unless the job sets these.
    const Known* v = known(job.name, shown(url));
    if (v && job.method == "GET" && job.conditional) {
      auto has = [&](std::string_view name) {
        return std::any_of(job.headers.begin(), job.headers.end(), [&](const auto& h) {
          return std::equal(h.first.begin(), h.first.end(), name.begin(), name.end(),
                            [](char a, char b) { return std::tolower(a) == std::tolower(b); });
        });
      };
      if (!v->etag.empty() && !has("If-None-Match"))
        request.headers.emplace_back("If-None-Match", v->etag);
      if (!v->last_modified.empty() && !has("If-Modified-Since"))
        request.headers.emplace_back("If-Modified-Since", v->last_modified);
    }
    return request;
  }

  // A response that is not an error: its fields and links are read on the pool, then the
  // result row (unless `store: on_change` and nothing changed), the URL's new state, and the
  // links the run goes on to.
  awaitable<void> succeeded(Run& run, const std::string& url, int depth, const FetchResult& r,
                            storage::Clock::time_point fetched_at) {
    const config::Job& job = run.job;
    const bool full = r.status >= 200 && r.status < 300;  // a 304 has no body to read
    const bool may_follow =
        run.links && depth < job.follow->max_depth && run.seen.size() < follow_budget(run);
    const bool follow = may_follow && r.status == 200 && is_html(r.content_type);
    struct Page {
      Extracted extracted;
      std::vector<std::string> links;
    };
    Page page;
    if (full && (run.fields || follow)) {
      const std::string page_url = r.final_url.empty() ? url : r.final_url;
      const FieldExtractor* fields = run.fields.get();
      const LinkFinder* finder = follow ? run.links.get() : nullptr;
      // Twice the page budget: enough new links even if every URL seen so far is among them.
      const std::size_t limit = 2 * follow_budget(run);
      auto read = [fields, finder, &r, &page_url, limit] {
        Page p;
        if (fields) p.extracted = fields->extract(r.body, r.content_type);
        if (finder) p.links = finder->find(r.body, r.content_type, page_url, limit);
        return p;
      };
      page = co_await run_blocking(cpu_pool_, std::move(read));
    }
    // A follow job keeps each page's links, so that a 304 (the page as it was) leads on to
    // the same pages as its last full response did.
    std::string links;
    if (follow) {
      links =
          nlohmann::json(page.links).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      queue_links(run, std::move(page.links), url, depth);
    } else if (may_follow && r.status == 304) {
      if (const Known* before = known(job.name, shown(url)); before && !before->links.empty()) {
        links = before->links;
        auto list = nlohmann::json::parse(links, nullptr, false);
        std::vector<std::string> again;
        if (list.is_array())
          for (const auto& link : list)
            if (link.is_string()) again.push_back(link.get<std::string>());
        queue_links(run, std::move(again), url, depth);
      }
    }

    if (!page.extracted.problem.empty()) {  // e.g. json fields and a body that is not JSON
      last_error_ = fmt::format("job '{}': parse {}", job.name, shown(url));
      count_failure(run, "parse", url, page.extracted.problem);
      storage::Row row = storage::ErrorRow{.run_id = run.run_id,
                                           .job = job.name,
                                           .url = url,
                                           .attempt = 1,
                                           .kind = "parse",
                                           .status = r.status,
                                           .message = page.extracted.problem,
                                           .elapsed_ms = millis(r.elapsed),
                                           .fetched_at = fetched_at};
      co_await store(std::move(row));
      co_return;
    }
    if (!page.extracted.missing.empty()) {
      std::string names;
      bool required = false;
      for (const auto& n : page.extracted.missing) {
        names += (names.empty() ? "" : ", ") + n;
        for (const auto& f : job.extract) required = required || (f.required && f.name == n);
      }
      spdlog::log(required ? spdlog::level::warn : spdlog::level::info,
                  "job '{}': {}: matched nothing: {}", job.name, shown(url), names);
    }

    ++run.ok;
    metrics_.success(job.name, std::chrono::system_clock::now());
    Known& state = known_[job.name][shown(url)];  // as stored
    std::string hash = full ? content_hash(run.fields ? page.extracted.data : r.body)
                            : state.content_hash;  // 304: the content is the one we have
    const bool changed = full && hash != state.content_hash;
    if (changed && !state.content_hash.empty()) metrics_.changed(job.name);
    if (changed) ++run.changed;
    // A change of content seen before (the first fetch of a URL is not news).
    if (changed && !state.content_hash.empty() && job.notify && job.notify->on_change) {
      nlohmann::ordered_json event = {
          {"event", "change"},
          {"job", job.name},
          {"url", url},
          {"previous", state.data.empty()
                           ? nlohmann::ordered_json(nullptr)
                           : nlohmann::ordered_json::parse(state.data, nullptr, false)},
          {"current", page.extracted.data.empty()
                          ? nlohmann::ordered_json(nullptr)
                          : nlohmann::ordered_json::parse(page.extracted.data, nullptr, false)},
          {"previous_hash", state.content_hash},
          {"current_hash", hash},
          {"time", iso_time(std::chrono::system_clock::now())}};
      run.fetches->spawn(deliver(job, event.dump(), run.run_id));
    }
    if (changed || !job.store_on_change) {
      storage::Row row = storage::ResultRow{.run_id = run.run_id,
                                            .job = job.name,
                                            .url = url,
                                            .final_url = r.final_url,
                                            .status = r.status,
                                            .bytes = static_cast<std::int64_t>(r.body.size()),
                                            .elapsed_ms = millis(r.elapsed),
                                            .fetched_at = fetched_at,
                                            .content_hash = hash,
                                            .changed = changed,
                                            // a 304 carries the current value forward
                                            .data = full ? page.extracted.data : state.data};
      co_await store(std::move(row));
    }
    // The URL's new state: the validators of a full response (a 304 may refresh them) and
    // the content hash.
    Known next = state;
    if (full || !r.etag.empty() || !r.last_modified.empty()) {
      next.etag = r.etag;
      next.last_modified = r.last_modified;
    }
    next.content_hash = hash;
    if (full) next.data = page.extracted.data;
    if (follow) next.links = std::move(links);
    if (next.etag != state.etag || next.last_modified != state.last_modified ||
        next.content_hash != state.content_hash || next.data != state.data ||
        next.links != state.links) {
      state = next;
      storage::Row row = storage::UrlState{.job = job.name,
                                           .url = url,
                                           .etag = std::move(next.etag),
                                           .last_modified = std::move(next.last_modified),
                                           .content_hash = std::move(next.content_hash),
                                           .data = std::move(next.data),
                                           .links = std::move(next.links)};
      co_await store(std::move(row));
    }
  }

  // A URL of the run ended in an error of `kind`: counted for the run's summary; the URL
  // itself is logged at debug only (the summary names the first one of each kind).
  void count_failure(Run& run, const std::string& kind, const std::string& url,
                     const std::string& message) {
    ++run.failed;
    if (auto& [n, first] = run.failures[kind]; n++ == 0) first = shown(url) + ": " + shown(message);
    spdlog::debug("job '{}': {}: {}: {}", run.job.name, shown(url), kind, shown(message));
  }

  // The end of a run in a line, then a line per error kind; at warning when every URL
  // failed. Also adds the run to the totals of run --once.
  void log_summary(const Run& run, Steady::duration took) {
    const int failed = run.failed + run.cancelled;
    std::string kinds;
    for (const auto& [kind, f] : run.failures)
      kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", kind, f.first);
    const auto level = run.ok == 0 && failed > 0 ? spdlog::level::warn : spdlog::level::info;
    spdlog::log(level, "job '{}': {} URL{}: {} ok, {} changed, {} failed{} in {:.1f} s",
                run.job.name, run.urls(), run.urls() == 1 ? "" : "s", run.ok, run.changed, failed,
                kinds.empty() ? "" : " (" + kinds + ")", seconds(took));
    for (const auto& [kind, f] : run.failures)
      spdlog::log(level, "job '{}': {} {} failed with {}: {}{}", run.job.name, f.first,
                  f.first == 1 ? "URL" : "URLs", kind, f.second,
                  f.first > 1 ? fmt::format(" (and {} more)", f.first - 1) : "");
    totals_.urls += run.urls();
    totals_.ok += run.ok;
    totals_.changed += run.changed;
    totals_.failed += failed;
    for (const auto& [kind, f] : run.failures) totals_.kinds[kind] += f.first;
  }

  // URLs a follow run may hold in all: follow.max_pages, or its own URLs if more.
  static std::size_t follow_budget(const Run& run) {
    return std::max(run.job.urls.size(), static_cast<std::size_t>(run.job.follow->max_pages));
  }

  // Queues the new ones of `links` (found on `url`, at `depth`) into the run, within budget.
  void queue_links(Run& run, std::vector<std::string> links, const std::string& url, int depth) {
    const std::size_t budget = follow_budget(run);
    int added = 0;
    for (auto& link : links) {
      if (run.seen.size() >= budget) break;
      if (!run.seen.insert(link).second) continue;
      run.pending.emplace_back(std::move(link), depth + 1);
      ++added;
    }
    spdlog::debug("job '{}': {}: {} links, {} new (depth {})", run.job.name, shown(url),
                  links.size(), added, depth + 1);
    pump(run);
  }

  awaitable<void> cancelled(const config::Job& job, const std::string& url, Run& run, int attempt,
                            storage::Clock::time_point at, std::string what,
                            Steady::duration elapsed = {}) {
    ++run.cancelled;
    if (auto& [n, first] = run.failures["cancelled"]; n++ == 0) first = shown(url) + ": " + what;
    storage::Row row = storage::ErrorRow{.run_id = run.run_id,
                                         .job = job.name,
                                         .url = url,
                                         .attempt = attempt,
                                         .kind = "cancelled",
                                         .status = std::nullopt,
                                         .message = "the daemon is stopping; " + what,
                                         .elapsed_ms = millis(elapsed),
                                         .fetched_at = at};
    co_await store(std::move(row));
  }

  // Sleeps `d` unless the engine stops first; false when it stopped.
  awaitable<bool> nap(std::chrono::milliseconds d) {
    if (stopping_) co_return false;
    asio::steady_timer timer(io_, d);
    auto napping = napping_.insert(napping_.end(), &timer);
    co_await timer.async_wait(asio::experimental::as_tuple(here()));
    napping_.erase(napping);
    co_return !stopping_;
  }

  // Values of ${VAR} never reach the database: URLs and messages get the ${NAME} back.
  std::string shown(const std::string& text) const { return config::redact(text, secrets_); }
  void redact_row(storage::Row& row) const {
    if (auto* r = std::get_if<storage::ResultRow>(&row)) {
      r->url = shown(r->url);
      r->final_url = shown(r->final_url);
    } else if (auto* e = std::get_if<storage::ErrorRow>(&row)) {
      e->url = shown(e->url);
      e->message = shown(e->message);
    } else if (auto* u = std::get_if<storage::UrlState>(&row)) {
      u->url = shown(u->url);
      u->links = shown(u->links);
    }
  }

  // Hands a row to the writer. A full queue makes this coroutine wait, off the loop.
  // Callers pass a named Row: GCC 12 destroys temporaries inside co_await expressions twice.
  awaitable<void> store(storage::Row row) {
    if (!secrets_.empty()) redact_row(row);
    if (writer_.try_push(row)) co_return;
    co_await run_blocking(cpu_pool_, [this, &row] { writer_.push(std::move(row)); });
  }

  asio::io_context& io_;
  Fetcher& fetcher_;  // every request, on the loop (libcurl's multi interface)
  // Parsing pages and config files, and waiting for room in a full writer queue: one thread
  // per core.
  asio::thread_pool& cpu_pool_;
  storage::Writer& writer_;
  std::shared_ptr<const config::Config> config_;  // the current snapshot
  const RunOptions options_;
  Metrics& metrics_;
  const bool once_;
  bool stopping_ = false;
  bool abandoned_ = false;
  std::string abandon_reason_;
  Totals totals_;
  std::list<Run*> running_;  // runs going on, for progress()
  bool reloading_ = false;
  bool reload_again_ = false;
  bool last_reload_ok_ = true;
  std::vector<std::string> last_reload_errors_;
  std::string last_reload_at_;  // "" until the first reload
  const std::string started_at_ = iso_time(std::chrono::system_clock::now());
  std::string last_error_;
  TaskGroup jobs_;  // the scheduler and the runs going on
  std::map<std::string, std::unique_ptr<Slot>> slots_;
  Queue queue_;                             // jobs waiting for their time
  asio::system_timer wake_timer_;           // the scheduler's, set to the earliest time in queue_
  std::list<asio::steady_timer*> napping_;  // fetches waiting to retry
  Frontier frontier_;
  const int max_active_;  // fetch coroutines alive per run
  const std::map<std::string, storage::Clock::time_point> persisted_due_;
  // What is known of each URL fetched (its url_state row): job → URL → state. By job, so a
  // job's name is not repeated for each of its URLs (docs/performance.md: W1 memory).
  struct Known {
    std::string etag;
    std::string last_modified;
    std::string content_hash;
    std::string data;   // the fields of that content: change notifications, a 304's row
    std::string links;  // follow jobs: the links of that content (JSON array), for a 304
  };
  std::unordered_map<std::string, std::unordered_map<std::string, Known>> known_;

  const Known* known(const std::string& job, const std::string& url) const {
    auto j = known_.find(job);
    if (j == known_.end()) return nullptr;
    auto u = j->second.find(url);
    return u == j->second.end() ? nullptr : &u->second;
  }

  static std::unordered_map<std::string, std::unordered_map<std::string, Known>> remembered(
      std::map<std::pair<std::string, std::string>, storage::UrlState> rows) {
    std::unordered_map<std::string, std::unordered_map<std::string, Known>> out;
    for (auto& [key, row] : rows)
      out[key.first][key.second] =
          Known{std::move(row.etag), std::move(row.last_modified), std::move(row.content_hash),
                std::move(row.data), std::move(row.links)};
    return out;
  }
  std::map<std::string, int> failing_;  // job → runs in a row where every URL failed
  // Jobs paused by `scraperd pause` or the API (the database's `paused` table): their slots
  // stay, but no run starts. Read at start and at each reload, changed by the API.
  std::set<std::string> paused_;
  std::uint64_t pause_changes_ = 0;  // set_paused() calls, so a reload's read of the table
                                     // taken before one is not applied after it
  std::vector<std::pair<std::string, std::string>> secrets_;  // of every config loaded
  std::unordered_map<std::string, RobotsEntry> robots_;       // by origin
  std::mt19937_64 random_;
};

// Every request in flight holds a socket (two through a proxy), the database and the API a
// few more: the soft limit on open files is raised to the hard one, and a `concurrency` that
// does not fit is said in the log. Returns the limit (RLIM_INFINITY: none).
rlim_t raise_file_limit(int concurrency) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return RLIM_INFINITY;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    ::getrlimit(RLIMIT_NOFILE, &limit);
  }
  const rlim_t needed = static_cast<rlim_t>(concurrency) + 64;
  if (limit.rlim_cur != RLIM_INFINITY && limit.rlim_cur < needed)
    spdlog::warn(
        "concurrency {} may need {} open files (twice as many through a proxy), and the limit "
        "is {}: requests beyond it fail as 'connect' errors (raise LimitNOFILE= or lower "
        "concurrency)",
        concurrency, needed, limit.rlim_cur);
  return limit.rlim_cur;
}

// What run() handles: SIGINT and SIGTERM stop, SIGHUP reloads.
const sigset_t& handled_signals() {
  static const sigset_t set = [] {
    sigset_t s;
    sigemptyset(&s);
    for (int signo : {SIGINT, SIGTERM, SIGHUP}) sigaddset(&s, signo);
    return s;
  }();
  return set;
}

}  // namespace

void hold_signals() {
  pthread_sigmask(SIG_BLOCK, &handled_signals(), nullptr);
}

int run(std::shared_ptr<const config::Config> config, const RunOptions& options) {
  // run --once on a terminal: a line per running job under the log (before any thread starts:
  // it wraps the logger's sinks).
  std::unique_ptr<ProgressDisplay> display;
  if (options.once && ProgressDisplay::wanted()) display = std::make_unique<ProgressDisplay>();
  const auto began = Steady::now();
  // One `run` per database (storage/db_lock.h), taken before anything is written: a second
  // one would mark this one's running runs interrupted and fight it for every commit.
  storage::DbLock db_lock;
  storage::LockInfo lock_info;
  if (!options.config_path.empty()) {
    std::error_code ec;
    auto absolute = std::filesystem::absolute(options.config_path, ec);
    lock_info.config = ec ? options.config_path : absolute.lexically_normal().string();
  }
  if (!options.once) lock_info.api = config->api.listen;
  try {
    db_lock = storage::lock_database(options.db_path, lock_info);
  } catch (const storage::DbLockError& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  std::unique_ptr<storage::Writer> writer;
  try {
    storage::Writer::Options writer_options;
    writer_options.keep = config->storage.keep;
    writer = std::make_unique<storage::Writer>(options.db_path, writer_options);
  } catch (const storage::Error& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  spdlog::info("scraperd: {} jobs from {}, database {}, concurrency {}", config->jobs.size(),
               config->source, options.db_path, config->concurrency);
  const rlim_t files = raise_file_limit(config->concurrency);

  asio::io_context io(1);
  Fetcher fetcher(io, connections_to_keep(config->concurrency, files == RLIM_INFINITY ? 0 : files));
  // CPU work gets as many threads as there are cores: sixty-four fetch threads parsing at
  // once on two cores only switch between each other and spread their pages' trees over
  // more memory (docs/performance.md).
  asio::thread_pool cpu_pool(std::max(1u, std::thread::hardware_concurrency()));
  std::map<std::string, storage::Clock::time_point> persisted_due;
  std::map<std::pair<std::string, std::string>, storage::UrlState> url_states;
  std::map<std::string, int> failing;
  try {
    persisted_due = storage::next_due_times(options.db_path);
    url_states = storage::url_states(options.db_path);
    failing = storage::failing_streaks(options.db_path);
  } catch (const storage::Error& e) {
    spdlog::warn("cannot read the persisted state ({}); starting afresh", e.what());
  }
  const auto shutdown_timeout = config->shutdown_timeout;
  Metrics metrics;
  render::renderer(io).configure(config->render);  // started on a render job's first page
  Engine engine(io, fetcher, cpu_pool, *writer, config, options, metrics, std::move(persisted_due),
                std::move(url_states), std::move(failing), paused_in(options.db_path));

  // The HTTP API, for a daemon (not for --once). Its handlers hand work to the loop and wait
  // for the answer, bounded, so a stopping loop never hangs an API thread.
  std::unique_ptr<Api> api;
  if (!options.once && !config->api.listen.empty()) {
    ApiHooks hooks;
    hooks.reload = [&io, &engine]() -> ReloadOutcome {
      auto answer = std::make_shared<std::promise<ReloadOutcome>>();
      auto result = answer->get_future();
      asio::post(io, [&io, &engine, answer] {
        asio::co_spawn(io, engine.reload_for(answer), asio::detached);
      });
      if (result.wait_for(std::chrono::minutes(1)) != std::future_status::ready)
        return {false, {"the daemon did not answer within a minute (stopping?)"}};
      return result.get();
    };
    hooks.run_now = [&io, &engine](const std::string& name) {
      auto answer = std::make_shared<std::promise<RunNow>>();
      auto result = answer->get_future();
      asio::post(io, [&engine, answer, name] { answer->set_value(engine.request_run(name)); });
      if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
        return RunNow::kUnknownJob;
      return result.get();
    };
    hooks.set_paused = [&io, &engine, db = options.db_path](const std::string& name, bool pause) {
      auto ask = [&](auto fn) {  // runs fn on the loop, waits for its answer (bounded)
        using T = decltype(fn());
        auto answer = std::make_shared<std::promise<T>>();
        auto result = answer->get_future();
        asio::post(io, [answer, fn] { answer->set_value(fn()); });
        if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
          throw storage::Error("the daemon did not answer within 10 s (stopping?)", 0);
        return result.get();
      };
      if (!ask([&engine, name] { return engine.has_job(name); })) return Pause::kUnknownJob;
      bool changed = storage::set_paused(db, name, pause, storage::Clock::now());
      ask([&engine, name, pause] {
        engine.set_paused(name, pause);
        return true;
      });
      return changed ? Pause::kDone : Pause::kAlready;
    };
    hooks.status = [&io, &engine]() -> DaemonStatus {
      auto answer = std::make_shared<std::promise<DaemonStatus>>();
      auto result = answer->get_future();
      asio::post(io, [&engine, answer] { answer->set_value(engine.daemon_status()); });
      if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
        throw storage::Error("the daemon did not answer within 10 s (stopping?)", 0);
      return result.get();
    };
    hooks.config = [&io, &engine]() -> std::shared_ptr<const config::Config> {
      auto answer = std::make_shared<std::promise<std::shared_ptr<const config::Config>>>();
      auto result = answer->get_future();
      asio::post(io, [&engine, answer] { answer->set_value(engine.config()); });
      if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return nullptr;
      return result.get();
    };
    api = std::make_unique<Api>(config->api, options.db_path, metrics, *writer, std::move(hooks));
    std::string error;
    if (!api->start(&error)) {
      spdlog::critical("{} (set api.listen to another address, or \"\" to turn the API off)",
                       error);
      return 1;
    }
    const std::string& listen = config->api.listen;  // the port bound, for listen ":0"
    lock_info.api = listen.substr(0, listen.rfind(':')) + ":" + std::to_string(api->port());
    db_lock.update(lock_info);
  }

  // Signals: SIGHUP reloads; the first SIGTERM/SIGINT stops, a second one cuts the drain
  // short, as does shutdown_timeout.
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  asio::steady_timer drain_limit(io);
  bool stopping = false;
  auto cut_short = [&](const std::string& why) {
    if (engine.abandoned()) return;
    spdlog::warn("{}: {} request(s) still in flight are recorded as cancelled; exiting", why,
                 engine.in_flight());
    engine.abandon(why);  // the runs end at once, through their normal path
  };
  std::function<void(std::error_code, int)> on_signal = [&](std::error_code ec, int signo) {
    if (ec) return;
    if (signo == SIGHUP) {
      if (options.config_path.empty())
        spdlog::warn("SIGHUP: no job file to reload (run without --config)");
      else if (!stopping)
        asio::co_spawn(io, engine.reload(), asio::detached);
    } else if (!stopping) {
      stopping = true;
      spdlog::info(
          "{}: stopping; requests in flight finish (up to {} s), queued rows are "
          "committed",
          signo == SIGINT ? "SIGINT" : "SIGTERM", seconds(shutdown_timeout));
      systemd::stopping();
      engine.stop();
      drain_limit.expires_after(shutdown_timeout);
      drain_limit.async_wait([&](std::error_code e) {
        if (!e) cut_short("shutdown_timeout passed");
      });
    } else {
      cut_short("second signal");
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);
  // `scraperd run` blocked these until now (cli.cpp): one that came meanwhile is handled as
  // soon as the loop runs. Only this thread unblocks them, so they all arrive here.
  pthread_sigmask(SIG_UNBLOCK, &handled_signals(), nullptr);

  // Heartbeat: WATCHDOG=1 from the loop itself (a stalled loop stops the pings and systemd
  // restarts the service), and STATUS= with what the daemon is doing.
  auto watchdog = systemd::watchdog_interval();
  Steady::duration beat = watchdog.count() > 0 ? Steady::duration(watchdog / 2)
                                               : Steady::duration(std::chrono::seconds(10));
  asio::steady_timer heartbeat(io);
  bool running = true;
  std::function<void(std::error_code)> on_beat = [&](std::error_code ec) {
    if (ec || !running) return;
    if (watchdog.count() > 0) systemd::watchdog();
    systemd::status(engine.status());
    heartbeat.expires_after(beat);
    heartbeat.async_wait(on_beat);
  };
  heartbeat.expires_after(beat);
  heartbeat.async_wait(on_beat);

  // Progress, about once a second: the runs rows' counters, and the terminal's lines.
  asio::steady_timer progress_timer(io);
  std::function<void(std::error_code)> on_progress = [&](std::error_code ec) {
    if (ec || !running) return;
    auto lines = engine.progress();
    if (display) display->show(std::move(lines));
    progress_timer.expires_after(std::chrono::seconds(1));
    progress_timer.async_wait(on_progress);
  };
  progress_timer.expires_after(std::chrono::seconds(1));
  progress_timer.async_wait(on_progress);

  asio::co_spawn(io, engine.main(), [&](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::critical("engine failed: {}", ex.what());
      }
    }
    running = false;
    fetcher.close();  // nothing is in flight; curl's timer goes too
    render::renderer(io).close();  // the browser, if one runs, is killed and reaped
    signals.cancel();
    heartbeat.cancel();
    progress_timer.cancel();
    drain_limit.cancel();
  });
  if (options.debug_loop.count() > 0) {
    spdlog::info("--debug-loop: logging event-loop steps longer than {} ms",
                 options.debug_loop.count());
    loop_watch::watch_this_thread(options.debug_loop);
  }
  io.run();
  loop_watch::watch_this_thread(std::chrono::nanoseconds(0));
  api.reset();  // no request is served once the loop is gone
  cpu_pool.join();
  writer->close();
  if (auto dropped = writer->dropped(); dropped > 0) {
    spdlog::critical(
        "scraperd: stopped, {} rows committed, {} rows LOST (their commits kept "
        "failing: {})",
        writer->committed(), dropped, writer->last_error());
    return 1;
  }
  if (display) display->show({});
  if (options.once) {
    const auto& t = engine.totals();
    std::string kinds;
    for (const auto& [kind, n] : t.kinds)
      kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", kind, n);
    spdlog::log(t.ok == 0 && t.failed > 0 ? spdlog::level::warn : spdlog::level::info,
                "run --once: {} URL{}: {} ok, {} changed, {} failed{} in {:.1f} s; {} rows "
                "committed",
                t.urls, t.urls == 1 ? "" : "s", t.ok, t.changed, t.failed,
                kinds.empty() ? "" : " (" + kinds + ")", seconds(Steady::now() - began),
                writer->committed());
    return t.failed > 0 ? 3 : 0;
  }
  spdlog::info("scraperd: stopped, {} rows committed", writer->committed());
  return 0;
}

}  // namespace scraperd::daemon
