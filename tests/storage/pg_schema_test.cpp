// The PostgreSQL schema against SQLite's: same tables, views and columns; migrations
// idempotent, safe when several daemons start at once, and a newer schema refused.
#include <catch2/catch.hpp>
#include <set>
#include <thread>
#include <vector>

#include "storage/pg_store.h"
#include "storage/store.h"
#include "tests/storage/test_db.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;

namespace {

// "table.column" of every table and view of the schema.
std::set<std::string> sqlite_columns(const std::string& path) {
  std::set<std::string> out;
  for (auto& row : test::sql(path,
                             "SELECT m.name || '.' || p.name AS c FROM sqlite_master m, "
                             "pragma_table_info(m.name) p WHERE m.type IN ('table', 'view') "
                             "AND m.name <> 'sqlite_sequence'"))
    out.insert(row["c"]);
  return out;
}

std::set<std::string> lines(const std::string& text) {
  std::set<std::string> out;
  std::string line;
  for (char c : text) {
    if (c == '\n') {
      out.insert(line);
      line.clear();
    } else {
      line += c;
    }
  }
  if (!line.empty()) out.insert(line);
  return out;
}

}  // namespace

TEST_CASE("the PostgreSQL schema has SQLite's tables, views and columns", "[storage][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "schema");
  storage::migrate(db.locator);
  storage::migrate(db.locator);  // idempotent
  CHECK(test::scalar(db, "SELECT version FROM schema_version") ==
        std::to_string(storage::schema_version()));
  CHECK(test::scalar(db, "SELECT count(*) FROM schema_version") == "1");

  auto sqlite_path = dir.file("ref.db");
  storage::migrate(sqlite_path);
  auto pg = lines(test::pg_cluster().psql(
      "SELECT table_name || '.' || column_name FROM information_schema.columns "
      "WHERE table_schema = 'public' AND table_name NOT IN ('schema_version', 'writer_commits', "
      "'nodes', 'leases')",
      db.name));
  CHECK(pg == sqlite_columns(sqlite_path));

  // Timestamps are timestamptz, ids bigint identities (docs/schema.md).
  CHECK(
      test::scalar(db,
                   "SELECT string_agg(DISTINCT data_type, ',') FROM information_schema.columns "
                   "WHERE table_schema = 'public' AND column_name IN ('fetched_at', 'started_at', "
                   "'due_at', 'finished_at', 'first_seen', 'last_seen', 'next_due', 'since')") ==
      "timestamp with time zone");
  CHECK(test::scalar(db,
                     "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM "
                     "information_schema.columns WHERE table_schema = 'public' AND "
                     "column_name = 'id' AND is_identity = 'YES' AND data_type = 'bigint'") ==
        "errors,results,runs");
}

TEST_CASE("daemons migrating one PostgreSQL database at once: one migrates, none fails",
          "[storage][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "race");
  std::vector<std::thread> daemons;
  std::vector<std::string> failures(4);
  for (int i = 0; i < 4; ++i)
    daemons.emplace_back([&, i] {
      try {
        storage::migrate(db.locator);
      } catch (const std::exception& e) {
        failures[static_cast<size_t>(i)] = e.what();
      }
    });
  for (auto& d : daemons) d.join();
  for (const auto& f : failures) CHECK(f.empty());
  CHECK(test::scalar(db, "SELECT version FROM schema_version") ==
        std::to_string(storage::schema_version()));
}

TEST_CASE("a PostgreSQL database from a newer scraperd is refused, not damaged",
          "[storage][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "newer");
  storage::migrate(db.locator);
  test::pg_cluster().psql("UPDATE schema_version SET version = 999", db.name);
  CHECK_THROWS_WITH(storage::migrate(db.locator), Catch::Contains("newer than this scraperd"));
  CHECK(test::scalar(db, "SELECT version FROM schema_version") == "999");
}

TEST_CASE("an unreachable PostgreSQL is an error naming it without its password",
          "[storage][postgres]") {
  try {
    storage::migrate("postgresql://u:secret@/db?host=/nonexistent-dir");
    FAIL("no error");
  } catch (const storage::Error& e) {
    std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("postgresql://u:***@/db"));
    CHECK_THAT(what, !Catch::Contains("secret"));
  }
}

TEST_CASE("an unmigrated PostgreSQL database is named as such, not a raw SQL error",
          "[storage][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "unmigrated");
  CHECK(storage::pg::version(db.locator) == 0);
  CHECK_THROWS_WITH(storage::next_due_times(db.locator),
                    Catch::Contains("start the daemon once to migrate it"));
}

// The "separate migration step" setup: the tables are migrated by their owner; the daemon's
// role may only read and write them. A start with nothing to migrate runs no DDL.
TEST_CASE("a role with only read and write rights starts on a migrated database",
          "[storage][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "dml only");
  storage::migrate(db.locator);
  auto& pg = test::pg_cluster();
  pg.psql(
      "CREATE ROLE dml_only LOGIN; "
      "REVOKE CREATE ON SCHEMA public FROM PUBLIC; "
      "GRANT USAGE ON SCHEMA public TO dml_only; "
      "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO dml_only; "
      "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO dml_only",
      db.name);
  std::string as_dml = db.locator;  // postgresql://scraperd@/...: the same as dml_only
  as_dml.replace(as_dml.find("://") + 3, as_dml.find('@') - as_dml.find("://") - 3, "dml_only");
  CHECK_NOTHROW(storage::migrate(as_dml));
  CHECK(storage::pg::version(as_dml) == storage::schema_version());
  CHECK_NOTHROW(storage::next_due_times(as_dml));
}
