// The scheduler alone: no HTTP, no crawler. Its runs are a function that records the job;
// its rows go to a real SQLite file.
#include "daemon/schedule/scheduler.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <map>
#include <string>
#include <vector>

#include "storage/store.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using namespace std::chrono_literals;
using daemon::RunNow;
using daemon::Scheduler;
using daemon::TimePoint;

namespace {

std::shared_ptr<const config::Config> jobs(const std::string& yaml) {
  auto loaded = config::load_string(yaml, "jobs.yaml");
  REQUIRE(loaded.ok());
  return loaded.config;
}

asio::awaitable<void> record(std::vector<std::string>* ran, std::string name) {
  ran->push_back(std::move(name));
  co_return;
}

asio::awaitable<void> pause_for(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(asio::use_awaitable);
}

// A scheduler over a real writer; every run it starts is recorded in `ran`.
struct Bench {
  explicit Bench(daemon::SchedulerOptions options = {})
      : writer(dir.file("s.db")),
        rows(writer, pool, {}),
        scheduler(io.get_executor(), rows, metrics, std::move(options),
                  [this](const config::Job& job, TimePoint) { return record(&ran, job.name); }) {}

  test::TempDir dir;
  storage::Writer writer;
  asio::io_context io;
  asio::thread_pool pool{1};
  daemon::RowSink rows;
  daemon::Metrics metrics;
  std::vector<std::string> ran;
  Scheduler scheduler;
};

const char* kTwoJobs =
    "jobs:\n"
    "  - {name: a, url: 'http://127.0.0.1:9/a', every: 1h}\n"
    "  - {name: b, url: 'http://127.0.0.1:9/b', every: 1h}\n"
    "  - {name: off, url: 'http://127.0.0.1:9/c', every: 1h, paused: true}\n";

}  // namespace

TEST_CASE("scheduler, once: every job not paused runs exactly once, then wait() returns",
          "[scheduler]") {
  daemon::SchedulerOptions options;
  options.once = true;
  options.paused = {"b"};  // paused in the database: once skips it too
  Bench bench(options);
  auto config = jobs(kTwoJobs);
  bool done = false;
  auto body = [](Bench* b, std::shared_ptr<const config::Config> c,
                 bool* finished) -> asio::awaitable<void> {
    co_await b->scheduler.start(c);
    co_await b->scheduler.wait();
    *finished = true;
  };
  asio::co_spawn(bench.io, body(&bench, config, &done), asio::detached);
  bench.io.run_for(10s);
  CHECK(done);
  CHECK(bench.ran == std::vector<std::string>{"a"});
  bench.writer.close();
  // Every job of the file is registered (its jobs row), the paused ones too.
  CHECK(test::sql1(bench.dir.file("s.db"), "SELECT count(*) FROM jobs") == "3");
}

TEST_CASE("scheduler, reload: unchanged, changed, removed and added jobs, then run now and pause",
          "[scheduler]") {
  Bench bench;
  struct Seen {
    int jobs_before = 0, jobs_after = 0;
    bool has_b = true, has_c = false;
    RunNow unknown{}, c_now{}, c_again{}, paused{};
    int paused_jobs = 0;
    std::vector<std::string> ran_after_run_now;
  } seen;
  auto body = [](Bench* b, Seen* s) -> asio::awaitable<void> {
    co_await b->scheduler.start(jobs(kTwoJobs));
    s->jobs_before = b->scheduler.jobs();
    // a changes its URL, b goes, c comes; every: 1h keeps them all far from their due time.
    co_await b->scheduler.apply(
        jobs("jobs:\n"
             "  - {name: a, url: 'http://127.0.0.1:9/a2', every: 1h}\n"
             "  - {name: c, url: 'http://127.0.0.1:9/c', every: 1h}\n"));
    co_await pause_for(50ms);  // the removed job wakes and leaves
    s->jobs_after = b->scheduler.jobs();
    s->has_b = b->scheduler.has_job("b");
    s->has_c = b->scheduler.has_job("c");
    s->unknown = b->scheduler.request_run("b");
    s->c_now = b->scheduler.request_run("c");
    s->c_again = b->scheduler.request_run("c");  // still asked for: not twice
    co_await pause_for(100ms);
    s->ran_after_run_now = b->ran;
    b->scheduler.set_paused("a", true);
    s->paused = b->scheduler.request_run("a");
    s->paused_jobs = b->scheduler.paused_jobs();
    b->scheduler.stop();
    co_await b->scheduler.wait();
  };
  asio::co_spawn(bench.io, body(&bench, &seen), asio::detached);
  bench.io.run_for(10s);
  CHECK(seen.jobs_before == 2);  // `off` is paused in the file: no slot
  CHECK(seen.jobs_after == 2);   // a and c
  CHECK_FALSE(seen.has_b);
  CHECK(seen.has_c);
  CHECK(seen.unknown == RunNow::kUnknownJob);
  CHECK(seen.c_now == RunNow::kStarted);
  CHECK(seen.c_again == RunNow::kAlreadyRunning);
  CHECK(seen.ran_after_run_now == std::vector<std::string>{"c"});
  CHECK(seen.paused == RunNow::kPaused);
  CHECK(seen.paused_jobs == 1);
}

