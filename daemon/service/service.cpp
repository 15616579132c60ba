#include "daemon/service/service.h"

#include <malloc.h>
#include <signal.h>
#include <sys/resource.h>

#include <spdlog/spdlog.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <thread>

#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <set>

#include "daemon/cli/progress.h"
#include "daemon/cluster/cluster.h"
#include "daemon/core/blocking.h"
#include "daemon/core/loop_watch.h"
#include "daemon/core/metrics.h"
#include "daemon/core/naps.h"
#include "daemon/core/row_sink.h"
#include "daemon/crawl/crawler.h"
#include "daemon/crawl/fetch.h"
#include "daemon/crawl/politeness.h"
#include "daemon/crawl/url_state.h"
#include "daemon/notify/notifier.h"
#include "daemon/render/render.h"
#include "daemon/schedule/scheduler.h"
#include "daemon/service/api.h"
#include "daemon/service/systemd.h"
#include "storage/db_lock.h"
#include "storage/writer.h"

namespace scraperd::daemon {
namespace {

using asio::awaitable;

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

// What the last daemon left in the database: each job's next due time, each URL's state,
// each job's failing streak.
struct Persisted {
  std::map<std::string, storage::Clock::time_point> due;
  UrlStates url_states;
  std::map<std::string, int> failing;
  std::set<std::string> paused;
};

// The stages put together: the scheduler starts runs of the crawler, whose requests go
// through politeness, whose rows go to the writer, whose changes go to the notifier. Also the
// daemon-wide state the API and systemd ask about, and reloads.
class Daemon {
 public:
  Daemon(asio::io_context& io, Fetcher& fetcher, asio::thread_pool& cpu_pool,
         storage::Writer& writer, std::shared_ptr<const config::Config> config,
         const RunOptions& options, Metrics& metrics, Persisted persisted, cluster::Node* cluster)
      : fetcher_(fetcher),
        cpu_pool_(cpu_pool),
        options_(options),
        metrics_(metrics),
        config_(std::move(config)),
        naps_(io.get_executor()),
        rows_(writer, cpu_pool, config_->secrets),
        states_(std::move(persisted.url_states)),
        renderer_(render::renderer(io)),
        politeness_(io.get_executor(), config_->concurrency, fetcher, &renderer_, naps_, rows_,
                    metrics),
        notifier_(politeness_, rows_, metrics, std::move(persisted.failing)),
        crawler_(
            io.get_executor(),
            CrawlerParts{politeness_, notifier_, rows_, states_, cpu_pool, metrics, last_error_},
            config_->concurrency),
        cluster_(cluster),
        scheduler_(io.get_executor(), rows_, metrics,
                   scheduler_options(options, std::move(persisted), cluster),
                   [this](const config::Job& job, TimePoint due) { return run_job(job, due); }) {}

  awaitable<void> main() {
    if (cluster_) {
      auto executor = co_await asio::this_coro::executor;
      asio::co_spawn(executor, cluster_->run(), asio::detached);
    }
    co_await scheduler_.start(config_);
    co_await release_freed_memory();
    systemd::ready(status());
    co_await scheduler_.wait();
    if (cluster_) co_await cluster_->leave();  // every run has ended: its lease is gone
  }

  // Stop scheduling: sleeping jobs wake and end; requests already sent finish (bounded by
  // their timeout, and by abandon()); requests not yet sent (waiting for their host, or for a
  // retry) end as `cancelled` error rows. Nothing is left without a row.
  void stop() {
    scheduler_.stop();
    naps_.stop();
    politeness_.close();
  }

  // Cuts a stop short: every request still in flight ends now as `cancelled` (its row says
  // why), and so does every request a run would still send; the runs end as `cancelled`.
  void abandon(const std::string& why) {
    abandoned_ = true;
    crawler_.abandon(why);
    fetcher_.close();
    renderer_.close();
  }

  bool abandoned() const { return abandoned_; }
  std::size_t in_flight() const { return fetcher_.in_flight(); }

