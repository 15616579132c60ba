// Runs the real scraperd binary as a user would.
#include <signal.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/http_server.h"
#include "tests/support/process.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using namespace std::chrono_literals;
using test::run_cli;
using test::slurp;
using test::spawn;
using test::wait_exit;

TEST_CASE("scraperd check: exit 0 and a line per job, or exit 1 and file:line:col", "[cli]") {
  test::TempDir dir;
  auto good =
      dir.write("good.yaml", "jobs:\n  - {name: a, url: 'http://x.example/', every: 90s}\n");
  auto o = run_cli(dir, {"check", "--config", good});
  CHECK(o.exit_code == 0);
  CHECK(o.out == "a: every 1m30s, 1 url on x.example\n" + good + ": ok, 1 job\n");

  auto bad =
      dir.write("bad.yaml", "jobs:\n  - name: a\n    url: http://x.example/\n    evry: 1m\n");
  o = run_cli(dir, {"check", "--config", bad});
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.err, Catch::Contains(bad + ":4:5: unknown key 'evry' in a job (did you mean "
                                          "'every'?) (in job 'a')"));
}

TEST_CASE("scraperd with bad usage exits 2 and says why", "[cli]") {
  test::TempDir dir;
  CHECK(run_cli(dir, {}).exit_code == 2);
  auto o = run_cli(dir, {"fly"});
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.err, Catch::Contains("unknown command 'fly'"));
  o = run_cli(dir, {"results", "--limit", "many"});
  CHECK(o.exit_code == 2);
  o = run_cli(dir, {"run", "--config"});
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.err, Catch::Contains("--config needs a value"));
  o = run_cli(dir, {"run", "--debug-loop=soon"});
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.err, Catch::Contains("--debug-loop=MS"));
  o = run_cli(dir, {"run", "--once=3"});
  CHECK(o.exit_code == 2);
}

TEST_CASE("scraperd run --once, then scraperd results shows the rows", "[cli]") {
  test::HttpServer srv;
  srv.server().Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<title>t</title>", "text/html");
  });
  srv.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml", "jobs:\n  - {name: home, url: '" + srv.url("/") +
                                        "', every: 1m}\n  - {name: gone, url: '" +
                                        srv.url("/nope") + "', every: 1m}\n");
  auto db = dir.file("x.db");
  auto o = run_cli(dir, {"run", "--config", cfg, "--db", db, "--once", "--debug-loop=50"});
  REQUIRE(o.exit_code == 3);  // the job 'gone' failed
  CHECK_THAT(o.err, Catch::Contains("--debug-loop: logging event-loop steps longer than 50 ms"));

  o = run_cli(dir, {"results", "--db", db});
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.out, Catch::StartsWith("FETCHED_AT "));
  CHECK_THAT(o.out, Catch::Contains("home") && Catch::Contains(srv.url("/")));

  o = run_cli(dir, {"errors", "--db", db});
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.out, Catch::Contains("gone") && Catch::Contains("http") && Catch::Contains("404"));

  SECTION("json is valid JSON with typed values, ndjson one object a line, csv quoted") {
    o = run_cli(dir, {"results", "home", "--db", db, "--format", "json"});
    REQUIRE(o.exit_code == 0);
    auto j = nlohmann::json::parse(o.out);
    REQUIRE(j.size() == 1);
    CHECK(j[0]["job"] == "home");
    CHECK(j[0]["status"] == 200);
    CHECK(j[0]["final_url"].is_null());

    o = run_cli(dir, {"errors", "--db", db, "--format", "ndjson", "--kind", "http"});
    REQUIRE(o.exit_code == 0);
    CHECK(nlohmann::json::parse(o.out)["kind"] == "http");

    o = run_cli(dir, {"runs", "--db", db, "--format", "csv"});
    REQUIRE(o.exit_code == 0);
    CHECK_THAT(o.out, Catch::StartsWith("id,job,status,due_at,started_at,finished_at,lag_ms,"));
    CHECK(std::count(o.out.begin(), o.out.end(), '\n') == 3);  // header + 2 runs

    o = run_cli(dir, {"jobs", "--db", db, "--format", "json"});
    REQUIRE(o.exit_code == 0);
    auto jobs = nlohmann::json::parse(o.out);
    REQUIRE(jobs.size() == 2);
    CHECK(jobs[0]["job"] == "gone");
    CHECK(jobs[0]["last_status"] == "failed");
    CHECK(jobs[1]["ok_pct_24h"] == 100.0);
  }
  SECTION("filters: job, since, limit") {
    o = run_cli(dir, {"results", "nobody", "--db", db, "--format", "json"});
    CHECK(nlohmann::json::parse(o.out).empty());
    o = run_cli(dir, {"errors", "--db", db, "--since", "1h", "--format", "json"});
    CHECK(nlohmann::json::parse(o.out).size() == 1);
    o = run_cli(dir, {"errors", "--db", db, "--since", "2099-01-01", "--format", "json"});
    CHECK(nlohmann::json::parse(o.out).empty());
    o = run_cli(dir, {"runs", "--db", db, "--limit", "1", "--format", "ndjson"});
    CHECK(std::count(o.out.begin(), o.out.end(), '\n') == 1);
  }
  SECTION("hostile arguments get clear errors, never a crash") {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"results", "--db", db, "--since", "yesterday"},
             {"results", "--db", db, "--since", "2026-02-31"},
             {"results", "--db", db, "--limit", "0"},
             {"results", "--db", db, "--limit", "99999999999999999999"},
             {"results", "--db", db, "--format", "xml"},
             {"errors", "--db", db, "--kind", "x' OR 1=1 --"},
             {"results", "a", "b", "--db", db},
         }) {
      o = run_cli(dir, args);
      INFO(args[2] << " " << args.back() << ": " << o.err);
      CHECK(o.exit_code == 2);
      CHECK_THAT(o.err, Catch::StartsWith("scraperd: "));
    }
    o = run_cli(dir, {"results", "x'; DROP TABLE results; --", "--db", db, "--format", "json"});
    CHECK(o.exit_code == 0);
    CHECK(nlohmann::json::parse(o.out).empty());
    CHECK(test::sql1(db, "SELECT count(*) FROM results") == "1");
  }

  o = run_cli(dir, {"results", "--db", dir.file("missing.db")});
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.err, Catch::Contains("no database at"));
}

