#include "storage/store.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "storage/writer.h"
#include "tests/storage/test_db.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using test::sql;
using test::sql1;

namespace {

void exec(const std::string& path, const char* statement) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, statement, nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

}  // namespace

TEST_CASE("migrate creates the schema in WAL mode at the current version", "[storage]") {
  test::TempDir dir;
  auto path = dir.file("a.db");
  storage::migrate(path);
  storage::migrate(path);  // idempotent
  CHECK(sql1(path, "PRAGMA user_version") == std::to_string(storage::schema_version()));
  CHECK(sql1(path, "PRAGMA journal_mode") == "wal");
  CHECK(sql1(path, "PRAGMA auto_vacuum") == "2");  // incremental
  CHECK(sql1(path,
             "SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_master "
             "WHERE type IN ('table', 'view') ORDER BY name)") ==
        "changes errors field_values jobs latest_results paused results runs sqlite_sequence "
        "url_state");
}

TEST_CASE("a version 1 database migrates forward and keeps its rows", "[storage][migration]") {
  test::TempDir dir;
  auto path = dir.file("v1.db");
  storage::migrate(path, 1);
  REQUIRE(sql1(path, "PRAGMA user_version") == "1");
  exec(path,
       "INSERT INTO results (job, url, status, bytes, elapsed_ms, fetched_at) "
       "VALUES ('old', 'http://a/', 200, 5, 1.5, '2026-01-01 00:00:00.000');"
       "INSERT INTO errors (job, url, kind, status, message, elapsed_ms, fetched_at) "
       "VALUES ('old', 'http://b/', 'http', 404, 'HTTP status 404', 2, '2026-01-01 00:00:01.000')");
  storage::migrate(path);
  CHECK(sql1(path, "PRAGMA user_version") == std::to_string(storage::schema_version()));
  auto r = sql(path, "SELECT job, url, status, bytes, run_id, changed FROM results");
  REQUIRE(r.size() == 1);
  CHECK(r[0]["job"] == "old");
  CHECK(r[0]["bytes"] == "5");
  CHECK(r[0]["run_id"] == "");  // NULL: rows from before runs existed
  auto e = sql(path, "SELECT kind, status, attempt FROM errors");
  REQUIRE(e.size() == 1);
  CHECK(e[0]["attempt"] == "1");
  CHECK(sql1(path, "SELECT count(*) FROM latest_results") == "1");
}

TEST_CASE("a database from a newer scraperd is refused, not damaged", "[storage]") {
  test::TempDir dir;
  auto path = dir.file("new.db");
  storage::migrate(path);
  exec(path, "PRAGMA user_version=999");
  CHECK_THROWS_WITH(storage::migrate(path), Catch::Contains("newer than this scraperd"));
  CHECK(sql1(path, "PRAGMA user_version") == "999");
}

TEST_CASE("queries on a missing database say so", "[storage]") {
  test::TempDir dir;
  CHECK_THROWS_WITH(storage::query_results(dir.file("none.db"), {}),
                    Catch::Contains("no database at"));
}

