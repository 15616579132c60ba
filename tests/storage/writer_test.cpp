#include "storage/writer.h"

#include <sqlite3.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

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