TEST_CASE("SIGTERM lets the fetch in flight finish and stores its row", "[cli]") {
  std::atomic<bool> requested{false};
  test::HttpServer srv;
  srv.server().Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    requested = true;
    std::this_thread::sleep_for(1s);
    res.set_content("done", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  auto cfg = dir.write(
      "jobs.yaml",  // every 2s: the first run starts within 2 s
      "api: {listen: ''}\njobs:\n  - {name: slow, url: '" + srv.url("/slow") + "', every: 2s}\n");
  auto db = dir.file("s.db");
  pid_t pid = spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);
  for (int i = 0; i < 500 && !requested; ++i) std::this_thread::sleep_for(10ms);
  REQUIRE(requested);
  kill(pid, SIGTERM);
  CHECK(wait_exit(pid) == 0);
  CHECK(test::sql1(db, "SELECT group_concat(bytes) FROM results") == "4");
  CHECK(test::sql1(db, "SELECT status FROM runs") == "ok");
}

TEST_CASE("a restart resumes the schedule: a run missed while down runs once, at once",
          "[cli][schedule]") {
  std::atomic<int> requests{0};
  test::HttpServer srv;
  srv.server().Get("/", [&](const httplib::Request&, httplib::Response& res) {
    ++requests;
    res.set_content("ok", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml", "api: {listen: ''}\njobs:\n  - {name: hourly, url: '" +
                                        srv.url("/") + "', every: 1h}\n");
  auto db = dir.file("s.db");
  // A first daemon registers the job and persists when it is due (its start offset from now),
  // then stops before that.
  pid_t pid = spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);
  std::string due;
  for (int i = 0; i < 500 && due.empty(); ++i) {
    std::this_thread::sleep_for(10ms);
    try {
      due = test::sql1(db, "SELECT ifnull(next_due, '') FROM jobs");
    } catch (const std::exception&) {
    }
  }
  kill(pid, SIGTERM);
  REQUIRE(wait_exit(pid) == 0);
  REQUIRE_FALSE(due.empty());

  // While it was "down", the due time passed (five hours ago, say).
  sqlite3* handle = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &handle) == SQLITE_OK);
  REQUIRE(sqlite3_exec(handle,
                       "UPDATE jobs SET next_due = strftime('%Y-%m-%d %H:%M:%f', 'now', "
                       "'-5 hours', '-30 minutes')",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(handle);
  int before = requests.load();

  pid = spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper3(pid);
  for (int i = 0; i < 300 && requests.load() == before; ++i) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(300ms);  // a burst of catch-up runs would show up by now
  kill(pid, SIGTERM);
  REQUIRE(wait_exit(pid) == 0);
  CHECK(requests.load() == before + 1);  // once, at once (not 5 times, not an hour later)
  auto runs = test::sql(db, "SELECT status FROM runs WHERE status <> 'skipped'");
  REQUIRE(runs.size() == 1);
  CHECK(runs[0]["status"] == "ok");
  // Its lag shows, and the due times missed while down are on record.
  CHECK(test::sql1(db,
                   "SELECT (julianday(started_at) - julianday(due_at)) * 24 > 5.4 FROM runs "
                   "WHERE status = 'ok'") == "1");
  CHECK(test::sql1(db, "SELECT count(*) FROM runs WHERE status = 'skipped'") == "5");
  // The next run stays on the old grid: 30 minutes from now, not an hour from now.
  CHECK(test::sql1(db,
                   "SELECT next_due > strftime('%Y-%m-%d %H:%M:%f', 'now', '+25 minutes') "
                   "AND next_due < strftime('%Y-%m-%d %H:%M:%f', 'now', '+35 minutes') "
                   "FROM jobs") == "1");
}

TEST_CASE("scraperd try prints a page's fields as JSON and writes nothing", "[cli][extract]") {
  test::HttpServer srv;
  srv.server().Get("/item", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<h1> Widget </h1><p class=price>12.50</p><a href='/next'>n</a>", "text/html");
  });
  srv.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml", "storage: {path: '" + dir.file("never.db") +
                                        "'}\njobs:\n  - name: item\n    url: '" + srv.url("/item") +
                                        "'\n    every: 1h\n    follow: {css: a}\n"
                                        "    extract:\n      title: h1\n"
                                        "      price: {css: .price, type: number}\n"
                                        "      sku: .sku\n");
  auto o = run_cli(dir, {"try", "item", "--config", cfg});
  REQUIRE(o.exit_code == 0);
  auto j = nlohmann::json::parse(o.out);
  CHECK(j["url"] == srv.url("/item"));
  CHECK(j["status"] == 200);
  CHECK(j["fields"]["title"] == "Widget");
  CHECK(j["fields"]["price"] == 12.5);
  CHECK(j["fields"]["sku"].is_null());
  CHECK(j["missing"] == nlohmann::json({"sku"}));
  CHECK(j["links"] == nlohmann::json({srv.url("/next")}));
  CHECK(j.contains("elapsed_ms"));

  // A saved page instead of a fetch.
  o = run_cli(dir, {"try", "item", "--config", cfg, "--html",
                    std::string(SCRAPERD_SOURCE_DIR) + "/tests/pages/shop.html"});
  REQUIRE(o.exit_code == 0);
  CHECK(nlohmann::json::parse(o.out)["fields"]["title"] == "Blue Widget");

  // Another URL, and failures.
  o = run_cli(dir, {"try", "item", "--config", cfg, "--url", srv.url("/missing")});
  CHECK(o.exit_code == 1);
  CHECK(nlohmann::json::parse(o.out)["status"] == 404);
  o = run_cli(dir, {"try", "nope", "--config", cfg});
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.err, Catch::Contains("no job 'nope'") && Catch::Contains("jobs: item"));
  CHECK(run_cli(dir, {"try", "--config", cfg}).exit_code == 2);
  CHECK_FALSE(std::filesystem::exists(dir.file("never.db")));
}

