// scraperd under a service manager: sd_notify, SIGHUP reloads, the drain on SIGTERM.
// Runs the real binary; systemd is played by a unix datagram socket.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <fstream>
#include <map>
#include <mutex>
#include <thread>

#include "tests/support/http_server.h"
#include "tests/support/process.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using namespace std::chrono_literals;
using test::eventually;

namespace {

// The NOTIFY_SOCKET end: collects every datagram the daemon sends.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    REQUIRE(path.size() < sizeof addr.sun_path);
    std::copy(path.begin(), path.end(), addr.sun_path);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    timeval tv{0, 50'000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~NotifySocket() { ::close(fd_); }

  // Reads until a message containing `what` arrives after the first `from` messages; returns
  // its index, or -1 after `timeout`.
  int wait_for(const std::string& what, std::size_t from = 0,
               std::chrono::milliseconds timeout = 10s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (std::size_t i = from; i < messages.size(); ++i)
        if (messages[i].find(what) != std::string::npos) return static_cast<int>(i);
      if (std::chrono::steady_clock::now() > until) return -1;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n > 0) messages.emplace_back(buf, static_cast<std::size_t>(n));
    }
  }
  int count(const std::string& what) const {
    int n = 0;
    for (const auto& m : messages) n += m.find(what) != std::string::npos;
    return n;
  }

  std::vector<std::string> messages;

 private:
  std::string path_;
  int fd_ = -1;
};

// Counts requests per path, served with an optional delay.
struct Site {
  std::mutex mu;
  std::map<std::string, int> hits;
  test::HttpServer srv;
  explicit Site(std::chrono::milliseconds slow = 0ms) {
    srv.server().new_task_queue = [] { return new httplib::ThreadPool(256); };
    srv.server().Get(R"(/.*)", [this, slow](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mu);
        ++hits[req.path];
      }
      if (req.path.starts_with("/slow")) std::this_thread::sleep_for(slow);
      res.set_content("ok", "text/plain");
    });
    srv.start();
  }
  int of(const std::string& path) {
    std::lock_guard lock(mu);
    return hits[path];
  }
  int with_prefix(const std::string& prefix) {
    std::lock_guard lock(mu);
    int n = 0;
    for (const auto& [p, c] : hits) n += p.starts_with(prefix) ? c : 0;
    return n;
  }
};

}  // namespace

TEST_CASE("systemd notify: READY, RELOADING and READY on SIGHUP, STOPPING, watchdog pings",
          "[service]") {
  Site site;
  test::TempDir dir;
  NotifySocket notify(dir.file("notify.sock"));
  auto cfg = dir.write("jobs.yaml", "api: {listen: ''}\njobs:\n  - {name: a, url: '" +
                                        site.srv.url("/a") + "', every: 1h, robots: ignore}\n");
  pid_t pid =
      test::spawn({"run", "--config", cfg, "--db", dir.file("n.db")}, dir.file("o"), dir.file("e"),
                  {"NOTIFY_SOCKET=" + dir.file("notify.sock"), "WATCHDOG_USEC=200000"});
  test::Reaper reaper(pid);
  int ready = notify.wait_for("READY=1");
  REQUIRE(ready >= 0);
  CHECK(notify.messages[ready].find("STATUS=1 jobs") != std::string::npos);

  kill(pid, SIGHUP);
  int reloading = notify.wait_for("RELOADING=1", ready + 1);
  REQUIRE(reloading > ready);
  CHECK(notify.messages[reloading].find("MONOTONIC_USEC=") != std::string::npos);
  CHECK(notify.wait_for("READY=1", reloading + 1) > reloading);

  // WatchdogSec=0.2s: pings every 0.1 s from the loop.
  std::this_thread::sleep_for(500ms);
  notify.wait_for("never", 0, 100ms);
  CHECK(notify.count("WATCHDOG=1") >= 3);

  kill(pid, SIGTERM);
  CHECK(notify.wait_for("STOPPING=1") >= 0);
  CHECK(test::wait_exit(pid) == 0);
}

// True once `pid` blocks SIGTERM (its SigBlk mask in /proc).
bool blocks_sigterm(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("SigBlk:", 0) == 0)
      return (std::stoull(line.substr(7), nullptr, 16) >> (SIGTERM - 1)) & 1;
  return false;
}

