#include "storage/writer.h"

#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "tests/storage/test_db.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"
#ifdef SCRAPERD_TEST_POSTGRES
#include <libpq-fe.h>
#endif

using namespace scraperd;

namespace {

std::int64_t count(const test::TestDb& db, const char* table) {
  return std::stoll(test::scalar(db, std::string("SELECT count(*) FROM ") + table));
}

// Holds the results table locked from another connection, so the writer's commits wait.
class Blocker {
 public:
  explicit Blocker(const test::TestDb& db) {
#ifdef SCRAPERD_TEST_POSTGRES
    conn_ = PQconnectdb(db.locator.c_str());
    REQUIRE(PQstatus(conn_) == CONNECTION_OK);
    PGresult* r = PQexec(conn_, "BEGIN; LOCK TABLE results IN ACCESS EXCLUSIVE MODE");
    REQUIRE(PQresultStatus(r) == PGRES_COMMAND_OK);
    PQclear(r);
#else
    REQUIRE(sqlite3_open(db.locator.c_str(), &db_) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db_, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
#endif
  }
  ~Blocker() {
    release();
  }
  void release() {
#ifdef SCRAPERD_TEST_POSTGRES
    if (conn_) PQfinish(conn_);  // its transaction rolls back
    conn_ = nullptr;
#else
    if (db_) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
      sqlite3_close(db_);
    }
    db_ = nullptr;
#endif
  }

 private:
#ifdef SCRAPERD_TEST_POSTGRES
  PGconn* conn_ = nullptr;
#else
  sqlite3* db_ = nullptr;
#endif
};

storage::Row result(int i) {
  return storage::ResultRow{
      0, "job", "http://h/" + std::to_string(i), "", 200, i, 1.0, storage::Clock::now()};
}

}  // namespace

TEST_CASE("every row pushed by many producers through a tiny queue is committed", "[writer]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "w");
  constexpr int kThreads = 4, kPerThread = 2'500;
  {
    storage::Writer writer(db.locator, {.capacity = 8, .max_batch = 64});
    std::vector<std::thread> producers;
    for (int t = 0; t < kThreads; ++t)
      producers.emplace_back([&writer, t] {
        for (int i = 0; i < kPerThread; ++i) {
          if (i % 2)
            writer.push(result(t * kPerThread + i));
          else
            writer.push(storage::ErrorRow{0, "job", "u", 1, "connect", std::nullopt, "m", 1,
                                          storage::Clock::now()});
        }
      });
    for (auto& p : producers) p.join();
    writer.close();
    CHECK(writer.committed() == kThreads * kPerThread);
  }
  CHECK(count(db, "results") + count(db, "errors") == kThreads * kPerThread);
  CHECK(count(db, "errors") == kThreads * kPerThread / 2);
}

TEST_CASE("the writer's page cache grows with the database, from 2 MB to 16 MB", "[writer]") {
  CHECK(storage::writer_cache_kib(0) == 2048);                   // SQLite's default
  CHECK(storage::writer_cache_kib(20LL << 20) == 2048 + 320);    // W1's 20 MB: ~2 MB
  CHECK(storage::writer_cache_kib(435LL << 20) == 2048 + 6960);  // W4's million pages
  CHECK(storage::writer_cache_kib(10LL << 30) == 16384);         // at most 16 MB
  CHECK(storage::writer_cache_kib(-1) == 2048);
}

