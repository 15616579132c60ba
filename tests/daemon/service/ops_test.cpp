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
#include <optional>
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
using test::run_cli;
using test::slurp;

namespace {

// Runs `sql` on the database beside the daemon that writes it.
void exec_sql(const std::string& db, const char* sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
  sqlite3_busy_timeout(h, 5000);
  CHECK(sqlite3_exec(h, sql, nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(h);
}

// From then on every commit with a result in it fails, as on a broken disk.
constexpr const char* kBreakResults =
    "CREATE TRIGGER broken BEFORE INSERT ON results "
    "BEGIN SELECT RAISE(ABORT, 'test: the disk is broken'); END";

// The port of "api: listening on http://127.0.0.1:PORT" in a daemon's log, 0 until it shows.
int api_port(const std::string& log_file) {
  std::smatch m;
  std::string log = slurp(log_file);
  static const std::regex listening(R"(api: listening on http://127\.0\.0\.1:(\d+))");
  return std::regex_search(log, m, listening) ? std::stoi(m[1]) : 0;
}

// A running daemon with one job, `a`, on a one-page site: its API's client, its database
// migrated. Stopped (SIGKILL) at the end of the test unless the test stopped it.
struct OnePageDaemon {
  OnePageDaemon() {
    site.server().Get("/p", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<p>ok</p>", "text/html");
    });
    site.start();
    auto cfg = dir.write("jobs.yaml", "api: {listen: '127.0.0.1:0'}\njobs:\n  - {name: a, url: '" +
                                          site.url("/p") + "', every: 1h, robots: ignore}\n");
    db = dir.file("x.db");
    daemon = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
    reaper.emplace(daemon);
    int port = 0;
    REQUIRE(eventually([&] { return (port = api_port(dir.file("e"))) > 0; }));
    client.emplace("127.0.0.1", port);
    REQUIRE(eventually([&] { return test::sql1(db, "PRAGMA user_version") != "0"; }));
  }
  test::HttpServer site;
  test::TempDir dir;
  std::string db;
  pid_t daemon = -1;
  std::optional<test::Reaper> reaper;
  std::optional<httplib::Client> client;
};

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
  OnePageDaemon d;
  const auto& dir = d.dir;
  const auto& db = d.db;
  const pid_t daemon = d.daemon;
  auto& client = *d.client;
  REQUIRE(client.Get("/healthz")->status == 200);

  // From now on every commit with a result in it fails, as on a broken disk (the daemon's own
  // writes are refused by a trigger the test adds beside it).
  exec_sql(db, kBreakResults);
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
  OnePageDaemon d;
  const auto& db = d.db;
  const pid_t daemon = d.daemon;
  auto& client = *d.client;
  exec_sql(db, kBreakResults);
  REQUIRE(client.Post("/api/jobs/a/run", "", "application/json")->status == 202);
  REQUIRE(eventually([&] {
    auto r = client.Get("/healthz");
    return r && r->status == 503;
  }));
  exec_sql(db, "DROP TRIGGER broken");
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

TEST_CASE("run --once exits 0 when every URL succeeded, 3 when some failed, 1 on an error",
          "[ops][exit]") {
  test::HttpServer site;
  site.server().Get("/p", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<p>ok</p>", "text/html");
  });
  site.start();
  test::TempDir dir;
  auto good = dir.write("good.yaml", "jobs:\n  - {name: a, url: '" + site.url("/p") +
                                         "', every: 1h, robots: ignore}\n");
  auto o = run_cli(dir, {"run", "--once", "--config", good, "--db", dir.file("g.db")});
  CHECK(o.exit_code == 0);

  auto some = dir.write("some.yaml", "jobs:\n  - {name: a, url: '" + site.url("/p") +
                                         "', every: 1h, robots: ignore}\n  - {name: b, url: '" +
                                         site.url("/missing") +
                                         "', every: 1h, robots: ignore, retries: {max: 0}}\n");
  o = run_cli(dir, {"run", "--once", "--config", some, "--db", dir.file("s.db")});
  CHECK(o.exit_code == 3);
  CHECK(test::sql1(dir.file("s.db"), "SELECT count(*) FROM results") == "1");

  auto bad = dir.write("bad.yaml", "jobs:\n  - {name: a, every: 1h}\n");
  o = run_cli(dir, {"run", "--once", "--config", bad, "--db", dir.file("b.db")});
  CHECK(o.exit_code == 1);
  o = run_cli(dir, {"run", "--once", "--config", good, "--db", dir.file("no/such/dir/x.db")});
  CHECK(o.exit_code == 1);

  o = run_cli(dir, {"--help"});
  CHECK_THAT(o.out,
             Catch::Contains("exit status:") && Catch::Contains("3  run --once: some URLs failed"));
}

TEST_CASE("try exits 3 when a required field matched nothing", "[ops][exit][extract]") {
  test::HttpServer site;
  site.server().Get("/p", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<h1>Title</h1>", "text/html");
  });
  site.start();
  test::TempDir dir;
  auto job = [&](const std::string& fields) {
    return dir.write("jobs.yaml", "jobs:\n  - name: a\n    url: '" + site.url("/p") +
                                      "'\n    every: 1h\n    extract:\n" + fields);
  };
  auto o = run_cli(dir, {"try", "a", "--config",
                         job("      title: {css: h1, required: true}\n"
                             "      price: {css: .price}\n")});
  CHECK(o.exit_code == 0);  // only an optional field is missing
  CHECK_THAT(o.out, Catch::Contains("\"price\""));

