#include "daemon/engine.h"

#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>

#include "storage/store.h"
#include "tests/support/http_server.h"
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
      "    timeout: 5s\n");

  REQUIRE(daemon::run(config, {.db_path = dir.file("out.db"), .once = true}) == 0);

  auto results = storage::recent_results(dir.file("out.db"), 100);
  REQUIRE(results.size() == 2);
  for (const auto& r : results) {
    CHECK(r.job == "pages");
    CHECK(r.status == 200);
    CHECK(r.elapsed_ms >= 0);
  }
  CHECK(results[0].bytes + results[1].bytes == 31);  // "<h1>page 1</h1>" + "<h1>page 22</h1>"

  auto errors = storage::recent_errors(dir.file("out.db"), 100);
  REQUIRE(errors.size() == 2);
  std::map<std::string, storage::ErrorRow> by_job;
  for (auto& e : errors) by_job[e.job] = e;
  CHECK(by_job["down"].kind == "connect");
  CHECK(by_job["down"].url == "http://127.0.0.1:" + std::to_string(refused) + "/");
  CHECK(by_job["pages"].kind == "http");
  CHECK(by_job["pages"].status == 410);
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
  auto config = load("concurrency: 8\njobs:\n  - {name: slow, every: 1h, urls: [" + urls + "]}\n");

  auto start = std::chrono::steady_clock::now();
  REQUIRE(daemon::run(config, {.db_path = dir.file("c.db"), .once = true}) == 0);
  auto elapsed = std::chrono::steady_clock::now() - start;

  CHECK(storage::recent_results(dir.file("c.db"), 100).size() == 8);
  CHECK(peak.load() >= 4);  // several requests were in flight at once
  CHECK(elapsed < 3s);      // generous: ~0.6 s expected, 4.8 s if serialised
}
