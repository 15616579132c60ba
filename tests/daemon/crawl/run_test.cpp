#include "daemon/service/service.h"

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "tests/support/http_server.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<const config::Config> load(const std::string& yaml) {
  auto r = config::load_string(yaml, "test.yaml");
  for (const auto& e : r.errors) FAIL(e.str());
  return r.config;
}

}  // namespace

TEST_CASE("run --once stores a result or an error row for every URL of every job", "[engine]") {
  test::HttpServer srv;
  srv.server().Get(R"(/page/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("<h1>page " + req.matches[1].str() + "</h1>", "text/html");
  });
  srv.server().Get("/gone",
                   [](const httplib::Request&, httplib::Response& res) { res.status = 410; });
  srv.start();
  test::TempDir dir;
  int refused = test::refused_port();

  auto config = load(
      "jobs:\n"
      "  - name: pages\n"
      "    urls: ['" +
      srv.url("/page/1") + "', '" + srv.url("/page/22") + "', '" + srv.url("/gone") +
      "']\n"
      "    every: 1h\n"
      "  - name: down\n"
      "    url: http://127.0.0.1:" +
      std::to_string(refused) +
      "/\n"
      "    every: 1h\n"
      "    timeout: 5s\n"
      "    retries: {max: 1, backoff: 10ms}\n"
      "    robots: ignore\n");

  REQUIRE(daemon::run(config, {.db_path = dir.file("out.db"), .once = true}) == 3);  // some failed
  auto db = dir.file("out.db");

  auto results = test::sql(db, "SELECT * FROM results ORDER BY url");
  REQUIRE(results.size() == 2);
  CHECK(results[0]["url"] == srv.url("/page/1"));
  CHECK(results[0]["bytes"] == "15");  // "<h1>page 1</h1>"
  CHECK(results[1]["bytes"] == "16");
  for (auto& r : results) {
    CHECK(r["job"] == "pages");
    CHECK(r["status"] == "200");
    CHECK_FALSE(r["run_id"].empty());
  }

  // A refused connection is retried (once, as configured); a 410 is not.
  auto errors = test::sql(db, "SELECT * FROM errors ORDER BY job, attempt");
  REQUIRE(errors.size() == 3);
  for (int i : {0, 1}) {
    CHECK(errors[i]["job"] == "down");
    CHECK(errors[i]["kind"] == "connect");
    CHECK(errors[i]["attempt"] == std::to_string(i + 1));
    CHECK(errors[i]["url"] == "http://127.0.0.1:" + std::to_string(refused) + "/");
  }
  CHECK_THAT(errors[0]["message"], Catch::Contains("retry 1 of 1"));
  CHECK(errors[2]["job"] == "pages");
  CHECK(errors[2]["kind"] == "http");
  CHECK(errors[2]["status"] == "410");
  CHECK(errors[2]["attempt"] == "1");

  // One run per job, closed with its counts; both jobs registered.
  auto runs = test::sql(db, "SELECT * FROM runs ORDER BY job");
  REQUIRE(runs.size() == 2);
  CHECK(runs[0]["status"] == "failed");
  CHECK(runs[1]["status"] == "partial");
  CHECK(runs[1]["ok"] == "2");
  CHECK(runs[1]["failed"] == "1");
  CHECK(runs[1]["urls"] == "3");
  CHECK(runs[1]["finished_at"] >= runs[1]["started_at"]);
  CHECK(runs[1]["started_at"] >= runs[1]["due_at"]);
  CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE run_id = " + runs[1]["id"]) == "2");
  CHECK(test::sql1(db,
                   "SELECT group_concat(name || ':' || schedule || ':' || urls) FROM "
                   "(SELECT * FROM jobs ORDER BY name)") == "down:every 1h:1,pages:every 1h:3");
}

TEST_CASE("a job's URLs are fetched concurrently, off the event loop", "[engine]") {
  // Eight URLs that each take 600 ms: fetched one after another (or on the loop thread, which
  // would serialise them) they would take 4.8 s; concurrently about 0.6 s.
  std::atomic<int> in_flight{0}, peak{0};
  test::HttpServer srv;
  srv.server().new_task_queue = [] { return new httplib::ThreadPool(16); };
  srv.server().Get(R"(/slow/(\d+))", [&](const httplib::Request&, httplib::Response& res) {
    int now = ++in_flight;
    for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
    }
    std::this_thread::sleep_for(600ms);
    --in_flight;
    res.set_content("ok", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  std::string urls;
  for (int i = 0; i < 8; ++i)
    urls += (i ? ", '" : "'") + srv.url("/slow/" + std::to_string(i)) + "'";
  auto config = load("concurrency: 8\njobs:\n  - {name: slow, every: 1h, urls: [" + urls +
                     "], per_host: {rate: 100/s, burst: 8, concurrency: 8}}\n");

  auto start = std::chrono::steady_clock::now();
  REQUIRE(daemon::run(config, {.db_path = dir.file("c.db"), .once = true}) == 0);
  auto elapsed = std::chrono::steady_clock::now() - start;

  CHECK(test::sql1(dir.file("c.db"), "SELECT count(*) FROM results") == "8");
  CHECK(peak.load() >= 4);  // several requests were in flight at once
  CHECK(elapsed < 3s);      // generous: ~0.6 s expected, 4.8 s if serialised
}

TEST_CASE("a host gets no more than its rate plus burst, and no more than its concurrency",
          "[engine][frontier]") {
  std::mutex mu;
  std::vector<std::chrono::steady_clock::time_point> arrivals;
  std::atomic<int> in_flight{0}, peak{0};
  test::HttpServer srv;
  srv.server().new_task_queue = [] { return new httplib::ThreadPool(16); };
  srv.server().Get(R"(/p/(\d+))", [&](const httplib::Request&, httplib::Response& res) {
    {
      std::lock_guard lock(mu);
      arrivals.push_back(std::chrono::steady_clock::now());
    }
    int now = ++in_flight;
    for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
    }
    std::this_thread::sleep_for(30ms);
    --in_flight;
    res.set_content("ok", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  auto config =
      load("concurrency: 16\njobs:\n  - name: polite\n    urls: ['" + srv.url("/p/{1..14}") +
           "']\n    every: 1h\n    per_host: {rate: 10/s, burst: 2, concurrency: 2}\n");
  auto start = std::chrono::steady_clock::now();
  REQUIRE(daemon::run(config, {.db_path = dir.file("r.db"), .once = true}) == 0);
  auto elapsed = std::chrono::steady_clock::now() - start;

  CHECK(test::sql1(dir.file("r.db"), "SELECT count(*) FROM results") == "14");
  CHECK(peak.load() <= 2);
  // 14 requests at 10/s with a burst of 2 cannot take less than 1.2 s.
  CHECK(elapsed >= 1100ms);
  // In any one-second window the server saw at most rate + burst requests (+1 for the edges).
  std::sort(arrivals.begin(), arrivals.end());
  for (size_t i = 0; i < arrivals.size(); ++i) {
    size_t j = i;
    while (j < arrivals.size() && arrivals[j] - arrivals[i] < 1s) ++j;
    CHECK(j - i <= 13);
  }
}
