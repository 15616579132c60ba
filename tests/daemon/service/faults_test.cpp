// Faults around the whole daemon: killed with SIGKILL while writing, again and again; a
// SIGTERM with a thousand requests in flight.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <random>
#include <thread>

#include "tests/support/hostile_server.h"
#include "tests/support/http_server.h"
#include "tests/support/process.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using namespace std::chrono_literals;
using test::eventually;

TEST_CASE("SIGKILL while writing, five times: integrity ok, committed rows kept, schedule goes on",
          "[faults]") {
  test::HttpServer site;
  site.server().new_task_queue = [] { return new httplib::ThreadPool(8); };
  site.server().Get(R"(/p/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("<p>" + req.matches[1].str() + "</p>", "text/html");
  });
  site.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml",
                       "api: {listen: ''}\njobs:\n  - name: busy\n    every: 1s\n"
                       "    robots: ignore\n    url: '" +
                           site.url("/p/{1..200}") +
                           "'\n    per_host: {rate: 5000/s, burst: 200, "
                           "concurrency: 16}\n");
  auto db = dir.file("k.db");
  std::mt19937 random(42);
  std::int64_t kept_count = 0, kept_max = 0;
  for (int round = 0; round < 5; ++round) {
    pid_t pid = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
    test::Reaper reaper(pid);
    auto count = [&] {
      try {
        return std::stoll(test::sql1(db, "SELECT count(*) FROM results"));
      } catch (const std::exception&) {
        return 0LL;
      }
    };
    REQUIRE(eventually([&] { return count() > kept_count; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + random() % 400));
    ::kill(pid, SIGKILL);
    test::wait_exit(pid);
    INFO("round " << round);
    REQUIRE(test::sql1(db, "PRAGMA integrity_check") == "ok");
    // Every row committed before an earlier kill is still there, unchanged in number.
    CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE id <= " + std::to_string(kept_max)) ==
          std::to_string(kept_count));
    kept_count = std::stoll(test::sql1(db, "SELECT count(*) FROM results"));
    kept_max = std::stoll(test::sql1(db, "SELECT coalesce(max(id), 0) FROM results"));
    CHECK(kept_count == kept_max);  // ids are dense: no half-written batch left holes
  }
  // A last, orderly run: killed runs are closed as interrupted, and the schedule goes on
  // (a run that ends ok after this start; SIGTERM only then, once the daemon handles it).
  auto ok_runs = [&] {
    return std::stoll(test::sql1(db, "SELECT count(*) FROM runs WHERE status = 'ok'"));
  };
  const auto ok_before = ok_runs();
  pid_t pid = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);
  REQUIRE(eventually([&] { return ok_runs() > ok_before; }));
  ::kill(pid, SIGTERM);
  CHECK(test::wait_exit(pid) == 0);
  CHECK(test::sql1(db, "SELECT count(*) FROM runs WHERE status = 'running'") == "0");
  CHECK(test::sql1(db, "PRAGMA integrity_check") == "ok");
}

TEST_CASE("SIGTERM with 1000 requests in flight: every one is stored", "[faults]") {
  test::HostileServer slow;  // /slow-ok/N answers 200 after 6 s; a thread per connection
  test::TempDir dir;
  // 250/s: the 1000 connects arrive over 4 s, each held 6 s, so all are in flight together.
  auto cfg = dir.write("jobs.yaml",
                       "concurrency: 1000\napi: {listen: ''}\njobs:\n  - name: wide\n"
                       "    every: 1s\n    robots: ignore\n    timeout: 30s\n    url: '" +
                           slow.url("/slow-ok/{1..1000}") +
                           "'\n    per_host: {rate: 250/s, burst: 10, concurrency: 1000}\n");
  auto db = dir.file("t.db");
  // The service itself (not --once); SIGTERM comes when the server has read all 1000 requests.
  pid_t pid = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);
  REQUIRE(eventually([&] { return slow.requests() >= 1000; }, 30s));
  ::kill(pid, SIGTERM);
  REQUIRE(test::wait_exit(pid) == 0);
  CHECK(test::sql1(db, "SELECT count(*) FROM results") == "1000");
  CHECK(test::sql1(db, "SELECT count(*) FROM errors") == "0");
  CHECK(test::sql1(db, "SELECT status || ' ' || ok FROM runs") == "ok 1000");
}
