// copy_history: a SQLite history copied into PostgreSQL reads back the same through every
// query function, and the copy goes on from there.
#include <sqlite3.h>

#include <catch2/catch.hpp>

#include "storage/store.h"
#include "storage/writer.h"
#include "tests/storage/test_db.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;

namespace {

// A table as text, one line per row, for comparison.
std::vector<std::string> lines(const storage::Table& t) {
  std::vector<std::string> out;
  std::string head;
  for (const auto& c : t.columns) head += c + "|";
  out.push_back(head);
  for (const auto& row : t.rows) {
    std::string line;
    for (const auto& c : row) {
      if (auto* s = std::get_if<std::string>(&c))
        line += *s;
      else if (auto* n = std::get_if<std::int64_t>(&c))
        line += std::to_string(*n) + "i";
      else if (auto* d = std::get_if<double>(&c))
        line += std::to_string(*d) + "d";
      else
        line += "NULL";
      line += "|";
    }
    out.push_back(line);
  }
  return out;
}

}  // namespace

TEST_CASE("a SQLite history copied to PostgreSQL reads back the same", "[storage][postgres]") {
  test::TempDir dir;
  auto sqlite_path = dir.file("history.db");
  auto now = storage::Clock::now();
  using std::chrono::minutes;
  {
    storage::Writer w(sqlite_path);
    w.push(storage::JobSeen{"shop", "every 1m", 2, now - minutes(30)});
    w.push(storage::JobSeen{"news", "cron '0 3 * * *' Europe/Paris", 1, now - minutes(30)});
    for (int i = 0; i < 3; ++i) {
      auto key = w.new_run_key();
      auto at = now - minutes(20 - i);
      w.push(storage::RunStarted{key, "shop", at - std::chrono::milliseconds(250), at, 2});
      w.push(storage::ResultRow{key, "shop", "http://shop/a", "http://shop/a?x", 200, 10, 1.25, at,
                                "h" + std::to_string(i), i > 0,
                                R"({"price": )" + std::to_string(10 + i) + R"(, "t": "a\tb"})"});
      w.push(
          storage::ErrorRow{key, "shop", "http://shop/b", 2, "http", 503, "line1\nline2", 3.5, at});
      w.push(storage::RunFinished{key, at + minutes(1), "partial", 1, 1});
    }
    w.push(storage::RunSkipped{"news", now - minutes(5)});
    w.push(storage::UrlState{"shop", "http://shop/a", "\"e\"", "", "h2", R"({"price": 12})", ""});
    w.push(storage::JobDue{"shop", now + minutes(1)});
  }
  storage::set_paused(sqlite_path, "news", true, now - minutes(1));
  {  // the skipped run: ids of deleted runs are not reused after the copy either
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(sqlite_path.c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "DELETE FROM runs WHERE id = 4", nullptr, nullptr, nullptr) ==
            SQLITE_OK);
    sqlite3_close(db);
  }

  auto pg = test::fresh_db(dir, "copy");
  auto copied = storage::copy_history(sqlite_path, pg.locator);
  CHECK(copied == std::vector<std::pair<std::string, std::int64_t>>{{"jobs", 2},
                                                                    {"paused", 1},
                                                                    {"runs", 3},
                                                                    {"results", 3},
                                                                    {"errors", 3},
                                                                    {"url_state", 1}});

  storage::Filter all;
  all.limit = 100;
  CHECK(lines(storage::query_results(sqlite_path, all)) ==
        lines(storage::query_results(pg.locator, all)));
  CHECK(lines(storage::query_errors(sqlite_path, all)) ==
        lines(storage::query_errors(pg.locator, all)));
  CHECK(lines(storage::query_runs(sqlite_path, all)) ==
        lines(storage::query_runs(pg.locator, all)));
  CHECK(lines(storage::query_job_states(sqlite_path)) ==
        lines(storage::query_job_states(pg.locator)));
  CHECK(storage::next_due_times(sqlite_path) == storage::next_due_times(pg.locator));
  CHECK(storage::paused_jobs(sqlite_path) == storage::paused_jobs(pg.locator));
  storage::UrlStateReader reader(pg.locator);
  auto state = reader.read("shop", "http://shop/a");
  REQUIRE(state);
  CHECK(state->etag == "\"e\"");
  CHECK(test::scalar(pg, "SELECT count(*) FROM field_values") == "3");

  // The copy goes on: a new run's id is past the deleted one (SQLite's AUTOINCREMENT).
  {
    storage::Writer w(pg.locator);
    w.push(storage::RunStarted{w.new_run_key(), "shop", now, now, 1});
  }
  CHECK(test::scalar(pg, "SELECT max(id) FROM runs") == "5");

  // Once only: a database with a history is refused, and left as it was.
  CHECK_THROWS_WITH(storage::copy_history(sqlite_path, pg.locator),
                    Catch::Contains("already holds a history"));
  CHECK(test::scalar(pg, "SELECT count(*) FROM runs") == "4");
}
