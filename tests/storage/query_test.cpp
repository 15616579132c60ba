// The query functions of store.h (the CLI's and the API's reads) and the writer's run ids,
// on either backend: built into storage_tests (SQLite) and storage_pg_tests (PostgreSQL);
// see test_db.h.
#include <catch2/catch.hpp>

#include "storage/store.h"
#include "storage/writer.h"
#include "tests/storage/test_db.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;

namespace {

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

TEST_CASE("queries filter by job, time, kind and change, newest first", "[storage]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "q");
  const auto& path = db.locator;
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
  auto db = test::fresh_db(dir, "p");
  const auto& path = db.locator;
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
  auto db = test::fresh_db(dir, "i");
  const auto& path = db.locator;
  auto now = storage::Clock::now();
  {
    storage::Writer w(path);
    w.push(storage::RunStarted{w.new_run_key(), "j", now, now, 1});
  }
  storage::Writer again(path);
  CHECK(test::scalar(db, "SELECT status FROM runs") == "interrupted");
  again.push(storage::RunStarted{again.new_run_key(), "j", now, now, 1});
  again.close();
  CHECK(test::scalar(db, test::kPostgres
                             ? "SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM runs"
                             : "SELECT group_concat(id || ':' || status) FROM runs") ==
        "1:interrupted,2:running");
}

TEST_CASE("run ids come from the database: two writers on one file never collide",
          "[storage][run_ids]") {
  // What `run --once` beside the daemon did before the lock (issue 18): ids handed out from
  // memory (max(id)+1 read at start) collided, and every later commit failed.
  test::TempDir dir;
  auto db = test::fresh_db(dir, "two");
  const auto& path = db.locator;
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
  CHECK(test::scalar(db, "SELECT count(DISTINCT id) FROM runs WHERE status = 'partial'") == "6");
  // Every row points at a run of its own job.
  CHECK(test::scalar(db,
                     "SELECT count(*) FROM results r JOIN runs ON runs.id = r.run_id "
                     "WHERE runs.job = r.job") == "6");
  CHECK(test::scalar(db,
                     "SELECT count(*) FROM errors e JOIN runs ON runs.id = e.run_id "
                     "WHERE runs.job = e.job") == "6");
}

TEST_CASE("the jobs page's queries: states, given jobs, recent runs, last changes", "[storage]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "jp");
  const auto& path = db.locator;
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

TEST_CASE("numeric field values written by the writer, read for the charts, deleted with results",
          "[storage]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "fv");
  auto at = storage::parse_time("2026-01-01 00:01:00.000");
  const std::int64_t t0 = 1'767'225'600'000;  // 2026-01-01 00:00:00 UTC, in ms
  {
    storage::Writer w(db.locator);
    w.push(storage::ResultRow{0, "shop", "http://b/", "", 200, 1, 1, at, "", std::nullopt,
                              R"({"price": 7, "n": -1.25, "title": "x"})"});
    w.push(storage::ResultRow{0, "shop", "http://a/", "", 200, 1, 1, at + std::chrono::seconds(1),
                              "", std::nullopt, R"({"price": 8})"});
    w.push(storage::ResultRow{0, "shop", "http://a/", "", 200, 1, 1, at, "", std::nullopt,
                              "{not json"});
    w.push(
        storage::ResultRow{0, "shop", "http://a/", "", 200, 1, 1, at, "", std::nullopt, "[1, 2]"});
    w.push(storage::ResultRow{0, "other", "http://a/", "", 200, 1, 1, at, "", std::nullopt,
                              R"({"price": 1})"});
    w.close();
    CHECK(w.dropped() == 0);  // broken JSON does not fail the commit
  }
  storage::Filter f;
  f.job = "shop";
  f.limit = 100;
  CHECK(test::field_values(db.locator, f) ==
        std::vector<std::string>{"n http://b/ " + std::to_string(t0 + 60'000) + " -1.250000",
                                 "price http://a/ " + std::to_string(t0 + 61'000) + " 8i",
                                 "price http://b/ " + std::to_string(t0 + 60'000) + " 7i"});
  f.limit = 1;
  CHECK(test::field_values(db.locator, f) ==
        std::vector<std::string>{"price http://a/ " + std::to_string(t0 + 61'000) + " 8i"});
  f.limit = 100;
  f.since = at + std::chrono::seconds(1);
  CHECK(test::field_values(db.locator, f).size() == 1);
  test::execute(db, "DELETE FROM results WHERE url = 'http://b/'");
  CHECK(test::scalar(db, "SELECT count(*) FROM field_values") == "2");  // a's 8, other's 1
}

TEST_CASE("error groups by job, kind and host, and unfinished runs", "[storage]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "eg");
  auto now = storage::Clock::now();
  using std::chrono::hours;
  using std::chrono::minutes;
  {
    storage::Writer w(db.locator);
    auto e = [&](const char* url, const char* kind, const char* message, auto at) {
      w.push(storage::ErrorRow{0, "j", url, 1, kind, std::nullopt, message, 1, at});
    };
    e("https://a.example/x", "timeout", "old", now - hours(3));
    e("https://a.example/y", "timeout", "newest", now - minutes(5));
    e("https://a.example:8443", "timeout", "other host", now - minutes(5));
    e("http://b.example/z", "connect", "refused", now - hours(2));
    e("http://b.example/z", "connect", "too old", now - hours(30));
    w.push(storage::RunStarted{w.new_run_key(), "j", now, now, 4});
  }
  auto groups = storage::query_error_groups(db.locator, {});
  REQUIRE(groups.rows.size() == 3);
  CHECK(cell(groups, 0, "host") == "a.example");
  CHECK(cell(groups, 0, "kind") == "timeout");
  CHECK(cell(groups, 0, "last_24h") == "2");
  CHECK(cell(groups, 0, "last_1h") == "1");
  CHECK(cell(groups, 0, "message") == "newest");
  CHECK(cell(groups, 0, "url") == "https://a.example/y");
  CHECK(cell(groups, 1, "host") == "b.example");  // then by job, kind, host
  CHECK(cell(groups, 1, "last_1h") == "0");
  CHECK(cell(groups, 1, "last_24h") == "1");
  CHECK(cell(groups, 2, "host") == "a.example:8443");

  auto running = storage::query_unfinished_runs(db.locator);
  REQUIRE(running.rows.size() == 1);
  CHECK(cell(running, 0, "urls") == "4");
  CHECK(cell(running, 0, "done") == "0");
  CHECK(cell(running, 0, "started_at") == storage::format_time(now));

  storage::Filter latest_only;
  latest_only.latest_only = true;
  auto latest = storage::query_results(db.locator, latest_only);
  CHECK(latest.rows.empty());
}
