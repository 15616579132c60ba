// A 304 is the page as it was: a follow job goes on to the links it had, and the result row
// carries the data forward. `conditional: false` sends no validators.
#include <signal.h>

#include <catch2/catch.hpp>
#include <map>
#include <mutex>

#include "daemon/service/service.h"
#include "tests/support/http_server.h"
#include "tests/support/process.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;

namespace {

std::shared_ptr<const config::Config> load(const std::string& yaml) {
  auto r = config::load_string(yaml, "test.yaml");
  for (const auto& e : r.errors) FAIL(e.str());
  return r.config;
}

// A small site with honest validators: /start links to /a and /b; /a's content is `version`.
struct Site {
  std::mutex mu;
  int version = 1;
  std::map<std::string, int> hits, not_modified;
  std::vector<std::string> conditions;  // If-None-Match of every request
  test::HttpServer srv;

  Site() {
    srv.server().Get(
        R"(/(start|a|b))", [this](const httplib::Request& req, httplib::Response& res) {
          std::lock_guard lock(mu);
          std::string path = req.path;
          ++hits[path];
          std::string body = path == "/start" ? "<h1>Start</h1><a href='/a'>a</a><a href='/b'>b</a>"
                             : path == "/a"   ? "<h1>A v" + std::to_string(version) + "</h1>"
                                              : "<h1>B</h1>";
          std::string etag = "\"" + std::to_string(std::hash<std::string>{}(body)) + "\"";
          conditions.push_back(req.get_header_value("If-None-Match"));
          if (req.get_header_value("If-None-Match") == etag) {
            ++not_modified[path];
            res.status = 304;
            res.set_header("ETag", etag);
            return;
          }
          res.set_header("ETag", etag);
          res.set_content(body, "text/html");
        });
    srv.start();
  }
};

}  // namespace

TEST_CASE("a follow job whose start page answers 304 still follows its links", "[engine][304]") {
  Site site;
  test::TempDir dir;
  auto db = dir.file("f.db");
  auto config = load("jobs:\n  - name: f\n    url: '" + site.srv.url("/start") +
                     "'\n    every: 1h\n    robots: ignore\n    follow: {max_depth: 1}\n"
                     "    extract: {title: h1}\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  {
    std::lock_guard lock(site.mu);
    site.version = 2;  // a deeper page changes; the start page does not
  }
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);  // a restart between runs

  std::lock_guard lock(site.mu);
  CHECK(site.not_modified["/start"] == 1);
  CHECK(site.hits["/a"] == 2);  // followed from the 304
  CHECK(site.not_modified["/b"] == 1);
  CHECK(test::sql1(db, "SELECT group_concat(ok || '/' || urls) FROM runs ORDER BY id") ==
        "3/3,3/3");
  // The changed page's new value, and the 304s' values carried forward.
  auto latest = test::sql(db,
                          "SELECT url, status, changed, json_extract(data, '$.title') AS title "
                          "FROM latest_results ORDER BY url");
  REQUIRE(latest.size() == 3);
  CHECK(latest[0]["url"] == site.srv.url("/a"));
  CHECK(latest[0]["status"] == "200");
  CHECK(latest[0]["title"] == "A v2");
  CHECK(latest[0]["changed"] == "1");
  CHECK(latest[1]["status"] == "304");
  CHECK(latest[1]["title"] == "B");
  CHECK(latest[1]["changed"] == "0");
  CHECK(latest[2]["url"] == site.srv.url("/start"));
  CHECK(latest[2]["status"] == "304");
  CHECK(latest[2]["title"] == "Start");
  CHECK(test::sql1(db, "SELECT links FROM url_state WHERE url LIKE '%/start'") ==
        "[\"" + site.srv.url("/a") + "\",\"" + site.srv.url("/b") + "\"]");
}

TEST_CASE("conditional: false sends no validators, every answer is a full one",
          "[engine][304][config]") {
  Site site;
  test::TempDir dir;
  auto db = dir.file("c.db");
  auto config = load("jobs:\n  - name: c\n    url: '" + site.srv.url("/b") +
                     "'\n    every: 1h\n    robots: ignore\n    conditional: false\n");
  REQUIRE(config->jobs[0].conditional == false);
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  std::lock_guard lock(site.mu);
  CHECK(site.conditions == std::vector<std::string>{"", ""});
  CHECK(test::sql1(db, "SELECT group_concat(status) FROM results") == "200,200");

  // The default sends them.
  auto conditional =
      load("jobs:\n  - name: c\n    url: '" + site.srv.url("/b") + "'\n    every: 1h\n");
  CHECK(conditional->jobs[0].conditional);
}

