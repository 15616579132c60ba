// scraperd run on PostgreSQL (storage.url): the writer and the start-up reads.
#include <catch2/catch.hpp>
#include <mutex>

#include "storage/writer.h"
#include "tests/storage/test_db.h"
#include "tests/support/http_server.h"
#include "tests/support/process.h"

using namespace scraperd;

TEST_CASE("scraperd run --once on storage.url writes to PostgreSQL and resumes from it",
          "[service][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "daemon");
  std::mutex mu;
  std::vector<std::string> if_none_match;  // per request
  test::HttpServer site;
  site.server().Get("/p", [&](const httplib::Request& req, httplib::Response& res) {
    std::string inm = req.get_header_value("If-None-Match");
    {
      std::lock_guard lock(mu);
      if_none_match.push_back(inm);
    }
    res.set_header("ETag", "\"v1\"");
    if (inm == "\"v1\"") {
      res.status = 304;
      return;
    }
    res.set_content("<html><body><h1>Widget</h1></body></html>", "text/html");
  });
  site.start();
  auto cfg = dir.write("jobs.yaml", "storage: {url: '" + db.locator +
                                        "'}\n"
                                        "jobs:\n  - {name: widget, url: '" +
                                        site.url("/p") + "', every: 1h, robots: ignore}\n");
  for (int run = 1; run <= 2; ++run) {
    auto out = test::run_cli(dir, {"run", "--once", "--config", cfg});
    INFO(out.err);
    REQUIRE(out.exit_code == 0);
    CHECK_THAT(out.err, Catch::Contains("database postgresql://"));
  }
  CHECK(test::scalar(db, "SELECT string_agg(status::text, ',' ORDER BY id) FROM results") ==
        "200,304");
  CHECK(test::scalar(db, "SELECT string_agg(status, ',' ORDER BY id) FROM runs") == "ok,ok");
  CHECK(test::scalar(db, "SELECT count(*) FROM results r JOIN runs u ON u.id = r.run_id") == "2");
  CHECK(test::scalar(db, "SELECT etag FROM url_state WHERE job = 'widget'") == "\"v1\"");
  CHECK(test::scalar(db, "SELECT count(*) FROM jobs WHERE name = 'widget'") == "1");
  // The second process read the URL's state from PostgreSQL at start-up and sent its ETag.
  std::lock_guard lock(mu);
  CHECK(if_none_match == std::vector<std::string>{"", "\"v1\""});
}

TEST_CASE("scraperd migrate copies a SQLite history into PostgreSQL, once", "[cli][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "migrate");
  auto from = dir.file("old.db");
  {
    storage::Writer w(from);
    auto key = w.new_run_key();
    auto now = storage::Clock::now();
    w.push(storage::JobSeen{"j", "every 1h", 1, now});
    w.push(storage::RunStarted{key, "j", now, now, 1});
    w.push(storage::ResultRow{key, "j", "http://a/", "", 200, 1, 1, now});
    w.push(storage::RunFinished{key, now, "ok", 1, 0});
  }
  auto out = test::run_cli(dir, {"migrate", "--from", from, "--to", db.locator});
  INFO(out.err);
  REQUIRE(out.exit_code == 0);
  CHECK_THAT(out.out, Catch::Contains("jobs 1, paused 0, runs 1, results 1, errors 0"));
  CHECK(test::scalar(db, "SELECT count(*) FROM results r JOIN runs u ON u.id = r.run_id") == "1");
  // The query commands read it with --db URL.
  auto results = test::run_cli(dir, {"results", "--db", db.locator, "--format", "csv"});
  CHECK(results.exit_code == 0);
  CHECK_THAT(results.out, Catch::Contains("http://a/"));

  auto again = test::run_cli(dir, {"migrate", "--from", from, "--to", db.locator});
  CHECK(again.exit_code == 1);
  CHECK_THAT(again.err, Catch::Contains("already holds a history"));
  CHECK(test::run_cli(dir, {"migrate", "--from", from, "--to", from}).exit_code == 2);
}
