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

namespace {

// Every value for_each_field_value gives, as "field url at_ms value" lines.
std::vector<std::string> field_values(const std::string& path, const storage::Filter& f) {
  std::vector<std::string> out;
  storage::for_each_field_value(path, f, [&](const storage::FieldValue& v) {
    std::string value = std::holds_alternative<std::int64_t>(v.value)
                            ? std::to_string(std::get<std::int64_t>(v.value)) + "i"
                            : std::to_string(std::get<double>(v.value));
    out.push_back(std::string(v.field) + " " + std::string(v.url) + " " + std::to_string(v.at_ms) +
                  " " + value);
  });
  return out;
}

}  // namespace

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
  CHECK(field_values(path, f) ==
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
  auto all = field_values(path, f);
  CHECK(all == std::vector<std::string>{
                   "n http://a/ " + std::to_string(t0 + 250) + " 3i",
                   "n http://b/ " + std::to_string(t0 + 60'000) + " -1.250000",
                   "price http://a/ " + std::to_string(t0 + 250) + " 9.500000",
                   "price http://a/ " + std::to_string(t0 + 61'000) + " 8i",
                   "price http://b/ " + std::to_string(t0 + 60'000) + " 7i",
               });
  // limit: the newest values, exactly that many (two of the same result here).
  f.limit = 3;
  CHECK(field_values(path, f) ==
        std::vector<std::string>{"n http://b/ " + std::to_string(t0 + 60'000) + " -1.250000",
                                 "price http://a/ " + std::to_string(t0 + 61'000) + " 8i",
                                 "price http://b/ " + std::to_string(t0 + 60'000) + " 7i"});
  f.limit = 2;
  CHECK(field_values(path, f).size() == 2);
  f.limit = 100;
  f.since = at + std::chrono::seconds(1);
  CHECK(field_values(path, f) ==
        std::vector<std::string>{"price http://a/ " + std::to_string(t0 + 61'000) + " 8i"});
  f.since.reset();
  f.job = "nobody";
  CHECK(field_values(path, f).empty());

  // Deleting results (retention) deletes their values.
  exec(path, "DELETE FROM results WHERE url = 'http://b/'");
  f.job = "shop";
  CHECK(field_values(path, f).size() == 3);
  CHECK(sql1(path, "SELECT count(*) FROM field_values") == "4");  // other's one
}

TEST_CASE("the jobs page's queries: states, given jobs, recent runs, last changes", "[storage]") {
  test::TempDir dir;
  auto path = dir.file("jp.db");
  auto t0 = storage::Clock::now() - std::chrono::hours(1);
  using std::chrono::seconds;
  {
    storage::Writer w(path);
    for (const char* name : {"a", "b", "c", "d"}) w.push(storage::JobSeen{name, "every 1m", 1, t0});
    // a: three runs (ok, failed, ok) and a change; b: a failed run; c: one running; d: none.
    for (int i = 0; i < 3; ++i) {
      auto key = w.new_run_key();
      auto start = t0 + seconds(10 * i);
      w.push(storage::RunStarted{key, "a", start, start, 1});
      w.push(storage::RunFinished{key, start + seconds(i + 1), i == 1 ? "failed" : "ok",
                                  i == 1 ? 0 : 1, i == 1 ? 1 : 0});
    }
    auto skipped = w.new_run_key();  // a skipped run is not one of the recent runs
    w.push(storage::RunStarted{skipped, "a", t0 + seconds(40), t0 + seconds(40), 1});
    w.push(storage::RunFinished{skipped, t0 + seconds(40), "skipped", 0, 0});
    w.push(storage::ResultRow{0, "a", "http://a/", "", 200, 1, 1, t0 + seconds(5), "h", true, ""});
    w.push(
        storage::ResultRow{0, "a", "http://a/", "", 200, 1, 1, t0 + seconds(25), "h", false, ""});
    auto b = w.new_run_key();
    w.push(storage::RunStarted{b, "b", t0, t0, 1});
    w.push(storage::RunFinished{b, t0 + seconds(2), "failed", 0, 1});
    w.push(storage::RunStarted{w.new_run_key(), "c", t0, t0, 1});
  }
  auto states = storage::query_job_states(path);
  REQUIRE(states.rows.size() == 4);
  CHECK(cell(states, 0, "state") == "active");
  CHECK(cell(states, 0, "last_status") == "skipped");
  CHECK(cell(states, 1, "last_status") == "failed");
  CHECK(cell(states, 2, "state") == "running");
  CHECK(cell(states, 3, "state") == "never run");
  CHECK(cell(states, 3, "last_status") == "NULL");

  storage::Filter f;
  f.jobs = {"d", "b"};
  auto jobs = storage::query_jobs(path, f);
  REQUIRE(jobs.rows.size() == 2);
  CHECK(cell(jobs, 0, "job") == "b");
  CHECK(cell(jobs, 0, "ok_pct_24h") == "0.000000");
  CHECK(cell(jobs, 1, "job") == "d");

  auto runs = storage::query_recent_runs(path, {"a", "b", "c"}, 2);
  REQUIRE(runs.rows.size() == 3);  // a's two newest finished, b's one; c's is not finished
  CHECK(cell(runs, 0, "job") == "a");
  CHECK(cell(runs, 0, "status") == "ok");
  CHECK(cell(runs, 0, "started_at") == storage::format_time(t0 + seconds(20)));
  CHECK(cell(runs, 1, "status") == "failed");
  CHECK(cell(runs, 2, "job") == "b");
  CHECK(storage::query_recent_runs(path, {"d"}, 30).rows.empty());

  auto changes = storage::query_last_changes(path, {"a", "b"});
  REQUIRE(changes.rows.size() == 1);
  CHECK(cell(changes, 0, "job") == "a");
  CHECK(cell(changes, 0, "last_change") == storage::format_time(t0 + seconds(5)));
}