  o = run_cli(dir, {"try", "a", "--config",
                    job("      title: {css: h1}\n      price: {css: .price, required: true}\n")});
  CHECK(o.exit_code == 3);
  CHECK_THAT(o.out, Catch::Contains("\"required_missing\": [\n    \"price\""));

  o = run_cli(dir, {"check", "--config", job("      price: {css: .price, required: maybe}\n")});
  CHECK(o.exit_code == 1);
  CHECK_THAT(o.err, Catch::Contains("required"));
}

namespace {

// A host that answers slowly enough for a run of `n` URLs to take a few seconds.
struct SlowSite {
  test::HttpServer srv;
  SlowSite() {
    srv.server().Get(R"(/s/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(350));
      if (req.matches[1] == "3")
        res.status = 404;
      else
        res.set_content("<p>ok</p>", "text/html");
    });
    srv.start();
  }
  // One job "slow" of URLs /s/1 .. /s/n, one request at a time.
  std::string job_file(const test::TempDir& dir, int n) {
    return dir.write("slow.yaml", "jobs:\n  - name: slow\n    urls: ['" + srv.url("/s/{1..") +
                                      std::to_string(n) +
                                      "}']\n    every: 1h\n    robots: ignore\n"
                                      "    retries: {max: 0}\n"
                                      "    per_host: {concurrency: 1}\n");
  }
};

}  // namespace

TEST_CASE("a run's counters in the runs table move while it runs", "[ops][progress]") {
  SlowSite site;
  test::TempDir dir;
  auto db = dir.file("p.db");
  pid_t pid = test::spawn({"run", "--once", "--config", site.job_file(dir, 12), "--db", db},
                          dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);
  // While the run is still `running`, its ok and failed columns count what is done so far.
  std::string seen;
  CHECK(eventually([&] {
    try {
      auto rows = test::sql(db, "SELECT ok, failed, urls FROM runs WHERE status = 'running'");
      if (rows.empty() || rows[0]["ok"] == "0" || rows[0]["failed"] == "0") return false;
      seen = rows[0]["ok"] + "/" + rows[0]["failed"] + "/" + rows[0]["urls"];
      return true;
    } catch (const std::exception&) {
      return false;  // not created yet
    }
  }));
  INFO(seen);
  CHECK(test::wait_exit(pid) == 3);  // /s/3 is a 404
  CHECK(test::sql1(db, "SELECT ok || '/' || failed || '/' || status FROM runs") == "11/1/partial");
  // Stderr is a file: no progress lines, only the log, with the end-of-run summary.
  auto log = slurp(dir.file("e"));
  CHECK_THAT(log, !Catch::Contains("URLs, ") && !Catch::Contains("\033["));
  CHECK_THAT(log, Catch::Contains("job 'slow': 12 URLs: 11 ok, 11 changed, 1 failed (http 1) in "));
  CHECK_THAT(log, Catch::Contains("job 'slow': 1 URL failed with http: " + site.srv.url("/s/3") +
                                  ": HTTP status 404"));
  CHECK_THAT(log, Catch::Contains("run --once: 12 URLs: 11 ok, 11 changed, 1 failed (http 1) in"));
}