TEST_CASE("secrets from ${VAR} never reach the logs or the database", "[cli][security]") {
  const std::string secret = "s3cr3t-token-4711";
  std::atomic<int> with_token{0};
  test::HttpServer srv;
  srv.server().Get("/data", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("Authorization") == "Bearer " + secret) ++with_token;
    res.status = 404;  // an error row, whose message and URL must not carry the secret
  });
  srv.server().Get("/ok", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("<p>v1</p>", "text/html");
  });
  srv.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml",
                       "defaults: {robots: ignore, retries: {max: 0}}\njobs:\n"
                       "  - name: private\n    every: 1h\n    url: '" +
                           srv.url("/data?key=${API_KEY}") +
                           "'\n    headers: {Authorization: 'Bearer ${API_KEY}'}\n"
                           "  - name: hooked\n    every: 1h\n    url: '" +
                           srv.url("/ok?k=${API_KEY}") + "'\n    notify: 'http://127.0.0.1:" +
                           std::to_string(test::refused_port()) + "/hook/${API_KEY}'\n");
  auto db = dir.file("s.db");
  ::setenv("API_KEY", secret.c_str(), 1);
  auto o = run_cli(dir, {"run", "--once", "--config", cfg, "--db", db});
  ::unsetenv("API_KEY");
  REQUIRE(o.exit_code == 3);  // some of its URLs fail on purpose
  CHECK(with_token == 1);     // the secret was used...
  // ...and is nowhere: not in the logs, not in any file SQLite wrote.
  CHECK(o.err.find(secret) == std::string::npos);
  CHECK(o.out.find(secret) == std::string::npos);
  for (const auto& entry : std::filesystem::directory_iterator(dir.file("")))
    if (entry.path().filename().string().rfind("s.db", 0) == 0)
      CHECK(test::slurp(entry.path().string()).find(secret) == std::string::npos);
  CHECK(test::sql1(db, "SELECT url FROM errors WHERE job = 'private'") ==
        srv.url("/data?key=${API_KEY}"));
  CHECK_THAT(test::sql1(db, "SELECT group_concat(url) FROM results"),
             Catch::Contains("k=${API_KEY}"));
}

