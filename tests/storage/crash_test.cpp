// The database survives the writer being killed mid-transaction, again and again.
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <thread>

#include "storage/writer.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

extern char** environ;
using namespace scraperd;

TEST_CASE("SIGKILL during heavy writing never corrupts the database or a committed row",
          "[writer][crash]") {
  test::TempDir dir;
  auto db = dir.file("crash.db");
  std::map<std::string, std::string> committed;  // tag → rows seen after its kill
  for (int round = 0; round < 10; ++round) {
    std::string tag = "round" + std::to_string(round);
    std::string bin = WRITER_STRESS_BIN;
    std::vector<char*> argv{bin.data(), db.data(), tag.data(), nullptr};
    pid_t pid = -1;
    REQUIRE(posix_spawn(&pid, bin.c_str(), nullptr, nullptr, argv.data(), environ) == 0);
    // Kill at a different moment each round, while batches are being committed: once the
    // first batch is in (a loaded machine may take a while to start the writer), then later.
    auto count = "SELECT count(*) FROM results WHERE job = '" + tag + "'";
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      struct stat st {};
      if (::stat(db.c_str(), &st) == 0) {
        try {
          if (test::sql1(db, count) != "0") break;
        } catch (const std::exception&) {  // not migrated yet
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(37 * round));
    REQUIRE(kill(pid, SIGKILL) == 0);
    int status = 0;
    waitpid(pid, &status, 0);
    REQUIRE(WIFSIGNALED(status));

    INFO("round " << round);
    REQUIRE(test::sql1(db, "PRAGMA integrity_check") == "ok");
    // Commits are in push order, so what survived is exactly rows 0..n-1, each intact.
    auto rows =
        test::sql(db, "SELECT url, bytes FROM results WHERE job = '" + tag + "' ORDER BY id");
    CHECK(rows.size() > 0);
    for (size_t i = 0; i < rows.size(); ++i) {
      if (rows[i]["bytes"] != std::to_string(i) || rows[i]["url"] != tag + "/" + rows[i]["bytes"])
        FAIL("row " << i << " of " << tag << " is " << rows[i]["url"] << " " << rows[i]["bytes"]);
    }
    committed[tag] = std::to_string(rows.size());
    // Rows committed in earlier rounds are all still there.
    for (const auto& [t, n] : committed)
      CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE job = '" + t + "'") == n);
  }
}

TEST_CASE("a read-only database is a clear error, not a crash", "[writer]") {
  test::TempDir dir;
  auto db = dir.file("ro.db");
  storage::migrate(db);
  if (geteuid() != 0) {
    chmod(db.c_str(), 0444);
    CHECK_THROWS_WITH(storage::Writer(db), Catch::Contains("readonly"));
    return;
  }
  // root writes anywhere: check as an unprivileged user who may read the file, not write it.
  chmod(dir.file("").c_str(), 0755);
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (setgid(65534) != 0 || setuid(65534) != 0) _exit(10);
    try {
      storage::Writer w(db);
      _exit(11);  // opened for writing: wrong
    } catch (const storage::Error& e) {
      fprintf(stderr, "%s\n", e.what());
      _exit(std::string(e.what()).find("readonly") != std::string::npos ? 0 : 12);
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