TEST_CASE("a SIGTERM while the jobs still load is held and stops the daemon cleanly", "[service]") {
  test::TempDir dir;
  std::string jobs = "api: {listen: ''}\njobs:\n";
  for (int i = 0; i < 20'000; ++i)  // loading takes a good part of a second
    jobs += "  - {name: j" + std::to_string(i) + ", url: 'http://127.0.0.1:9/" + std::to_string(i) +
            "', cron: '0 0 1 1 *'}\n";
  auto cfg = dir.write("jobs.yaml", jobs);
  pid_t pid =
      test::spawn({"run", "--config", cfg, "--db", dir.file("h.db")}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);
  REQUIRE(eventually([&] { return blocks_sigterm(pid); }));
  kill(pid, SIGTERM);  // before the loop exists: the default action would kill it
  CHECK(test::wait_exit(pid) == 0);
  CHECK_THAT(test::slurp(dir.file("e")), Catch::Contains("SIGTERM: stopping"));
}

TEST_CASE("reload: a bad file keeps every job, a good one adds, changes and removes jobs",
          "[service][reload]") {
  Site site(1200ms);  // /slow... answers after 1.2 s
  test::TempDir dir;
  auto job = [&](const std::string& name, const std::string& path) {
    return "  - {name: " + name + ", url: '" + site.srv.url(path) +
           "', every: 1s, robots: ignore, timeout: 10s}\n";
  };
  auto cfg =
      dir.write("jobs.yaml", "api: {listen: ''}\njobs:\n" + job("a", "/a") + job("s", "/slow"));
  auto db = dir.file("r.db");
  pid_t pid = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);

  // A bad file while a slow fetch is in flight: nothing changes.
  REQUIRE(eventually([&] { return site.of("/slow") >= 1 && site.of("/a") >= 1; }));
  dir.write("jobs.yaml", "jobs:\n  - {name: a, url: 'not a url', every: 1s}\n  - oops\n");
  kill(pid, SIGHUP);
  REQUIRE(eventually([&] {
    return test::slurp(dir.file("e")).find("every job keeps running as before") !=
           std::string::npos;
  }));
  CHECK_THAT(test::slurp(dir.file("e")), Catch::Contains("jobs.yaml:2:"));
  int a_before = site.of("/a");
  CHECK(eventually([&] { return site.of("/a") >= a_before + 2; }));  // still every second
  int slow_now = site.of("/slow");
  CHECK(eventually([&] { return site.of("/slow") > slow_now; }, 5s));  // still running

  // A good file, sent while a slow fetch is in flight: a changes its URL, s goes, b comes.
  REQUIRE(eventually([&] { return site.of("/slow") > slow_now; }, 5s));
  dir.write("jobs.yaml", "api: {listen: ''}\njobs:\n" + job("a", "/a2") + job("b", "/b"));
  kill(pid, SIGHUP);
  REQUIRE(eventually([&] { return site.of("/b") >= 1 && site.of("/a2") >= 1; }));
  int slow_at_reload = site.of("/slow");
  int a_at_reload = site.of("/a");
  std::this_thread::sleep_for(2500ms);
  CHECK(site.of("/slow") <= slow_at_reload);  // removed: no new run
  CHECK(site.of("/a") <= a_at_reload);        // changed: the old URL is no longer fetched
  CHECK(site.of("/a2") >= 2);
  CHECK(site.of("/b") >= 2);

  kill(pid, SIGTERM);
  REQUIRE(test::wait_exit(pid) == 0);
  // Every request that reached the server left its row, the one in flight at the reload too.
  CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE url LIKE '%/slow'") ==
        std::to_string(site.of("/slow")));
  CHECK(test::sql1(db,
                   "SELECT count(*) FROM runs WHERE job = 's' AND status NOT IN ('ok', "
                   "'skipped')") == "0");
  CHECK(test::sql1(db, "SELECT group_concat(name) FROM (SELECT name FROM jobs ORDER BY name)") ==
        "a,b,s");
  CHECK_THAT(test::slurp(dir.file("e")), Catch::Contains("reload: 1 job(s) added (b), 1 changed "
                                                         "(a), 1 removed (s), 0 unchanged"));
}

