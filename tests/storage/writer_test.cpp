#include "storage/writer.h"

#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;

namespace {

std::int64_t count(const std::string& path, const char* table) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  std::string sql = std::string("SELECT count(*) FROM ") + table;
  REQUIRE(sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  auto n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

storage::Row result(int i) {
  return storage::ResultRow{
      0, "job", "http://h/" + std::to_string(i), "", 200, i, 1.0, storage::Clock::now()};
}

}  // namespace

TEST_CASE("every row pushed by many producers through a tiny queue is committed", "[writer]") {
  test::TempDir dir;
  auto path = dir.file("w.db");
  constexpr int kThreads = 4, kPerThread = 2'500;
  {
    storage::Writer writer(path, {.capacity = 8, .max_batch = 64});
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
  CHECK(count(path, "results") + count(path, "errors") == kThreads * kPerThread);
  CHECK(count(path, "errors") == kThreads * kPerThread / 2);
}

TEST_CASE("try_push refuses when the queue is full and keeps the row", "[writer]") {
  test::TempDir dir;
  auto path = dir.file("w.db");
  storage::Writer writer(path, {.capacity = 1, .max_batch = 1});
  // Hold the write lock from another connection so the writer cannot drain its queue.
  sqlite3* blocker = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &blocker) == SQLITE_OK);
  REQUIRE(sqlite3_exec(blocker, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);

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

  sqlite3_exec(blocker, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(blocker);
  writer.push(std::move(refused));
  writer.close();
  CHECK(count(path, "results") == 3);
}

TEST_CASE("an unopenable database is an error at construction", "[writer]") {
  CHECK_THROWS_AS(storage::Writer("/nonexistent-dir/x.db"), storage::Error);
}

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

TEST_CASE("retention prunes old rows in small batches and keeps new ones", "[writer]") {
  test::TempDir dir;
  auto path = dir.file("keep.db");
  auto now = storage::Clock::now();
  auto old = now - std::chrono::hours(48);
  {
    storage::Writer w(path);
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
  storage::Writer w(path,
                    {.keep = std::chrono::hours(24), .prune_every = std::chrono::milliseconds(10)});
  for (int i = 0; i < 500 && test::sql1(path, "SELECT count(*) FROM runs") != "1"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  w.close();
  CHECK(test::sql1(path, "SELECT group_concat(url) FROM results") == "http://new/");
  CHECK(test::sql1(path, "SELECT count(*) FROM errors") == "0");
  CHECK(test::sql1(path, "SELECT count(*) FROM runs") == "1");
  CHECK(test::sql1(path, "PRAGMA freelist_count") == "0");  // pages given back
}

TEST_CASE("readers read while the writer commits: no errors, counts never go back", "[writer]") {
  test::TempDir dir;
  auto path = dir.file("rw.db");
  storage::Writer writer(path, {.capacity = 1'000, .max_batch = 100});
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::string failure;
  std::thread reader([&] {
    std::int64_t last = 0;
    storage::Filter all;
    all.limit = 1'000'000;
    while (!done) {
      try {
        auto t = storage::query_results(path, all);
        auto n = static_cast<std::int64_t>(t.rows.size());
        if (n < last) failure = "row count went backwards";
        last = n;
        ++reads;
      } catch (const std::exception& e) {
        failure = e.what();  // SQLITE_BUSY or a torn read would land here
      }
    }
  });
  for (int i = 0; i < 20'000; ++i) writer.push(result(i));
  writer.close();
  done = true;
  reader.join();
  CHECK(failure.empty());
  CHECK(reads.load() > 5);
  CHECK(test::sql1(path, "SELECT count(*) FROM results") == "20000");
}
