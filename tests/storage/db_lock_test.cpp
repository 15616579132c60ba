// storage/db_lock.h: one `run` per database, and who holds it.
#include "storage/db_lock.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "tests/support/temp_dir.h"

using namespace scraperd;

TEST_CASE("db lock: one holder at a time, and the holder says who it is", "[db_lock]") {
  test::TempDir dir;
  auto db = dir.file("x.db");
  CHECK_FALSE(storage::db_lock_holder(db));                      // no lock file yet
  CHECK_FALSE(std::filesystem::exists(storage::lock_path(db)));  // the reader creates nothing
  {
    auto lock = storage::lock_database(db, {0, "", "/etc/scraperd/jobs.yaml", "127.0.0.1:0"});
    REQUIRE(lock.held());
    CHECK(std::filesystem::exists(db + ".lock"));

    auto holder = storage::db_lock_holder(db);
    REQUIRE(holder);
    CHECK(holder->pid == ::getpid());
    CHECK(holder->since.size() == 20);  // 2026-12-03T10:15:00Z
    CHECK(holder->since.back() == 'Z');
    CHECK(holder->config == "/etc/scraperd/jobs.yaml");
    CHECK(holder->api == "127.0.0.1:0");

    // What the engine does once the API is bound: pid and since stay as they were.
    lock.update({0, "", holder->config, "127.0.0.1:9184"});
    auto updated = storage::db_lock_holder(db);
    REQUIRE(updated);
    CHECK(updated->api == "127.0.0.1:9184");
    CHECK(updated->pid == ::getpid());
    CHECK(updated->since == holder->since);
    CHECK(lock.info().api == "127.0.0.1:9184");

    // A second holder, even in the same process (another open file), is refused at once.
    try {
      storage::lock_database(db);
      FAIL("a second lock was taken");
    } catch (const storage::DbLockError& e) {
      CHECK_THAT(e.what(), Catch::Contains("database " + db + " is in use by scraperd pid " +
                                           std::to_string(::getpid())));
      REQUIRE(e.holder());
      CHECK(e.holder()->pid == ::getpid());
    }
    // Another database beside it is another lock.
    CHECK(storage::lock_database(dir.file("y.db")).held());
  }
  // Released: nobody holds it, and it can be taken again.
  CHECK_FALSE(storage::db_lock_holder(db));
  CHECK(storage::lock_database(db).held());
}

TEST_CASE("db lock: an unwritable place names the OS reason, :memory: needs no lock", "[db_lock]") {
  test::TempDir dir;
  try {
    storage::lock_database(dir.file("no/such/dir/x.db"));
    FAIL("locked a file in a missing directory");
  } catch (const storage::DbLockError& e) {
    CHECK_THAT(e.what(), Catch::Contains("No such file or directory"));
    CHECK_FALSE(e.holder());
  }
  CHECK_FALSE(storage::lock_database(":memory:").held());
  CHECK_FALSE(storage::db_lock_holder(":memory:"));
}