TEST_CASE("scraperd help: each command's usage, options and example, did you mean, version",
          "[cli][help]") {
  test::TempDir dir;
  for (const std::string command :
       {"run", "check", "try", "results", "errors", "runs", "jobs", "pause", "resume"}) {
    auto o = run_cli(dir, {command, "--help"});
    INFO(command << ": " << o.err);
    CHECK(o.exit_code == 0);
    CHECK_THAT(o.out, Catch::StartsWith("usage: scraperd " + command));
    CHECK_THAT(o.out,
               Catch::Contains("options:") && Catch::Contains("example:\n  scraperd " + command));
    CHECK(run_cli(dir, {"help", command}).out == o.out);
    CHECK(run_cli(dir, {command, "-h"}).out == o.out);
  }
  auto results = run_cli(dir, {"help", "results"}).out;
  CHECK_THAT(results, Catch::Contains("--since T") && Catch::Contains("--changed") &&
                          Catch::Contains("--limit N"));
  CHECK_THAT(results, !Catch::Contains("--kind"));  // only the command's own options

  auto o = run_cli(dir, {"--help"});
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.out, Catch::Contains("exit status:") && Catch::Contains("  3  run --once") &&
                        Catch::Contains("  2  bad usage"));
  CHECK(run_cli(dir, {"help"}).out == o.out);

  o = run_cli(dir, {"reslts"});
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.err, Catch::Contains("unknown command 'reslts' (did you mean 'results'?)"));
  o = run_cli(dir, {"results", "--limt", "5"});
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.err, Catch::Contains("unknown option '--limt' for results (did you mean "
                                    "'--limit'?)") &&
                        Catch::Contains("usage: scraperd results"));
  o = run_cli(dir, {"jobs", "--since", "1h"});
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.err, Catch::Contains("option '--since' does not apply to jobs"));
  o = run_cli(dir, {"help", "fly"});
  CHECK(o.exit_code == 2);
  CHECK_THAT(o.err, Catch::Contains("no command 'fly'"));

  for (const std::string v : {"version", "--version"}) {
    o = run_cli(dir, {v});
    CHECK(o.exit_code == 0);
    CHECK(o.out == std::string("scraperd ") + SCRAPERD_VERSION_TEXT + "\n");
  }
}

