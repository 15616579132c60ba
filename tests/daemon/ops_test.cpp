// Operator trust (issue 18): one database one daemon, one port one daemon, honest exit codes
// and answers. Runs the real scraperd binary.
#include <pty.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "storage/db_lock.h"
#include "tests/support/http_server.h"
#include "tests/support/process.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using namespace std::chrono_literals;
using test::eventually;
using test::slurp;

namespace {

struct Output {
  int exit_code = -1;
  std::string out, err;
};

Output run_cli(const test::TempDir& dir, const std::vector<std::string>& args,
               const std::vector<std::string>& env = {}) {
  Output o;
  o.exit_code = test::wait_exit(test::spawn(args, dir.file("stdout"), dir.file("stderr"), env));
  o.out = slurp(dir.file("stdout"));
  o.err = slurp(dir.file("stderr"));
  return o;
}

// The port of "api: listening on http://127.0.0.1:PORT" in a daemon's log, 0 until it shows.
int api_port(const std::string& log_file) {
  std::smatch m;
  std::string log = slurp(log_file);
  static const std::regex listening(R"(api: listening on http://127\.0\.0\.1:(\d+))");
  return std::regex_search(log, m, listening) ? std::stoi(m[1]) : 0;
}

}  // namespace

TEST_CASE("one database, one run: a second run exits 1 at once, queries keep working",
          "[ops][db_lock]") {
  test::HttpServer site;
  site.server().Get("/p", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<p>ok</p>", "text/html");
  });
  site.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml", "api: {listen: '127.0.0.1:0'}\njobs:\n  - {name: a, url: '" +
                                        site.url("/p") + "', every: 1h, robots: ignore}\n");
  auto db = dir.file("x.db");
  pid_t daemon = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(daemon);
  int port = 0;
  REQUIRE(eventually([&] { return (port = api_port(dir.file("e"))) > 0; }));
  // The lock file says who holds the database, with the API's bound port.
  REQUIRE(eventually([&] {
    auto h = storage::db_lock_holder(db);
    return h && h->api == "127.0.0.1:" + std::to_string(port);
  }));
  auto holder = storage::db_lock_holder(db);
  CHECK(holder->pid == daemon);
  CHECK(holder->config == cfg);
  CHECK_THAT(slurp(db + ".lock"), Catch::Contains("pid=" + std::to_string(daemon) + "\n") &&
                                      Catch::Contains("\nsince=20"));

  auto o = run_cli(dir, {"run", "--once", "--config", cfg, "--db", db});
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.err, Catch::Contains("database " + db + " is in use by scraperd pid " +
                                    std::to_string(daemon)));
  // The refused run wrote nothing: no run of its own, the daemon's state untouched.
  CHECK(test::sql1(db, "SELECT count(*) FROM runs WHERE status = 'interrupted'") == "0");

  // Query commands read while the daemon holds the database.
  o = run_cli(dir, {"runs", "--db", db});
  CHECK(o.exit_code == 0);
  o = run_cli(dir, {"jobs", "--db", db});
  CHECK(o.exit_code == 0);

  kill(daemon, SIGTERM);
  CHECK(test::wait_exit(daemon) == 0);
  CHECK_FALSE(storage::db_lock_holder(db));
  o = run_cli(dir, {"run", "--once", "--config", cfg, "--db", db});
  CHECK(o.exit_code == 0);
}

TEST_CASE("two daemons on one API port: the second stops at start, address in use", "[ops][api]") {
  test::TempDir dir;
  auto cfg_a = dir.write("a.yaml",
                         "api: {listen: '127.0.0.1:0'}\njobs:\n  - {name: a, url: "
                         "'http://127.0.0.1:1/', every: 1h, robots: ignore}\n");
  pid_t first = test::spawn({"run", "--config", cfg_a, "--db", dir.file("a.db")}, dir.file("o"),
                            dir.file("e"));
  test::Reaper reaper(first);
  int port = 0;
  REQUIRE(eventually([&] { return (port = api_port(dir.file("e"))) > 0; }));

  auto cfg_b = dir.write("b.yaml", "api: {listen: '127.0.0.1:" + std::to_string(port) +
                                       "'}\njobs:\n  - {name: b, url: 'http://127.0.0.1:1/', "
                                       "every: 1h, robots: ignore}\n");
  // Bounded: a second daemon that did bind would run until killed.
  pid_t second = test::spawn({"run", "--config", cfg_b, "--db", dir.file("b.db")}, dir.file("o2"),
                             dir.file("e2"));
  test::Reaper second_reaper(second);
  int status = -1;
  REQUIRE(eventually([&] {
    int raw = 0;
    if (waitpid(second, &raw, WNOHANG) != second) return false;
    status = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
    return true;
  }));
  CHECK(status == 1);
  CHECK_THAT(slurp(dir.file("e2")),
             Catch::Contains("api: cannot listen on 127.0.0.1:" + std::to_string(port)) &&
                 Catch::Contains("Address already in use"));
  // The first daemon still serves every request on its port.
  httplib::Client client("127.0.0.1", port);
  for (int i = 0; i < 10; ++i) {
    auto r = client.Get("/healthz");
    REQUIRE(r);
    CHECK(r->status == 200);
  }
  kill(first, SIGTERM);
  CHECK(test::wait_exit(first) == 0);
}

