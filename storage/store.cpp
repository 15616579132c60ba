#include "storage/store.h"

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>

#include "storage/sqlite.h"

namespace scraperd::storage {
namespace {

// Migration N (1-based) brings the schema from version N-1 to N. Append only: never edit a
// migration that has shipped.
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE results (
  id          INTEGER PRIMARY KEY,
  job         TEXT    NOT NULL,
  url         TEXT    NOT NULL,
  status      INTEGER NOT NULL,
  bytes       INTEGER NOT NULL,
  elapsed_ms  REAL    NOT NULL,
  fetched_at  TEXT    NOT NULL
);
CREATE INDEX results_job_fetched_at ON results (job, fetched_at);
CREATE INDEX results_fetched_at ON results (fetched_at);

CREATE TABLE errors (
  id          INTEGER PRIMARY KEY,
  job         TEXT    NOT NULL,
  url         TEXT    NOT NULL,
  kind        TEXT    NOT NULL,
  status      INTEGER,
  message     TEXT    NOT NULL,
  elapsed_ms  REAL    NOT NULL,
  fetched_at  TEXT    NOT NULL
);
CREATE INDEX errors_job_fetched_at ON errors (job, fetched_at);
CREATE INDEX errors_fetched_at ON errors (fetched_at);
)sql",
};

constexpr std::int64_t kVersion = std::size(kMigrations);

sqlite::Db open_existing(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw Error("no database at " + path + " (has scraperd run with this --db?)", SQLITE_CANTOPEN);
  return sqlite::Db(path, sqlite::Db::Mode::kReadOnly);
}

}  // namespace

std::int64_t schema_version() {
  return kVersion;
}

void migrate(const std::string& path) {
  sqlite::Db db(path, sqlite::Db::Mode::kReadWrite);
  db.exec("PRAGMA journal_mode=WAL");
  for (;;) {
    db.exec("BEGIN IMMEDIATE");
    std::int64_t version = db.user_version();
    if (version >= kVersion) {
      db.exec("COMMIT");
      if (version > kVersion)
        throw Error(path + " has schema version " + std::to_string(version) +
                        ", newer than this scraperd understands (" + std::to_string(kVersion) +
                        "): upgrade scraperd",
                    SQLITE_ERROR);
      return;
    }
    try {
      db.exec(kMigrations[version]);
      db.exec(("PRAGMA user_version=" + std::to_string(version + 1)).c_str());
      db.exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      throw;
    }
  }
}

std::vector<ResultRow> recent_results(const std::string& path, int limit) {
  auto db = open_existing(path);
  sqlite::Stmt s(db,
                 "SELECT job, url, status, bytes, elapsed_ms, fetched_at FROM results "
                 "ORDER BY fetched_at DESC, id DESC LIMIT ?");
  s.bind(1, std::int64_t{limit});
  std::vector<ResultRow> rows;
  while (s.step()) {
    rows.push_back({s.text(0), s.text(1), static_cast<int>(s.int64(2)), s.int64(3), s.real(4),
                    parse_time(s.text(5))});
  }
  return rows;
}

std::vector<ErrorRow> recent_errors(const std::string& path, int limit) {
  auto db = open_existing(path);
  sqlite::Stmt s(db,
                 "SELECT job, url, kind, status, message, elapsed_ms, fetched_at FROM errors "
                 "ORDER BY fetched_at DESC, id DESC LIMIT ?");
  s.bind(1, std::int64_t{limit});
  std::vector<ErrorRow> rows;
  while (s.step()) {
    ErrorRow row{
        s.text(0), s.text(1), s.text(2), std::nullopt, s.text(4), s.real(5), parse_time(s.text(6))};
    if (!s.is_null(3)) row.status = static_cast<int>(s.int64(3));
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string format_time(Clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%03d", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms % 1000));
  return buf;
}

Clock::time_point parse_time(const std::string& text) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(text.c_str(), "%d-%d-%d %d:%d:%d.%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
    return {};
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return Clock::from_time_t(timegm(&tm)) + std::chrono::milliseconds(ms);
}

}  // namespace scraperd::storage