TEST_CASE("a page that answers as before leaves its url_state row alone", "[engine][304][state]") {
  Site site;
  test::TempDir dir;
  auto db = dir.file("s.db");
  auto config = load("jobs:\n  - name: s\n    url: '" + site.srv.url("/start") +
                     "'\n    every: 1h\n    robots: ignore\n    follow: {max_depth: 1}\n"
                     "    extract: {title: h1}\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  REQUIRE(test::sql1(db, "SELECT count(*) FROM url_state") == "3");
  {  // count every write to url_state from now on
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    const char* sql =
        "CREATE TABLE writes (url TEXT);"
        "CREATE TRIGGER w_update AFTER UPDATE ON url_state BEGIN "
        "  INSERT INTO writes VALUES (new.url); END;"
        "CREATE TRIGGER w_insert AFTER INSERT ON url_state BEGIN "
        "  INSERT INTO writes VALUES (new.url); END;";
    char* error = nullptr;
    const int rc = sqlite3_exec(h, sql, nullptr, nullptr, &error);
    std::string message = error ? error : "";
    sqlite3_free(error);
    sqlite3_close(h);
    REQUIRE(rc == SQLITE_OK);
  }
  // /start and /b answer 304 (their rows stay as they were), /a changes: one write.
  {
    std::lock_guard lock(site.mu);
    site.version = 2;
  }
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  CHECK(test::sql1(db, "SELECT group_concat(url) FROM writes") == site.srv.url("/a"));
  // Nothing changes: no write at all, and every page still answers 304 from the rows read.
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  CHECK(test::sql1(db, "SELECT count(*) FROM writes") == "1");
  std::lock_guard lock(site.mu);
  CHECK(site.not_modified["/start"] == 2);
  CHECK(site.not_modified["/a"] == 1);
  CHECK(site.not_modified["/b"] == 2);
}

TEST_CASE("a daemon's later runs send the validators its earlier runs stored",
          "[engine][304][state]") {
  Site site;
  test::TempDir dir;
  auto db = dir.file("d.db");
  // One daemon, runs a second apart: the later ones read the row the first wrote, with no
  // restart in between.
  auto cfg =
      dir.write("jobs.yaml", "api: {listen: ''}\njobs:\n  - name: d\n    url: '" +
                                 site.srv.url("/b") + "'\n    every: 1s\n    robots: ignore\n");
  pid_t pid = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);
  REQUIRE(test::eventually(
      [&] {
        std::lock_guard lock(site.mu);
        return site.conditions.size() >= 3;
      },
      std::chrono::seconds(20)));
  ::kill(pid, SIGTERM);
  REQUIRE(test::wait_exit(pid) == 0);
  std::lock_guard lock(site.mu);
  CHECK(site.conditions[0].empty());
  CHECK_FALSE(site.conditions[1].empty());
  CHECK_FALSE(site.conditions[2].empty());
  CHECK(site.not_modified["/b"] + 1 == static_cast<int>(site.conditions.size()));
  CHECK(test::sql1(db,
                   "SELECT group_concat(status) FROM (SELECT status FROM results ORDER BY "
                   "id LIMIT 3)") == "200,304,304");
}

TEST_CASE("a page without validators keeps no links: no 304 can use them", "[engine][304][state]") {
  test::HttpServer srv;
  srv.server().Get("/start", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<a href='/a'>a</a>", "text/html");  // no ETag, no Last-Modified
  });
  srv.server().Get("/a", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("ETag", "\"a1\"");
    res.set_content("<a href='/start'>start</a>", "text/html");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("v.db");
  auto config = load("jobs:\n  - name: v\n    url: '" + srv.url("/start") +
                     "'\n    every: 1h\n    robots: ignore\n    follow: {max_depth: 2}\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  CHECK(test::sql1(db, "SELECT count(*) FROM url_state") == "2");
  CHECK(test::sql1(db, "SELECT coalesce(links, 'NULL') FROM url_state WHERE url LIKE '%/start'") ==
        "NULL");
  CHECK(test::sql1(db, "SELECT links FROM url_state WHERE url LIKE '%/a'") ==
        "[\"" + srv.url("/start") + "\"]");
}
