// Storage tests over either backend. The same test sources build twice: storage_tests
// (SQLite files in temp dirs) and storage_pg_tests (SCRAPERD_TEST_POSTGRES: databases in a
// private PostgreSQL, tests/support/pg_cluster.h; ctest label `postgres`). A test names a
// database with fresh_db() and reads it back with scalar(), independent of the code under test.
#pragma once

#include <sqlite3.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "storage/store.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"
#ifdef SCRAPERD_TEST_POSTGRES
#include "tests/support/pg_cluster.h"
#endif

namespace scraperd::test {

#ifdef SCRAPERD_TEST_POSTGRES
constexpr bool kPostgres = true;
// ctest's SKIP_RETURN_CODE for storage_pg_tests.
constexpr int kSkipped = 77;

inline PgCluster& pg_cluster() {
  if (!PgCluster::available()) {
    std::fprintf(stderr, "SKIPPED: %s\n", PgCluster::why_absent().c_str());
    std::exit(kSkipped);
  }
  return shared_pg_cluster();
}
#else
constexpr bool kPostgres = false;
#endif

struct TestDb {
  std::string locator;  // what the code under test is given: a path or a URL
  std::string name;     // PostgreSQL: the database's name
};

// A database that does not exist yet (SQLite) or exists and is empty (PostgreSQL).
inline TestDb fresh_db(const TempDir& dir, const std::string& name) {
#ifdef SCRAPERD_TEST_POSTGRES
  (void)dir;
  static int n = 0;
  std::string db = "t" + std::to_string(++n) + "_" + name;
  for (char& c : db)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return {pg_cluster().create_database(db), db};
#else
  return {dir.file(name + ".db"), ""};
#endif
}

// The first column of the first row of `query`, as text ("" for NULL / no row).
inline std::string scalar(const TestDb& db, const std::string& query) {
#ifdef SCRAPERD_TEST_POSTGRES
  return pg_cluster().psql(query, db.name);
#else
  return sql1(db.locator, query);
#endif
}

// Runs `statement` (e.g. a DELETE), as an operator would, beside the code under test.
inline void execute(const TestDb& db, const std::string& statement) {
#ifdef SCRAPERD_TEST_POSTGRES
  pg_cluster().psql(statement, db.name);
#else
  sqlite3* handle = nullptr;
  sqlite3_open(db.locator.c_str(), &handle);
  sqlite3_busy_timeout(handle, 5000);
  char* err = nullptr;
  int rc = sqlite3_exec(handle, statement.c_str(), nullptr, nullptr, &err);
  std::string message = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(handle);
  if (rc != SQLITE_OK) throw std::runtime_error(message + ": " + statement);
#endif
}

// Every value for_each_field_value gives, as "field url at_ms value" lines.
inline std::vector<std::string> field_values(const std::string& path, const storage::Filter& f) {
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

}  // namespace scraperd::test