TEST_CASE("query commands read the database without the job file's ${VAR}s but check needs them",
          "[cli]") {
  test::HttpServer srv;
  srv.server().Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("v.db");
  auto cfg = dir.write("jobs.yaml",
                       "storage: {path: '" + db +
                           "'}\napi: {listen: '', token: '${SCRAPERD_TEST_TOKEN}'}\n"
                           "defaults: {robots: ignore}\njobs:\n  - name: a\n    url: '" +
                           srv.url("/") +
                           "'\n    every: 1h\n    headers: {X-Key: '${SCRAPERD_TEST_KEY}'}\n");
  ::unsetenv("SCRAPERD_TEST_TOKEN");
  ::unsetenv("SCRAPERD_TEST_KEY");
  ::setenv("SCRAPERD_TEST_TOKEN", "token-1234", 1);
  ::setenv("SCRAPERD_TEST_KEY", "key-1234", 1);
  auto o = run_cli(dir, {"run", "--once", "--config", cfg});
  ::unsetenv("SCRAPERD_TEST_TOKEN");
  ::unsetenv("SCRAPERD_TEST_KEY");
  REQUIRE(o.exit_code == 0);

  for (const std::string command : {"results", "errors", "runs", "jobs"}) {
    o = run_cli(dir, {command, "--config", cfg, "--format", "json"});
    INFO(command << ": " << o.err);
    CHECK(o.exit_code == 0);
    CHECK(nlohmann::json::parse(o.out).is_array());
  }
  CHECK(nlohmann::json::parse(run_cli(dir, {"results", "--config", cfg, "--format", "json"}).out)
            .size() == 1);

  o = run_cli(dir, {"check", "--config", cfg});
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.err, Catch::Contains(cfg + ":2:") &&
                        Catch::Contains("environment variable 'SCRAPERD_TEST_TOKEN' is not set"));
  CHECK_THAT(o.err, Catch::Contains("environment variable 'SCRAPERD_TEST_KEY' is not set"));

  // Except in storage.path: the database would be another file.
  auto elsewhere = dir.write("elsewhere.yaml",
                             "storage: {path: '${SCRAPERD_TEST_DIR}/v.db'}\njobs:\n"
                             "  - {name: a, url: 'http://x.example/', every: 1h}\n");
  o = run_cli(dir, {"results", "--config", elsewhere});
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.err, Catch::Contains("environment variable 'SCRAPERD_TEST_DIR' is not set"));
}

TEST_CASE("scraperd check reports every error in one pass, warnings, and the system's reasons",
          "[cli][check]") {
  test::TempDir dir;
  auto bad = dir.write("bad.yaml",
                       "jobs:\n"
                       "  - {name: a, url: 'http://x.example/', every: 1h}\n"
                       "  - {name: a, url: 'not a url', every: 1h}\n"
                       "  - {name: b, url: 'http://x.example/', evry: 1h}\n"
                       "  - {name: c, url: 'http://x.example/', every: soon}\n");
  auto o = run_cli(dir, {"check", "--config", bad});
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.err, Catch::Contains(bad + ":3:") && Catch::Contains("is not an absolute"));
  CHECK_THAT(o.err, Catch::Contains(bad + ":3:12: duplicate job name 'a' (first defined at " + bad +
                                    ":2)"));
  CHECK_THAT(o.err, Catch::Contains(bad + ":4:") && Catch::Contains("unknown key 'evry'"));
  CHECK_THAT(o.err, Catch::Contains(bad + ":5:") && Catch::Contains("is not a duration"));
  CHECK_THAT(o.err, Catch::Contains(bad + ": 5 errors"));

  SECTION("warnings: a job slower than its interval, a relative storage.path") {
    auto slow = dir.write("slow.yaml",
                          "storage: {path: results.db}\njobs:\n"
                          "  - name: big\n    urls: ['http://x.example/p/{1..304}']\n"
                          "    every: 1m\n    per_host: {rate: 2/s, burst: 4}\n"
                          "  - name: fine\n    urls: ['http://x.example/q/{1..100}']\n"
                          "    every: 1h\n");
    o = run_cli(dir, {"check", "--config", slow});
    CHECK(o.exit_code == 0);
    CHECK_THAT(o.err, Catch::Contains(slow + ":4:11: warning: job 'big' cannot finish within its "
                                             "interval: its 304 URLs on x.example:80 take at least "
                                             "3m at 2/s"));
    CHECK_THAT(o.err, Catch::Contains(slow + ":1:17: warning: 'storage.path' 'results.db' is "
                                             "relative"));
    CHECK_THAT(o.err, !Catch::Contains("job 'fine'"));
  }
  SECTION("a path that cannot be opened says why") {
    o = run_cli(dir, {"check", "--config", dir.file("missing.yaml")});
    CHECK(o.exit_code == 1);
    CHECK_THAT(o.err, Catch::Contains(dir.file("missing.yaml") +
                                      ": cannot open: No such file or directory"));
    auto nowhere = dir.write("nowhere.yaml", "storage: {path: '" + dir.file("no/such/dir/x.db") +
                                                 "'}\njobs:\n"
                                                 "  - {name: a, url: 'http://x.example/', "
                                                 "every: 1h}\n");
    o = run_cli(dir, {"check", "--config", nowhere});
    CHECK(o.exit_code == 0);
    CHECK_THAT(o.err, Catch::Contains("warning: 'storage.path' '" + dir.file("no/such/dir/x.db") +
                                      "' cannot be created in " + dir.file("no/such/dir") +
                                      ": No such file or directory"));
  }
}

