// Operator trust (issue 18): one database one daemon, one port one daemon, honest exit codes
// and answers. Runs the real scraperd binary.
#include <signal.h>

#include <catch2/catch.hpp>
#include <regex>
#include <string>
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