namespace {

// Runs scraperd with stderr on a fresh pseudo-terminal; returns what it wrote there and its
// exit status. `journal`: JOURNAL_STREAM names that terminal, as under journald.
std::pair<std::string, int> run_on_tty(const test::TempDir& dir,
                                       const std::vector<std::string>& args, bool journal) {
  int master = -1, slave = -1;
  REQUIRE(::openpty(&master, &slave, nullptr, nullptr, nullptr) == 0);
  std::string tty = ::ttyname(slave);
  struct stat st {};
  REQUIRE(::fstat(slave, &st) == 0);
  std::vector<std::string> env;
  if (journal)
    env.push_back("JOURNAL_STREAM=" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));
  std::string out;
  std::thread reader([&] {
    char buf[4096];
    for (;;) {
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;  // EIO once every slave end is closed
      out.append(buf, static_cast<std::size_t>(n));
    }
  });
  int status = test::wait_exit(test::spawn(args, dir.file("o"), tty, env));
  ::close(slave);
  reader.join();
  ::close(master);
  return {out, status};
}

}  // namespace

TEST_CASE("run --once on a terminal shows a progress line per running job", "[ops][progress]") {
  SlowSite site;
  test::TempDir dir;
  auto cfg = site.job_file(dir, 8);
  auto [out, status] =
      run_on_tty(dir, {"run", "--once", "--config", cfg, "--db", dir.file("t.db")}, false);
  CHECK(status == 3);
  INFO(out);
  CHECK_THAT(out,
             Catch::Contains("slow: ") && Catch::Contains("/8 URLs, ") && Catch::Contains("/s"));
  CHECK_THAT(out, Catch::Contains("\033[J"));  // cleared before the log goes on
  CHECK_THAT(out, Catch::Contains("run --once: 8 URLs: 7 ok"));

  // Under journald (JOURNAL_STREAM names stderr): the log only.
  std::tie(out, status) =
      run_on_tty(dir, {"run", "--once", "--config", cfg, "--db", dir.file("j.db")}, true);
  CHECK(status == 3);
  CHECK_THAT(out, Catch::Contains("run --once: 8 URLs: 7 ok"));
  CHECK_THAT(out, !Catch::Contains("/8 URLs, ") && !Catch::Contains("\033[J"));
}

TEST_CASE("log.format: json writes one JSON object per line", "[ops][logs]") {
  test::HttpServer site;
  site.server().Get("/p", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<p>ok</p>", "text/html");
  });
  site.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml", "log: {format: json}\njobs:\n  - {name: a, url: '" +
                                        site.url("/p") + "', every: 1h, robots: ignore}\n" +
                                        "  - {name: b, url: '" + site.url("/gone") +
                                        "', every: 1h, robots: ignore, retries: {max: 0}}\n");
  auto o = run_cli(dir, {"run", "--once", "--config", cfg, "--db", dir.file("j.db")});
  CHECK(o.exit_code == 3);
  std::istringstream lines(o.err);
  std::string line;
  int n = 0;
  bool summary = false, warned = false;
  while (std::getline(lines, line)) {
    INFO(line);
    auto j = nlohmann::json::parse(line);  // throws (fails the test) if it is not JSON
    REQUIRE(j["time"].is_string());
    CHECK(j["time"].get<std::string>().back() == 'Z');
    REQUIRE(j["level"].is_string());
    REQUIRE(j["message"].is_string());
    auto message = j["message"].get<std::string>();
    summary = summary || message.starts_with("run --once: 2 URLs: 1 ok");
    // Job b failed entirely: its summary is a warning.
    warned = warned || (j["level"] == "warning" && message.starts_with("job 'b': 1 URL: 0 ok"));
    ++n;
  }
  CHECK(n >= 4);
  CHECK(summary);
  CHECK(warned);
}