TEST_CASE("commits that keep failing: /healthz 503, counted, rows lost at exit make it fail",
          "[ops][writer]") {
  test::HttpServer site;
  site.server().Get("/p", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<p>ok</p>", "text/html");
  });
  site.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml", "api: {listen: '127.0.0.1:0'}\njobs:\n  - {name: a, url: '" +
                                        site.url("/p") + "', every: 1h, robots: ignore}\n");
  auto db = dir.file("x.db");
  pid_t daemon = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(daemon);
  int port = 0;
  REQUIRE(eventually([&] { return (port = api_port(dir.file("e"))) > 0; }));
  httplib::Client client("127.0.0.1", port);
  REQUIRE(client.Get("/healthz")->status == 200);

  // From now on every commit with a result in it fails, as on a broken disk (the daemon's own
  // writes are refused by a trigger the test adds beside it).
  REQUIRE(eventually([&] { return test::sql1(db, "PRAGMA user_version") != "0"; }));
  {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    CHECK(sqlite3_exec(h,
                       "CREATE TRIGGER broken BEFORE INSERT ON results "
                       "BEGIN SELECT RAISE(ABORT, 'test: the disk is broken'); END",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(h);
  }
  REQUIRE(client.Post("/api/jobs/a/run", "", "application/json")->status == 202);
  REQUIRE(eventually([&] {
    auto r = client.Get("/healthz");
    return r && r->status == 503;
  }));
  auto health = client.Get("/healthz");
  CHECK_THAT(health->body, Catch::Contains("commits failed in a row") &&
                               Catch::Contains("test: the disk is broken"));
  auto metrics = client.Get("/metrics");
  REQUIRE(metrics);
  std::smatch m;
  REQUIRE(std::regex_search(metrics->body, m,
                            std::regex(R"(\nscraperd_writer_commit_failures_total (\d+)\n)")));
  CHECK(std::stoi(m[1]) >= 3);
  REQUIRE(
      std::regex_search(metrics->body, m, std::regex(R"(\nscraperd_writer_queue_rows (\d+)\n)")));
  CHECK(std::stoi(m[1]) >= 1);  // the rows of the batch being retried count as waiting

  kill(daemon, SIGTERM);
  CHECK(test::wait_exit(daemon) == 1);
  CHECK_THAT(slurp(dir.file("e")), Catch::Contains("rows LOST"));
  CHECK(test::sql1(db, "SELECT count(*) FROM results") == "0");
}

TEST_CASE("a commit that fails for a while and then succeeds: healthy again, nothing lost",
          "[ops][writer]") {
  test::HttpServer site;
  site.server().Get("/p", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<p>ok</p>", "text/html");
  });
  site.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml", "api: {listen: '127.0.0.1:0'}\njobs:\n  - {name: a, url: '" +
                                        site.url("/p") + "', every: 1h, robots: ignore}\n");
  auto db = dir.file("x.db");
  pid_t daemon = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(daemon);
  int port = 0;
  REQUIRE(eventually([&] { return (port = api_port(dir.file("e"))) > 0; }));
  httplib::Client client("127.0.0.1", port);
  REQUIRE(eventually([&] { return test::sql1(db, "PRAGMA user_version") != "0"; }));
  auto exec = [&](const char* sql) {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    sqlite3_busy_timeout(h, 5000);
    CHECK(sqlite3_exec(h, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(h);
  };
  exec(
      "CREATE TRIGGER broken BEFORE INSERT ON results "
      "BEGIN SELECT RAISE(ABORT, 'test: the disk is broken'); END");
  REQUIRE(client.Post("/api/jobs/a/run", "", "application/json")->status == 202);
  REQUIRE(eventually([&] {
    auto r = client.Get("/healthz");
    return r && r->status == 503;
  }));
  exec("DROP TRIGGER broken");
  REQUIRE(eventually([&] {
    auto r = client.Get("/healthz");
    return r && r->status == 200;
  }));
  CHECK(eventually([&] { return test::sql1(db, "SELECT count(*) FROM results") == "1"; }));
  kill(daemon, SIGTERM);
  CHECK(test::wait_exit(daemon) == 0);
  CHECK(test::sql1(db, "SELECT count(*) FROM results") == "1");
  CHECK(test::sql1(db, "SELECT status FROM runs") == "ok");
}