  // SIGHUP: reads the job files again. A file with errors changes nothing (every error is
  // logged); otherwise the scheduler applies it (Scheduler::apply). Reloads asked for during
  // a reload run after it.
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
        std::uint64_t changes = scheduler_.pause_changes();
        std::string db = options_.db_path;
        auto read_paused = [db] { return paused_in(db); };
        std::set<std::string> paused = co_await run_blocking(cpu_pool_, std::move(read_paused));
        if (changes != scheduler_.pause_changes()) continue;
        scheduler_.replace_paused(std::move(paused));
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
    } while (reload_again_ && !naps_.stopping());
    reloading_ = false;
  }

  // For POST /api/reload: reloads (or joins the reload going on) and reports how it went.
  awaitable<void> reload_for(std::shared_ptr<std::promise<ReloadOutcome>> answer) {
    co_await reload();
    while (reloading_) {  // another reload was running: ours is its next round
      bool awake = co_await naps_.nap(std::chrono::milliseconds(10));
      if (!awake) break;
    }
    ReloadOutcome outcome{last_reload_ok_, last_reload_errors_};
    answer->set_value(std::move(outcome));
  }

  RunNow request_run(const std::string& name) { return scheduler_.request_run(name); }
  bool has_job(const std::string& name) const { return scheduler_.has_job(name); }
  void set_paused(const std::string& name, bool pause) { scheduler_.set_paused(name, pause); }
  std::shared_ptr<const config::Config> config() const { return config_; }
  std::vector<std::string> progress() { return crawler_.progress(); }
  const Crawler::Totals& totals() const { return crawler_.totals(); }

  // For /api/status.
  DaemonStatus daemon_status() const {
    DaemonStatus d;
    d.since = started_at_;
    d.config_path = options_.config_path;
    d.jobs = scheduler_.jobs();
    d.paused = scheduler_.paused_jobs();
    d.requests_in_flight = static_cast<int>(fetcher_.in_flight());
    d.last_reload_ok = last_reload_ok_;
    d.last_reload_at = last_reload_at_;
    d.last_reload_errors = last_reload_errors_;
    return d;
  }

  // For the API (loop thread): the node owning `job`'s hosts when it is another one.
  std::string owner_elsewhere(const std::string& job) const {
    if (!cluster_) return "";
    std::string owner = cluster_->owner_of(job);
    return owner == cluster_->id() ? "" : owner;
  }
  std::string cluster_json() const { return cluster_ ? cluster::to_json(cluster_->view()) : "{}"; }

  // For systemd's STATUS= and the logs.
  std::string status() const {
    std::string s =
        fmt::format("{} jobs, {} requests in flight", scheduler_.jobs(), fetcher_.in_flight());
    if (!last_error_.empty()) s += "; last error: " + last_error_;
    return s;
  }

 private:
  // A good job file: the scheduler takes its jobs; the settings that apply at once apply.
  awaitable<void> apply(std::shared_ptr<const config::Config> next) {
    if (next->storage.locator() != config_->storage.locator() ||
        next->concurrency != config_->concurrency)
      spdlog::warn(
          "reload: 'storage.path', 'storage.url' and 'concurrency' take effect at the next start");
    if (!options_.log_level_fixed) spdlog::set_level(spdlog::level::from_str(next->log.level));
    rows_.add_secrets(next->secrets);
    if (cluster_) co_await cluster_->reconfigure(next);
    config_ = next;
    co_await scheduler_.apply(std::move(next));
    co_await release_freed_memory();
  }

  static SchedulerOptions scheduler_options(const RunOptions& options, Persisted persisted,
                                            cluster::Node* cluster) {
    SchedulerOptions o{options.once, std::move(persisted.due), std::move(persisted.paused), {}};
    if (cluster)
      o.claim = [cluster](const config::Job& job, TimePoint due, TimePoint next, bool scheduled) {
        return cluster->claim(job, due, next, scheduled);
      };
    return o;
  }

  // A run; on a cluster, its lease goes when it ends.
  awaitable<void> run_job(const config::Job& job, TimePoint due) {
    co_await crawler_.run(job, due);
    if (cluster_) co_await cluster_->release(job);
  }