TEST_CASE("scraperd pause / resume: persisted, shown by jobs, honoured by run --once",
          "[cli][pause]") {
  std::atomic<int> hits{0};
  test::HttpServer srv;
  srv.server().Get("/", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    res.set_content("ok", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("p.db");
  auto jobs_yaml = [&](const std::string& extra) {
    return dir.write("jobs.yaml", "storage: {path: '" + db +
                                      "'}\ndefaults: {robots: ignore}\njobs:\n"
                                      "  - {name: a, url: '" +
                                      srv.url("/") + "', every: 1h}\n" + extra);
  };
  auto cfg = jobs_yaml("  - {name: b, url: '" + srv.url("/") + "', every: 1h}\n");
  REQUIRE(run_cli(dir, {"run", "--once", "--config", cfg}).exit_code == 0);
  REQUIRE(hits == 2);

  auto o = run_cli(dir, {"pause", "a", "--config", cfg});
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.out, Catch::Contains("job 'a' paused"));
  CHECK(run_cli(dir, {"pause", "a", "--config", cfg}).out == "job 'a' was paused already\n");
  o = run_cli(dir, {"pause", "nobody", "--config", cfg});
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.err, Catch::Contains("no job 'nobody'"));
  CHECK(run_cli(dir, {"pause", "--config", cfg}).exit_code == 2);

  // run --once leaves it alone.
  REQUIRE(run_cli(dir, {"run", "--once", "--config", cfg}).exit_code == 0);
  CHECK(hits == 3);
  CHECK(test::sql1(db, "SELECT count(*) FROM runs WHERE job = 'a'") == "1");

  // `jobs` marks paused, removed (in the database, not in the file) and never-run jobs.
  cfg = jobs_yaml("  - {name: c, url: '" + srv.url("/") + "', every: 1h}\n");
  o = run_cli(dir, {"jobs", "--config", cfg, "--format", "json"});
  REQUIRE(o.exit_code == 0);
  auto jobs = nlohmann::json::parse(o.out);
  REQUIRE(jobs.size() == 3);
  CHECK(jobs[0]["job"] == "a");
  CHECK(jobs[0]["state"] == "paused");
  CHECK(jobs[1]["job"] == "b");
  CHECK(jobs[1]["state"] == "removed");
  CHECK(jobs[2]["job"] == "c");
  CHECK(jobs[2]["state"] == "never run");
  CHECK(jobs[2]["schedule"] == "every 1h");
  o = run_cli(dir, {"jobs", "--config", cfg, "--format", "json", "--limit", "2"});
  CHECK(nlohmann::json::parse(o.out).size() == 2);
  o = run_cli(dir, {"jobs", "--config", cfg});
  CHECK_THAT(o.out, Catch::StartsWith("daemon: none runs on " + db + "\nJOB  STATE "));

  o = run_cli(dir, {"resume", "a", "--config", cfg});
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.out, Catch::Contains("job 'a' resumed"));
  REQUIRE(run_cli(dir, {"run", "--once", "--config", cfg}).exit_code == 0);
  CHECK(test::sql1(db, "SELECT count(*) FROM runs WHERE job = 'a'") == "2");
}