TEST_CASE("timestamps are UTC text SQLite's date functions compare correctly", "[storage]") {
  auto t = storage::Clock::from_time_t(1'700'000'000) + std::chrono::milliseconds(42);
  CHECK(storage::format_time(t) == "2023-11-14 22:13:20.042");
  CHECK(storage::parse_time("2023-11-14 22:13:20.042") == t);
}

TEST_CASE("run ids are never reused, even after the newest runs are deleted",
          "[storage][run_ids][migration]") {
  test::TempDir dir;
  auto path = dir.file("v3.db");
  // A version 3 database (run ids were plain INTEGER PRIMARY KEY) with two runs and a row.
  storage::migrate(path, 3);
  exec(path,
       "INSERT INTO runs (id, job, due_at, started_at, status) VALUES "
       "(7, 'j', '2026-01-01 00:00:00.000', '2026-01-01 00:00:00.000', 'ok'), "
       "(8, 'j', '2026-01-01 00:01:00.000', '2026-01-01 00:01:00.000', 'ok');"
       "INSERT INTO results (run_id, job, url, status, bytes, elapsed_ms, fetched_at) "
       "VALUES (7, 'j', 'http://a/', 200, 5, 1.5, '2026-01-01 00:00:00.000')");
  storage::migrate(path);
  CHECK(sql1(path, "SELECT group_concat(id) FROM runs") == "7,8");
  CHECK(sql1(path, "SELECT run_id FROM results") == "7");
  exec(path, "DELETE FROM runs WHERE id = 8");
  auto now = storage::Clock::now();
  {
    storage::Writer w(path);
    w.push(storage::RunStarted{w.new_run_key(), "j", now, now, 1});
    w.push(storage::RunSkipped{"j", now});
  }
  CHECK(sql1(path, "SELECT group_concat(id) FROM runs") == "7,9,10");
}

TEST_CASE("the example queries in docs/schema.md run against the schema", "[storage][docs]") {
  std::ifstream in(std::string(SCRAPERD_SOURCE_DIR) + "/docs/schema.md");
  std::stringstream doc;
  doc << in.rdbuf();
  std::string text = doc.str();
  auto start = text.find("```sql\n");
  REQUIRE(start != std::string::npos);
  std::string sql_text = text.substr(start + 7, text.find("```", start + 7) - start - 7);
  test::TempDir dir;
  auto path = dir.file("docs.db");
  storage::migrate(path);
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  int statements = 0;
  for (const char* tail = sql_text.c_str(); *tail;) {
    sqlite3_stmt* s = nullptr;
    int rc = sqlite3_prepare_v2(db, tail, -1, &s, &tail);
    INFO(sqlite3_errmsg(db));
    REQUIRE(rc == SQLITE_OK);
    if (!s) break;  // only whitespace or comments left
    while (sqlite3_step(s) == SQLITE_ROW) {
    }
    sqlite3_finalize(s);
    ++statements;
  }
  sqlite3_close(db);
  CHECK(statements >= 6);
}

TEST_CASE("numeric field values are kept in field_values as results are written and deleted",
          "[storage][migration]") {
  test::TempDir dir;
  auto path = dir.file("fv.db");
  // Rows written before version 6 are copied by the migration; what is not a JSON object's
  // number (text, an array, broken JSON, no data) is not.
  storage::migrate(path, 5);
  exec(path,
       "INSERT INTO jobs (name, schedule, urls, first_seen, last_seen) VALUES "
       "('shop', 'every 1m', 1, '2026-01-01 00:00:00.000', '2026-01-01 00:00:00.000');"
       "INSERT INTO results (job, url, status, bytes, elapsed_ms, fetched_at, data) VALUES "
       "('shop', 'http://a/', 200, 5, 1, '2026-01-01 00:00:00.250', "
       "'{\"price\": 9.5, \"n\": 3, \"title\": \"x\"}'),"
       "('shop', 'http://a/', 200, 5, 1, '2026-01-01 00:00:01.000', '[1, 2]'),"
       "('shop', 'http://a/', 200, 5, 1, '2026-01-01 00:00:02.000', '{broken'),"
       "('shop', 'http://a/', 200, 5, 1, '2026-01-01 00:00:03.000', NULL)");
  storage::migrate(path);
  const std::int64_t t0 = 1'767'225'600'000;  // 2026-01-01 00:00:00 UTC, in ms
  storage::Filter f;
  f.job = "shop";
  f.limit = 100;
  CHECK(test::field_values(path, f) ==
        std::vector<std::string>{"n http://a/ " + std::to_string(t0 + 250) + " 3i",
                                 "price http://a/ " + std::to_string(t0 + 250) + " 9.500000"});

  // New rows by the writer, through the trigger; broken JSON does not fail the commit.
  auto at = storage::parse_time("2026-01-01 00:01:00.000");
  {
    storage::Writer w(path);
    w.push(storage::ResultRow{0, "shop", "http://b/", "", 200, 1, 1, at, "", std::nullopt,
                              R"({"price": 7, "n": -1.25})"});
    w.push(storage::ResultRow{0, "shop", "http://a/", "", 200, 1, 1, at + std::chrono::seconds(1),
                              "", std::nullopt, R"({"price": 8})"});
    w.push(storage::ResultRow{0, "shop", "http://a/", "", 200, 1, 1, at, "", std::nullopt,
                              "{not json"});
    w.push(storage::ResultRow{0, "other", "http://a/", "", 200, 1, 1, at, "", std::nullopt,
                              R"({"price": 1})"});
  }
  CHECK(sql1(path, "SELECT count(*) FROM results") == "8");
  auto all = test::field_values(path, f);
  CHECK(all == std::vector<std::string>{
                   "n http://a/ " + std::to_string(t0 + 250) + " 3i",
                   "n http://b/ " + std::to_string(t0 + 60'000) + " -1.250000",
                   "price http://a/ " + std::to_string(t0 + 250) + " 9.500000",
                   "price http://a/ " + std::to_string(t0 + 61'000) + " 8i",
                   "price http://b/ " + std::to_string(t0 + 60'000) + " 7i",
               });
  // limit: the newest values, exactly that many (two of the same result here).
  f.limit = 3;
  CHECK(test::field_values(path, f) ==
        std::vector<std::string>{"n http://b/ " + std::to_string(t0 + 60'000) + " -1.250000",
                                 "price http://a/ " + std::to_string(t0 + 61'000) + " 8i",
                                 "price http://b/ " + std::to_string(t0 + 60'000) + " 7i"});
  f.limit = 2;
  CHECK(test::field_values(path, f).size() == 2);
  f.limit = 100;
  f.since = at + std::chrono::seconds(1);
  CHECK(test::field_values(path, f) ==
        std::vector<std::string>{"price http://a/ " + std::to_string(t0 + 61'000) + " 8i"});
  f.since.reset();
  f.job = "nobody";
  CHECK(test::field_values(path, f).empty());

  // Deleting results (retention) deletes their values.
  exec(path, "DELETE FROM results WHERE url = 'http://b/'");
  f.job = "shop";
  CHECK(test::field_values(path, f).size() == 3);
  CHECK(sql1(path, "SELECT count(*) FROM field_values") == "4");  // other's one
}
