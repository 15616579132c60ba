#include "storage/store.h"

#include <sqlite3.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "storage/writer.h"
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

std::string cell(const storage::Table& t, size_t row, const std::string& column) {
  auto it = std::find(t.columns.begin(), t.columns.end(), column);
  REQUIRE(it != t.columns.end());
  const auto& c = t.rows.at(row).at(static_cast<size_t>(it - t.columns.begin()));
  if (auto* s = std::get_if<std::string>(&c)) return *s;
  if (auto* n = std::get_if<std::int64_t>(&c)) return std::to_string(*n);
  if (auto* d = std::get_if<double>(&c)) return std::to_string(*d);
  return "NULL";
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
        "changes errors jobs latest_results paused results runs sqlite_sequence url_state");
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

TEST_CASE("queries filter by job, time, kind and change, newest first", "[storage]") {
  test::TempDir dir;
  auto path = dir.file("q.db");
  auto t0 = storage::Clock::from_time_t(1'700'000'000);
  using std::chrono::seconds;
  {
    storage::Writer w(path);
    auto run = w.new_run_key();
    w.push(storage::JobSeen{"j", "every 1m", 3, t0});
    w.push(storage::RunStarted{run, "j", t0, t0 + seconds(1), 3});
    w.push(storage::ResultRow{run, "j", "http://a/1", "", 200, 10, 1.5, t0});
    w.push(storage::ResultRow{run, "j", "http://a/2", "http://a/2b", 200, 0, 2.5, t0 + seconds(5)});
    w.push(storage::ErrorRow{run, "j", "http://a/3", 1, "http", 404, "HTTP status 404", 3, t0});
    w.push(storage::ErrorRow{run, "j", "http://a/4", 2, "connect", std::nullopt, "refused", 4,
                             t0 + seconds(9)});
    w.push(storage::RunFinished{run, t0 + seconds(10), "partial", 2, 2});
    w.push(storage::ResultRow{0, "other'; DROP TABLE results; --", "http://o/", "", 200, 1, 1, t0});
  }
  auto all = storage::query_results(path, {});
  REQUIRE(all.rows.size() == 3);
  CHECK(cell(all, 0, "url") == "http://a/2");  // newest first
  CHECK(cell(all, 0, "final_url") == "http://a/2b");

  storage::Filter f;
  f.job = "j";
  CHECK(storage::query_results(path, f).rows.size() == 2);
  f.job = "other'; DROP TABLE results; --";
  CHECK(storage::query_results(path, f).rows.size() == 1);
  f.job.clear();
  f.since = t0 + seconds(1);
  CHECK(storage::query_results(path, f).rows.size() == 1);
  f = {};
  f.limit = 1;
  CHECK(storage::query_results(path, f).rows.size() == 1);
  f = {};
  f.changed_only = true;
  CHECK(storage::query_results(path, f).rows.empty());

  f = {};
  f.kind = "connect";
  auto errors = storage::query_errors(path, f);
  REQUIRE(errors.rows.size() == 1);
  CHECK(cell(errors, 0, "attempt") == "2");
  CHECK(cell(errors, 0, "status") == "NULL");

  auto runs = storage::query_runs(path, {});
  REQUIRE(runs.rows.size() == 1);
  CHECK(cell(runs, 0, "status") == "partial");
  CHECK(cell(runs, 0, "lag_ms") == "1000.000000");
  CHECK(cell(runs, 0, "failed") == "2");

  auto jobs = storage::query_jobs(path, {});
  REQUIRE(jobs.rows.size() == 1);
  CHECK(cell(jobs, 0, "job") == "j");
  CHECK(cell(jobs, 0, "state") == "active");
  CHECK(cell(jobs, 0, "last_status") == "partial");
}

TEST_CASE("a paused job stays paused until resumed, and the jobs query says so", "[storage]") {
  test::TempDir dir;
  auto path = dir.file("p.db");
  auto now = storage::Clock::now();
  {
    storage::Writer w(path);
    w.push(storage::JobSeen{"a", "every 1m", 1, now});
    w.push(storage::JobSeen{"b", "every 1m", 1, now});
  }
  CHECK(storage::paused_jobs(path).empty());
  CHECK(storage::set_paused(path, "a", true, now));
  CHECK_FALSE(storage::set_paused(path, "a", true, now + std::chrono::hours(1)));  // already
  auto paused = storage::paused_jobs(path);
  REQUIRE(paused.size() == 1);
  CHECK(storage::format_time(paused.at("a")) == storage::format_time(now));  // the first time

  storage::Filter f;
  auto jobs = storage::query_jobs(path, f);
  REQUIRE(jobs.rows.size() == 2);
  CHECK(cell(jobs, 0, "state") == "paused");
  CHECK(cell(jobs, 0, "paused_since") == storage::format_time(now));
  CHECK(cell(jobs, 1, "state") == "never run");
  f.limit = 1;
  CHECK(storage::query_jobs(path, f).rows.size() == 1);
  f.job = "b";
  REQUIRE(storage::query_jobs(path, f).rows.size() == 1);
  CHECK(cell(storage::query_jobs(path, f), 0, "job") == "b");

  CHECK(storage::set_paused(path, "a", false, now));
  CHECK_FALSE(storage::set_paused(path, "a", false, now));
  CHECK(storage::paused_jobs(path).empty());
  CHECK(storage::job_known(path, "b"));
  CHECK_FALSE(storage::job_known(path, "c"));
}

TEST_CASE("runs a killed daemon left running are closed as interrupted", "[storage]") {
  test::TempDir dir;
  auto path = dir.file("i.db");
  auto now = storage::Clock::now();
  {
    storage::Writer w(path);
    w.push(storage::RunStarted{w.new_run_key(), "j", now, now, 1});
  }
  storage::Writer again(path);
  CHECK(sql1(path, "SELECT status FROM runs") == "interrupted");
  again.push(storage::RunStarted{again.new_run_key(), "j", now, now, 1});
  again.close();
  CHECK(sql1(path, "SELECT group_concat(id || ':' || status) FROM runs") ==
        "1:interrupted,2:running");
}

TEST_CASE("run ids come from the database: two writers on one file never collide",
          "[storage][run_ids]") {
  // What `run --once` beside the daemon did before the lock (issue 18): ids handed out from
  // memory (max(id)+1 read at start) collided, and every later commit failed.
  test::TempDir dir;
  auto path = dir.file("two.db");
  auto now = storage::Clock::now();
  storage::Writer a(path), b(path);
  for (int i = 0; i < 3; ++i) {
    for (auto* w : {&a, &b}) {
      auto key = w->new_run_key();
      std::string job = w == &a ? "a" : "b";
      w->push(storage::RunStarted{key, job, now, now, 1});
      w->push(storage::ResultRow{key, job, "http://x/" + std::to_string(i), "", 200, 1, 1, now});
      w->push(storage::ErrorRow{key, job, "http://y/", 1, "connect", std::nullopt, "x", 1, now});
      w->push(storage::RunFinished{key, now, "partial", 1, 1});
    }
  }
  a.close();
  b.close();
  CHECK(a.last_error().empty());
  CHECK(b.last_error().empty());
  CHECK(a.committed() == 12);
  CHECK(b.committed() == 12);
  CHECK(sql1(path, "SELECT count(DISTINCT id) FROM runs WHERE status = 'partial'") == "6");
  // Every row points at a run of its own job.
  CHECK(sql1(path,
             "SELECT count(*) FROM results r JOIN runs ON runs.id = r.run_id "
             "WHERE runs.job = r.job") == "6");
  CHECK(sql1(path,
             "SELECT count(*) FROM errors e JOIN runs ON runs.id = e.run_id "
             "WHERE runs.job = e.job") == "6");
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