namespace {

// A cluster's claim as the scheduler sees it (daemon/cluster/ answers on PostgreSQL): the
// first scheduled run was already run by another node, which set the due time to `adopt`;
// the next scheduled run is this node's; a run now is another node's.
struct Claims {
  struct Call {
    std::string job;
    TimePoint due, next;
    bool scheduled = true;
  };
  std::vector<Call> calls;
  TimePoint adopt;
};

asio::awaitable<daemon::ClaimAnswer> answer(Claims* c, std::string job, TimePoint due,
                                            TimePoint next, bool scheduled) {
  c->calls.push_back({std::move(job), due, next, scheduled});
  daemon::ClaimAnswer a;
  if (c->calls.size() == 1) {
    a.run = false;
    a.due = c->adopt;
  } else {
    a.run = scheduled;
  }
  co_return a;
}

}  // namespace

TEST_CASE("scheduler, claim: a run starts only when claimed, a refusal adopts the due time given",
          "[scheduler]") {
  Claims claims;
  auto now = std::chrono::system_clock::now();
  claims.adopt = now + 300ms;
  daemon::SchedulerOptions options;
  options.persisted_due = {{"a", now - 1s}};  // missed: due at once
  options.claim = [&claims](const config::Job& job, TimePoint due, TimePoint next, bool scheduled) {
    return answer(&claims, job.name, due, next, scheduled);
  };
  Bench bench(options);
  RunNow asked{};
  auto body = [](Bench* b, RunNow* run_now) -> asio::awaitable<void> {
    co_await b->scheduler.start(
        jobs("jobs:\n  - {name: a, url: 'http://127.0.0.1:9/a', every: 1h}\n"));
    co_await pause_for(800ms);  // refused at once, then claimed at `adopt`
    *run_now = b->scheduler.request_run("a");
    co_await pause_for(100ms);
    b->scheduler.stop();
    co_await b->scheduler.wait();
  };
  asio::co_spawn(bench.io, body(&bench, &asked), asio::detached);
  bench.io.run_for(10s);
  REQUIRE(claims.calls.size() == 3);
  CHECK(claims.calls[0].due == now - 1s);
  CHECK(claims.calls[0].scheduled);
  CHECK(claims.calls[1].due == claims.adopt);  // slept until the due time the cluster gave
  CHECK(claims.calls[1].next == claims.adopt + 1h);
  CHECK(asked == RunNow::kStarted);
  CHECK_FALSE(claims.calls[2].scheduled);             // the run now, refused
  CHECK(bench.ran == std::vector<std::string>{"a"});  // the claimed run only
  bench.writer.close();
  // The cluster keeps jobs.next_due: the scheduler did not write it.
  CHECK(test::sql1(bench.dir.file("s.db"), "SELECT count(*) FROM jobs WHERE next_due IS NULL") ==
        "1");
}