TEST_CASE("status and jobs say whether a daemon runs on the database, and pause goes through it",
          "[cli][status]") {
  std::atomic<bool> release{false};
  std::atomic<int> slow_started{0};
  test::HttpServer srv;
  srv.server().Get("/slow", [&](const httplib::Request&, httplib::Response& res) {
    ++slow_started;
    for (int i = 0; i < 3000 && !release; ++i) std::this_thread::sleep_for(10ms);
    res.set_content("slow", "text/plain");
  });
  srv.server().Get("/fast", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("fast", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("s.db");
  auto cfg = dir.write("jobs.yaml", "storage: {path: '" + db +
                                        "'}\napi: {listen: '127.0.0.1:0', token: "
                                        "'${SCRAPERD_TEST_API_TOKEN}'}\n"
                                        "defaults: {robots: ignore}\njobs:\n"
                                        "  - {name: slow, url: '" +
                                        srv.url("/slow") +
                                        "', every: 1h}\n"
                                        "  - {name: fast, url: '" +
                                        srv.url("/fast") + "', every: 1h}\n");
  const std::vector<std::string> token = {"SCRAPERD_TEST_API_TOKEN=opensesame"};
  ::unsetenv("SCRAPERD_TEST_API_TOKEN");

  auto o = run_cli(dir, {"status", "--config", cfg});
  CHECK(o.exit_code == 0);
  CHECK(o.out == "daemon: none runs on " + db + "\n");

  pid_t pid = spawn({"run", "--config", cfg}, dir.file("o"), dir.file("e"), token);
  test::Reaper reaper(pid);
  int port = 0;
  REQUIRE(test::eventually([&] {
    std::smatch m;
    std::string log = slurp(dir.file("e"));
    static const std::regex listening(R"(api: listening on http://127\.0\.0\.1:(\d+))");
    if (!std::regex_search(log, m, listening)) return false;
    port = std::stoi(m[1]);
    return true;
  }));
  httplib::Client client("127.0.0.1", port);
  client.set_bearer_token_auth("opensesame");
  REQUIRE(client.Post("/api/jobs/slow/run")->status == 202);
  REQUIRE(test::eventually([&] { return slow_started > 0; }));

  // With the token: the daemon, its run going on, the writer, the last reload.
  nlohmann::json status;
  REQUIRE(test::eventually([&] {
    o = run_cli(dir, {"status", "--config", cfg, "--format", "json"}, token);
    status = nlohmann::json::parse(o.out, nullptr, false);
    return o.exit_code == 0 && !status.is_discarded() && status["running"].size() == 1;
  }));
  CHECK(status["daemon"]["pid"] == pid);
  CHECK(status["daemon"]["config"] == cfg);
  CHECK(status["daemon"]["api"] == "127.0.0.1:" + std::to_string(port));
  CHECK_THAT(status["daemon"]["since"].get<std::string>(), Catch::EndsWith("Z"));
  CHECK(status["running"][0]["job"] == "slow");
  CHECK(status["running"][0]["urls"] == 1);
  CHECK(status["jobs"] == 2);
  CHECK(status["writer"].contains("queued"));
  CHECK(status["last_reload"]["at"].is_null());
  REQUIRE(client.Post("/api/reload")->status == 200);
  o = run_cli(dir, {"status", "--config", cfg, "--format", "json"}, token);
  CHECK(nlohmann::json::parse(o.out)["last_reload"]["ok"] == true);

  // Without it: what the lock file and the database say, and why the rest is missing.
  o = run_cli(dir, {"status", "--config", cfg});
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.out, Catch::StartsWith("daemon: pid " + std::to_string(pid) + " since "));
  CHECK_THAT(o.out, Catch::Contains("running now:") && Catch::Contains("slow"));
  CHECK_THAT(o.out, Catch::Contains("its API needs api.token"));
  o = run_cli(dir, {"status", "--config", cfg}, token);
  CHECK_THAT(o.out, Catch::Contains("last reload: ok at "));

  o = run_cli(dir, {"jobs", "--config", cfg});
  CHECK_THAT(o.out, Catch::StartsWith("daemon: pid " + std::to_string(pid)));
  o = run_cli(dir, {"jobs", "--config", cfg, "--format", "json"});
  auto jobs = nlohmann::json::parse(o.out);
  REQUIRE(jobs.size() == 2);
  CHECK(jobs[1]["job"] == "slow");
  CHECK(jobs[1]["state"] == "running");

  // pause through the daemon's API: it acts at once.
  o = run_cli(dir, {"pause", "fast", "--config", cfg}, token);
  CHECK(o.exit_code == 0);
  CHECK_THAT(o.out, Catch::Contains("paused by the daemon (pid " + std::to_string(pid) + ")"));
  CHECK(client.Post("/api/jobs/fast/run")->status == 409);

  release = true;
  kill(pid, SIGTERM);
  CHECK(wait_exit(pid) == 0);
  o = run_cli(dir, {"jobs", "--config", cfg});
  CHECK_THAT(o.out, Catch::StartsWith("daemon: none runs on " + db));
  CHECK(test::sql1(db, "SELECT job FROM paused") == "fast");
}