TEST_CASE("try_push refuses when the queue is full and keeps the row", "[writer]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "w");
  storage::Writer writer(db.locator, {.capacity = 1, .max_batch = 1});
  // Hold the write lock from another connection so the writer cannot drain its queue.
  Blocker blocker(db);

  // The writer takes one row into its (blocked) batch, then the queue fills.
  int accepted = 0;
  storage::Row row = result(0);
  for (int i = 0; i < 100 && accepted < 2; ++i) {
    if (writer.try_push(row)) {
      ++accepted;
      row = result(accepted);
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  REQUIRE(accepted == 2);
  storage::Row refused = result(99);
  CHECK_FALSE(writer.try_push(refused));
  CHECK(std::get<storage::ResultRow>(refused).url == "http://h/99");  // untouched

  blocker.release();
  writer.push(std::move(refused));
  writer.close();
  CHECK(count(db, "results") == 3);
}

TEST_CASE("an unopenable database is an error at construction", "[writer]") {
  CHECK_THROWS_AS(storage::Writer(test::kPostgres ? "postgresql://nobody@/x?host=/nonexistent-dir"
                                                  : "/nonexistent-dir/x.db"),
                  storage::Error);
}

#ifndef SCRAPERD_TEST_POSTGRES  // SQLite's max_page_count: PostgreSQL has no such knob

TEST_CASE("a full database keeps rows queued and commits them once there is room", "[writer]") {
  test::TempDir dir;
  auto path = dir.file("full.db");
  storage::migrate(path);
  auto pages = std::stoll(test::sql1(path, "PRAGMA page_count"));
  // Room for about half the rows: then SQLite answers SQLITE_FULL, as on a full disk.
  storage::Writer writer(path, {.capacity = 100'000, .max_batch = 100, .max_pages = pages + 40});
  constexpr int kRows = 5'000;
  CHECK(writer.commit_failures() == 0);
  for (int i = 0; i < kRows; ++i) writer.push(result(i));
  for (int i = 0; i < 500 && writer.last_error().empty(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK_THAT(writer.last_error(), Catch::Contains("full"));
  CHECK(writer.commit_failures() >= 1);  // scraperd_writer_commit_failures_total
  auto stalled_at = writer.committed();
  CHECK(stalled_at > 0);
  CHECK(stalled_at < kRows);
  CHECK(writer.committed() + writer.queued() <= kRows);

  // An operator frees space (here: deletes what was committed); the writer's retries go
  // through and every queued row lands.
  for (int i = 0; i < 600 && writer.committed() < kRows; ++i) {
    sqlite3* d = nullptr;
    sqlite3_open(path.c_str(), &d);
    sqlite3_busy_timeout(d, 1000);
    sqlite3_exec(d, "DELETE FROM results", nullptr, nullptr, nullptr);
    sqlite3_close(d);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(writer.committed() == kRows);  // nothing was dropped
  CHECK(writer.last_error().empty());
  writer.close();
  CHECK(test::sql1(path, "PRAGMA integrity_check") == "ok");
}

#endif

TEST_CASE("retention prunes old rows in small batches and keeps new ones", "[writer]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "keep");
  auto now = storage::Clock::now();
  auto old = now - std::chrono::hours(48);
  {
    storage::Writer w(db.locator);
    auto old_run = w.new_run_key();
    w.push(storage::RunStarted{old_run, "j", old, old, 1});
    for (int i = 0; i < 2'500; ++i)
      w.push(
          storage::ResultRow{old_run, "j", "http://old/" + std::to_string(i), "", 200, 1, 1, old});
    w.push(
        storage::ErrorRow{old_run, "j", "http://old/e", 1, "connect", std::nullopt, "x", 1, old});
    w.push(storage::RunFinished{old_run, old, "partial", 2'500, 1});
    auto new_run = w.new_run_key();
    w.push(storage::RunStarted{new_run, "j", now, now, 1});
    w.push(storage::ResultRow{new_run, "j", "http://new/", "", 200, 1, 1, now});
  }
  storage::Writer w(db.locator,
                    {.keep = std::chrono::hours(24), .prune_every = std::chrono::milliseconds(10)});
  for (int i = 0; i < 500 && test::scalar(db, "SELECT count(*) FROM runs") != "1"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  w.close();
  CHECK(test::scalar(db, "SELECT min(url) || ' ' || count(*) FROM results") == "http://new/ 1");
  CHECK(test::scalar(db, "SELECT count(*) FROM errors") == "0");
  CHECK(test::scalar(db, "SELECT count(*) FROM runs") == "1");
  if (!test::kPostgres)
    CHECK(test::scalar(db, "PRAGMA freelist_count") == "0");  // pages given back
}

TEST_CASE("readers read while the writer commits: no errors, counts never go back", "[writer]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "rw");
  storage::Writer writer(db.locator, {.capacity = 1'000, .max_batch = 100});
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::string failure;
  std::thread reader([&] {
    std::int64_t last = 0;
    storage::Filter all;
    all.limit = 1'000'000;
    while (!done) {
      try {
        auto t = storage::query_results(db.locator, all);
        auto n = static_cast<std::int64_t>(t.rows.size());
        if (n < last) failure = "row count went backwards";
        last = n;
        ++reads;
      } catch (const std::exception& e) {
        failure = e.what();  // SQLITE_BUSY or a torn read would land here
      }
    }
  });
  // At least 20,000 rows, and on until the reader has read a few times while rows went in.
  int pushed = 0;
  while (pushed < 20'000 || (reads.load() <= 5 && pushed < 2'000'000))
    writer.push(result(pushed++));
  writer.close();
  done = true;
  reader.join();
  CHECK(failure.empty());
  CHECK(reads.load() > 5);
  CHECK(test::scalar(db, "SELECT count(*) FROM results") == std::to_string(pushed));
}

TEST_CASE("runs get database ids, their rows refer to them, jobs and URL state round-trip",
          "[writer]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "runs");
  auto t0 = storage::Clock::time_point(std::chrono::milliseconds(1'764'000'000'123));
  {
    storage::Writer w(db.locator, {.max_batch = 7});  // runs span batches
    w.push(storage::JobSeen{"j", "every 1m", 3, t0});
    for (int run = 0; run < 3; ++run) {
      auto key = w.new_run_key();
      w.push(storage::RunStarted{key, "j", t0, t0 + std::chrono::seconds(run), 3});
      for (int i = 0; i < 3; ++i)
        w.push(storage::ResultRow{key, "j", "http://h/" + std::to_string(i), "", 200, 5, 1.5, t0,
                                  "hash", i == 1, R"({"price": 12.5, "n": 3})"});
      w.push(storage::ErrorRow{key, "j", "http://h/e", 2, "http", 503, "tab\there\nline", 2, t0});
      w.push(storage::RunProgress{key, 3, 1, 4});
      w.push(storage::RunFinished{
          key, t0 + std::chrono::seconds(run) + std::chrono::milliseconds(5), "failed", 0, 4, 0});
      // The last state of a URL wins, also within one batch.
      w.push(storage::UrlState{"j", "http://h/0", "\"e" + std::to_string(run) + "\"", "", "h", "",
                               ""});
    }
    w.push(storage::JobDue{"j", t0 + std::chrono::minutes(1)});
    w.close();
    CHECK(w.dropped() == 0);
  }
  CHECK(count(db, "runs") == 3);
  CHECK(test::scalar(db,
                     "SELECT count(*) FROM results r JOIN runs u ON u.id = r.run_id "
                     "WHERE u.status = 'failed' AND u.urls = 4 AND u.failed = 4") == "9");
  CHECK(test::scalar(db, "SELECT count(DISTINCT run_id) FROM errors") == "3");
  CHECK(test::scalar(db, "SELECT message FROM errors LIMIT 1") == "tab\there\nline");
  CHECK(test::scalar(db, "SELECT count(*) FROM results WHERE changed = 1") == "3");
  CHECK(test::scalar(db, "SELECT count(*) FROM field_values") == "18");  // 9 results × 2 numbers

  auto due = storage::next_due_times(db.locator);
  REQUIRE(due.size() == 1);
  CHECK(due["j"] == t0 + std::chrono::minutes(1));  // to the millisecond
  std::map<std::pair<std::string, std::string>, storage::UrlState> states;
  storage::for_each_url_state(db.locator, [&](const storage::UrlState& s) {
    states[{s.job, s.url}] = s;
  });
  REQUIRE(states.size() == 1);
  CHECK(states[{"j", "http://h/0"}].etag == "\"e2\"");
  CHECK(states[{"j", "http://h/0"}].last_modified.empty());  // stored as NULL
  auto streaks = storage::failing_streaks(db.locator);
  CHECK(streaks["j"] == 3);
  CHECK(storage::job_known(db.locator, "j"));
  CHECK_FALSE(storage::job_known(db.locator, "other"));
  CHECK(storage::set_paused(db.locator, "j", true, t0));
  CHECK_FALSE(storage::set_paused(db.locator, "j", true, t0));
  CHECK(storage::paused_jobs(db.locator).at("j") == t0);

  // A run left `running` by a killed process is closed as interrupted by the next writer; a
  // new run's id is a new one.
  {
    storage::Writer w(db.locator);
    w.push(storage::RunStarted{w.new_run_key(), "j", t0, t0, 1});
  }
  storage::Writer w(db.locator);
  w.push(storage::RunStarted{w.new_run_key(), "j", t0, t0, 1});
  w.close();
  CHECK(count(db, "runs") == 5);
  CHECK(test::scalar(db, "SELECT count(DISTINCT id) FROM runs") == "5");
  CHECK(test::scalar(db, "SELECT count(*) FROM runs WHERE status = 'running'") == "1");
}

#ifdef SCRAPERD_TEST_POSTGRES
TEST_CASE("PostgreSQL restarted mid-stream: the writer reconnects and loses no row",
          "[writer][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "restart");
  auto& cluster = test::pg_cluster();
  storage::Writer writer(db.locator, {.capacity = 500, .max_batch = 100});
  std::atomic<bool> stop{false};
  std::atomic<int> pushed{0};
  std::thread producer([&] {
    for (int i = 0; !stop; ++i) {
      writer.push(result(i));
      ++pushed;
      if (i % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  auto wait_for = [](auto condition) {
    for (int i = 0; i < 3000 && !condition(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return condition();
  };
  CHECK(wait_for([&] { return writer.committed() >= 1000; }));
  cluster.stop();
  // The producer goes on into the bounded queue; the writer's commits fail, it keeps them.
  CHECK(wait_for([&] { return writer.failing() >= 2; }));
  CHECK_THAT(writer.last_error(), Catch::Contains("connect"));
  auto before = writer.committed();
  cluster.start();
  CHECK(wait_for([&] { return writer.committed() >= before + 2000; }));  // reconnected
  stop = true;
  producer.join();
  writer.close();
  CHECK(writer.dropped() == 0);
  CHECK(writer.committed() == static_cast<std::uint64_t>(pushed.load()));
  CHECK(count(db, "results") == pushed.load());
  CHECK(writer.last_error().empty());
}
TEST_CASE("a connection lost at COMMIT: the batch is looked up on reconnection, then written once",
          "[writer][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "commitlost");
  storage::migrate(db.locator);
  // The first commit's connection dies inside COMMIT (a deferred trigger terminates its own
  // backend before the commit record is written): the writer cannot know whether it landed.
  test::execute(db,
                "CREATE SEQUENCE kills; "
                "CREATE FUNCTION kill_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF nextval('kills') = 1 THEN PERFORM pg_terminate_backend(pg_backend_pid()); "
                "PERFORM pg_sleep(5); END IF; RETURN NULL; END $$; "
                "CREATE CONSTRAINT TRIGGER kill_at_commit AFTER INSERT ON writer_commits "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kill_once()");
  storage::Writer w(db.locator, {.max_batch = 10'000, .linger = std::chrono::milliseconds(200)});
  auto key = w.new_run_key();
  auto now = storage::Clock::now();
  w.push(storage::RunStarted{key, "j", now, now, 100});
  for (int i = 0; i < 100; ++i)
    w.push(storage::ResultRow{key, "j", "http://h/" + std::to_string(i), "", 200, 1, 1, now});
  w.push(storage::RunFinished{key, now, "ok", 100, 0});
  w.close();
  CHECK(w.commit_failures() == 1);
  CHECK(w.dropped() == 0);
  CHECK(test::scalar(db, "SELECT last_value FROM kills") == "2");  // the retry went through
  CHECK(count(db, "runs") == 1);
  CHECK(test::scalar(db,
                     "SELECT count(*) FROM results r JOIN runs u ON u.id = r.run_id "
                     "WHERE u.status = 'ok'") == "100");
}

#endif

TEST_CASE("url_state rows are streamed at start and read one by one", "[writer][url_state]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "u");
  constexpr int kRows = 25'000;  // more than PostgreSQL's page of 10,000
  {
    storage::Writer writer(db.locator);
    for (int i = 0; i < kRows; ++i)
      writer.push(storage::UrlState{i % 2 ? "a" : "b", "http://h/" + std::to_string(i),
                                    i % 3 ? "" : "\"e" + std::to_string(i) + "\"", "",
                                    "00000000000000ff", "{\"n\":" + std::to_string(i) + "}", ""});
    writer.close();
  }
  std::set<std::pair<std::string, std::string>> seen;
  int with_etag = 0;
  storage::for_each_url_state(db.locator, [&](const storage::UrlState& row) {
    seen.insert({row.job, row.url});
    with_etag += !row.etag.empty();
    CHECK(row.data.empty());  // not read at start
  });
  CHECK(seen.size() == kRows);
  CHECK(with_etag == (kRows + 2) / 3);
  storage::UrlStateReader reader(db.locator);
  auto row = reader.read("b", "http://h/300");
  REQUIRE(row);
  CHECK(row->etag == "\"e300\"");
  CHECK(row->data == "{\"n\":300}");
  CHECK_FALSE(reader.read("a", "http://h/300"));  // 300 is job b's
}