TEST_CASE("reload: a sleeping job moves to its new schedule at once, a removed one leaves",
          "[service][reload]") {
  Site site;
  test::TempDir dir;
  // Due next on January 1st: both sleep for as long as the test runs, unless a reload acts.
  auto job = [&](const std::string& name, const std::string& schedule) {
    return "  - {name: " + name + ", url: '" + site.srv.url("/" + name) + "', " + schedule +
           ", robots: ignore}\n";
  };
  const std::string yearly = "cron: '0 0 1 1 *'";
  auto cfg = dir.write("jobs.yaml", "api: {listen: ''}\njobs:\n" + job("y", yearly) +
                                        job("z", yearly) + job("k", yearly));
  auto db = dir.file("s.db");
  pid_t pid = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);
  REQUIRE(eventually(
      [&] { return test::slurp(dir.file("e")).find("scraperd: 3 jobs") != std::string::npos; }));

  dir.write("jobs.yaml", "api: {listen: ''}\njobs:\n" + job("y", "every: 1s") + job("k", yearly));
  kill(pid, SIGHUP);
  REQUIRE(eventually([&] { return site.of("/y") >= 2; }, 5s));  // not next January
  CHECK(eventually([&] {
    return test::slurp(dir.file("e")).find("job 'z' removed by a reload") != std::string::npos;
  }));
  CHECK_THAT(test::slurp(dir.file("e")), Catch::Contains("reload: 0 job(s) added, 1 changed "
                                                         "(y), 1 removed (z), 1 unchanged"));
  kill(pid, SIGTERM);
  REQUIRE(test::wait_exit(pid) == 0);
  CHECK(site.of("/z") == 0);
  CHECK(site.of("/k") == 0);
  // The next due time of the job that stays asleep is stored, for the next start.
  CHECK(test::sql1(db, "SELECT substr(next_due, 6, 11) FROM jobs WHERE name = 'k'") ==
        "01-01 00:00");
}

TEST_CASE("drain cut short by a second signal or shutdown_timeout: in-flight become cancelled",
          "[service]") {
  Site site(3000ms);
  test::TempDir dir;
  std::string limit = GENERATE(std::string(""), std::string("shutdown_timeout: 300ms\n"));
  auto cfg = dir.write("jobs.yaml", limit + "api: {listen: ''}\njobs:\n  - {name: hang, url: '" +
                                        site.srv.url("/slow") +
                                        "', every: 1s, robots: ignore, timeout: 30s}\n");
  auto db = dir.file("c.db");
  pid_t pid = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);
  REQUIRE(eventually([&] { return site.of("/slow") >= 1; }));
  auto start = std::chrono::steady_clock::now();
  kill(pid, SIGTERM);
  if (limit.empty()) {
    std::this_thread::sleep_for(200ms);
    kill(pid, SIGTERM);
  }
  REQUIRE(test::wait_exit(pid) == 0);
  CHECK(std::chrono::steady_clock::now() - start < 2s);  // not the 3 s the server takes
  auto e = test::sql(db, "SELECT * FROM errors");
  REQUIRE(e.size() == 1);
  CHECK(e[0]["kind"] == "cancelled");
  CHECK_THAT(e[0]["message"],
             Catch::Contains(limit.empty() ? "second signal" : "shutdown_timeout passed"));
  CHECK(test::sql1(db, "SELECT status FROM runs") == "cancelled");
  CHECK(test::sql1(db, "PRAGMA integrity_check") == "ok");
}

TEST_CASE("under journald (JOURNAL_STREAM is stderr) log lines carry <N> priorities", "[service]") {
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml", "jobs:\n  - {name: j, url: 'http://127.0.0.1:" +
                                        std::to_string(test::refused_port()) +
                                        "/', every: 1h, robots: ignore, retries: {max: 0}}\n");
  auto err = dir.write("e", "");
  struct stat st {};
  REQUIRE(::stat(err.c_str(), &st) == 0);
  std::string stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  pid_t pid = test::spawn({"run", "--once", "--config", cfg, "--db", dir.file("j.db")},
                          dir.file("o"), err, {"JOURNAL_STREAM=" + stream});
  REQUIRE(test::wait_exit(pid) == 3);  // its one URL failed
  auto log = test::slurp(err);
  CHECK_THAT(log, Catch::StartsWith("<6>scraperd: 1 jobs from"));
  CHECK_THAT(log, Catch::Contains("\n<4>job 'j': ") && Catch::Contains("connect"));
  CHECK_THAT(log, !Catch::Contains("2026-") && !Catch::Contains("info"));

  // Not the journal: the console format.
  pid = test::spawn({"run", "--once", "--config", cfg, "--db", dir.file("j.db")}, dir.file("o"),
                    err, {"JOURNAL_STREAM=1:1"});
  REQUIRE(test::wait_exit(pid) == 3);
  CHECK_THAT(test::slurp(err), Catch::Contains(" info scraperd: 1 jobs from"));
}
