#include "storage/store.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "storage/writer.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;

namespace {

std::int64_t query_int(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, sql, -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  auto v = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

}  // namespace

TEST_CASE("migrate creates the schema in WAL mode at the current version", "[storage]") {
  test::TempDir dir;
  auto path = dir.file("a.db");
  storage::migrate(path);
  storage::migrate(path);  // idempotent
  CHECK(query_int(path, "PRAGMA user_version") == storage::schema_version());
  CHECK(query_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN ('results','errors')") ==
        2);
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, nullptr);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(s, 0))) == "wal");
  sqlite3_finalize(s);
  sqlite3_close(db);
}

TEST_CASE("a database from a newer scraperd is refused, not damaged", "[storage]") {
  test::TempDir dir;
  auto path = dir.file("new.db");
  storage::migrate(path);
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  sqlite3_exec(db, "PRAGMA user_version=999", nullptr, nullptr, nullptr);
  sqlite3_close(db);
  CHECK_THROWS_WITH(storage::migrate(path), Catch::Contains("newer than this scraperd"));
  CHECK(query_int(path, "PRAGMA user_version") == 999);
}

TEST_CASE("queries on a missing database say so", "[storage]") {
  test::TempDir dir;
  CHECK_THROWS_WITH(storage::recent_results(dir.file("none.db"), 10),
                    Catch::Contains("no database at"));
}

TEST_CASE("timestamps are UTC text SQLite's date functions compare correctly", "[storage]") {
  auto t = storage::Clock::from_time_t(1'700'000'000) + std::chrono::milliseconds(42);
  CHECK(storage::format_time(t) == "2023-11-14 22:13:20.042");
  CHECK(storage::parse_time("2023-11-14 22:13:20.042") == t);
}

TEST_CASE("results read back newest first while the database is open for writing", "[storage]") {
  test::TempDir dir;
  auto path = dir.file("r.db");
  storage::Writer writer(path);
  auto t0 = storage::Clock::from_time_t(1'700'000'000);
  writer.push(storage::ResultRow{"j", "http://a/1", 200, 10, 1.5, t0});
  writer.push(storage::ResultRow{"j", "http://a/2", 304, 0, 2.5, t0 + std::chrono::seconds(1)});
  writer.push(storage::ErrorRow{"j", "http://a/3", "http", 404, "HTTP status 404", 3, t0});
  writer.push(storage::ErrorRow{"j", "http://a/4", "connect", std::nullopt, "refused", 4, t0});
  writer.close();

  auto results = storage::recent_results(path, 10);
  REQUIRE(results.size() == 2);
  CHECK(results[0].url == "http://a/2");
  CHECK(results[0].status == 304);
  CHECK(results[1].bytes == 10);
  CHECK(results[1].fetched_at == t0);
  CHECK(storage::recent_results(path, 1).size() == 1);

  auto errors = storage::recent_errors(path, 10);
  REQUIRE(errors.size() == 2);
  CHECK(errors[1].kind == "http");  // same time: newest id first
  CHECK(errors[1].status == 404);
  CHECK(errors[0].kind == "connect");
  CHECK_FALSE(errors[0].status);
}