  // Reading a job file builds a large short-lived tree (10,000 jobs: ~25 MB), and glibc keeps
  // the pages it freed: hand them back to the system, off the loop (a trim takes milliseconds).
  awaitable<void> release_freed_memory() {
    co_await run_blocking(cpu_pool_, [] { ::malloc_trim(0); });
  }

  Fetcher& fetcher_;  // every request, on the loop (libcurl's multi interface)
  // Parsing pages and config files, and waiting for room in a full writer queue: one thread
  // per core.
  asio::thread_pool& cpu_pool_;
  const RunOptions options_;
  Metrics& metrics_;
  std::shared_ptr<const config::Config> config_;  // the current snapshot
  std::string last_error_;
  Naps naps_;
  RowSink rows_;
  UrlStates states_;
  render::Renderer& renderer_;  // render: chromium jobs' browser, started on first need
  Politeness politeness_;
  Notifier notifier_;
  Crawler crawler_;
  cluster::Node* cluster_;  // null on SQLite and with --once
  Scheduler scheduler_;
  bool abandoned_ = false;
  bool reloading_ = false;
  bool reload_again_ = false;
  bool last_reload_ok_ = true;
  std::vector<std::string> last_reload_errors_;
  std::string last_reload_at_;  // "" until the first reload
  const std::string started_at_ = iso_time(std::chrono::system_clock::now());
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
               config->source, storage::redacted(options.db_path), config->concurrency);
  const rlim_t files = raise_file_limit(config->concurrency);

  asio::io_context io(1);
  Fetcher fetcher(io, connections_to_keep(config->concurrency, files == RLIM_INFINITY ? 0 : files));
  // CPU work gets as many threads as there are cores: sixty-four fetch threads parsing at
  // once on two cores only switch between each other and spread their pages' trees over
  // more memory (docs/performance.md).
  asio::thread_pool cpu_pool(std::max(1u, std::thread::hardware_concurrency()));
  Persisted persisted;
  persisted.url_states = UrlStates(options.db_path);
  try {
    persisted.due = storage::next_due_times(options.db_path);
    persisted.url_states.load();
    persisted.failing = storage::failing_streaks(options.db_path);
  } catch (const storage::Error& e) {
    spdlog::warn("cannot read the persisted state ({}); starting afresh", e.what());
  }
  persisted.paused = paused_in(options.db_path);
  const auto shutdown_timeout = config->shutdown_timeout;
  Metrics metrics;
  render::renderer(io).configure(config->render);  // started on a render job's first page
  // On PostgreSQL the daemon is a node of a cluster (daemon/cluster/cluster.h), joined before
  // any job is scheduled.
  std::unique_ptr<cluster::Node> node;
  if (storage::is_postgres(options.db_path) && !options.once) {
    try {
      node = std::make_unique<cluster::Node>(
          io.get_executor(),
          cluster::Settings{options.db_path,
                            options.node_id.empty() ? cluster::host_name() : options.node_id,
                            config->cluster},
          config);
    } catch (const storage::Error& e) {
      spdlog::critical("cluster: {}", e.what());
      return 1;
    }
  }
  Daemon engine(io, fetcher, cpu_pool, *writer, config, options, metrics, std::move(persisted),
                node.get());

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
    if (node) {
      hooks.owner_elsewhere = [&io, &engine](const std::string& name) {
        auto answer = std::make_shared<std::promise<std::string>>();
        auto result = answer->get_future();
        asio::post(io,
                   [&engine, answer, name] { answer->set_value(engine.owner_elsewhere(name)); });
        if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
          return std::string();
        return result.get();
      };
      hooks.cluster = [&io, &engine]() -> std::string {
        auto answer = std::make_shared<std::promise<std::string>>();
        auto result = answer->get_future();
        asio::post(io, [&engine, answer] { answer->set_value(engine.cluster_json()); });
        if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready)
          throw storage::Error("the daemon did not answer within 10 s (stopping?)", 0);
        return result.get();
      };
    }
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
    if (node) node->stop();        // after a failure: the node leaves when it is destroyed
    fetcher.close();               // nothing is in flight; curl's timer goes too
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
