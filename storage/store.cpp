#include "storage/store.h"

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <string>
#include <variant>

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
    R"sql(
CREATE TABLE jobs (
  name        TEXT PRIMARY KEY,
  schedule    TEXT NOT NULL,
  urls        INTEGER NOT NULL,
  first_seen  TEXT NOT NULL,
  last_seen   TEXT NOT NULL,
  next_due    TEXT
);

CREATE TABLE runs (
  id           INTEGER PRIMARY KEY,
  job          TEXT    NOT NULL,
  due_at       TEXT    NOT NULL,
  started_at   TEXT    NOT NULL,
  finished_at  TEXT,
  status       TEXT    NOT NULL,
  urls         INTEGER NOT NULL DEFAULT 0,
  ok           INTEGER NOT NULL DEFAULT 0,
  failed       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_job_started_at ON runs (job, started_at);
CREATE INDEX runs_started_at ON runs (started_at);

ALTER TABLE results ADD COLUMN run_id INTEGER REFERENCES runs (id);
ALTER TABLE results ADD COLUMN final_url TEXT;
ALTER TABLE results ADD COLUMN content_hash TEXT;
ALTER TABLE results ADD COLUMN changed INTEGER;
ALTER TABLE results ADD COLUMN data TEXT;
CREATE INDEX results_job_url ON results (job, url);
CREATE INDEX results_run_id ON results (run_id);

ALTER TABLE errors ADD COLUMN run_id INTEGER REFERENCES runs (id);
ALTER TABLE errors ADD COLUMN attempt INTEGER NOT NULL DEFAULT 1;
CREATE INDEX errors_run_id ON errors (run_id);

CREATE TABLE url_state (
  job            TEXT NOT NULL,
  url            TEXT NOT NULL,
  etag           TEXT,
  last_modified  TEXT,
  content_hash   TEXT,
  PRIMARY KEY (job, url)
) WITHOUT ROWID;

CREATE VIEW latest_results AS
  SELECT r.* FROM results r
  JOIN (SELECT max(id) AS id FROM results GROUP BY job, url) latest USING (id);

CREATE VIEW changes AS
  SELECT * FROM results WHERE changed = 1;
)sql",
    // Version 3: the fields of the last content seen, for change notifications.
    R"sql(
ALTER TABLE url_state ADD COLUMN data TEXT;
)sql",
    // Version 4: run ids come from the database and are never reused (AUTOINCREMENT), even
    // once retention has deleted the newest runs; url_state keeps a page's links. SQLite cannot add
    // AUTOINCREMENT to a table: the table is rebuilt (foreign keys are off in migrations, so
    // results and errors keep their run_id references to the same ids).
    R"sql(
CREATE TABLE runs_v4 (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  job          TEXT    NOT NULL,
  due_at       TEXT    NOT NULL,
  started_at   TEXT    NOT NULL,
  finished_at  TEXT,
  status       TEXT    NOT NULL,
  urls         INTEGER NOT NULL DEFAULT 0,
  ok           INTEGER NOT NULL DEFAULT 0,
  failed       INTEGER NOT NULL DEFAULT 0
);
INSERT INTO runs_v4 (id, job, due_at, started_at, finished_at, status, urls, ok, failed)
  SELECT id, job, due_at, started_at, finished_at, status, urls, ok, failed FROM runs;
DROP TABLE runs;
ALTER TABLE runs_v4 RENAME TO runs;
CREATE INDEX runs_job_started_at ON runs (job, started_at);
CREATE INDEX runs_started_at ON runs (started_at);
-- The links of the last full response of a follow job's page, followed again on a 304.
ALTER TABLE url_state ADD COLUMN links TEXT;
)sql",
    // Version 5: jobs paused by `scraperd pause` or the API, until resumed.
    R"sql(
CREATE TABLE paused (
  job    TEXT PRIMARY KEY,
  since  TEXT NOT NULL
) WITHOUT ROWID;
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

void migrate(const std::string& path, std::int64_t target) {
  if (target < 0 || target > kVersion) target = kVersion;
  sqlite::Db db(path, sqlite::Db::Mode::kReadWrite);
  if (db.user_version() == 0) {
    // Only possible before the first table exists: lets retention give pages back to the OS.
    db.exec("PRAGMA auto_vacuum=INCREMENTAL");
  }
  db.exec("PRAGMA journal_mode=WAL");
  for (;;) {
    db.exec("BEGIN IMMEDIATE");
    std::int64_t version = db.user_version();
    if (version >= target) {
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

namespace {

// Runs `sql` with positional text/integer parameters and returns every row.
Table run_query(const std::string& path, const std::string& sql, const std::vector<Cell>& params) {
  auto db = open_existing(path);
  if (db.user_version() < kVersion)
    throw Error(path + " has schema version " + std::to_string(db.user_version()) +
                    "; start the daemon once to migrate it",
                SQLITE_ERROR);
  sqlite::Stmt s(db, sql.c_str());
  for (size_t i = 0; i < params.size(); ++i) {
    int at = static_cast<int>(i + 1);
    if (auto* text = std::get_if<std::string>(&params[i]))
      s.bind(at, *text);
    else if (auto* n = std::get_if<std::int64_t>(&params[i]))
      s.bind(at, *n);
    else if (auto* d = std::get_if<double>(&params[i]))
      s.bind(at, *d);
    else
      s.bind_null(at);
  }
  Table table;
  int n = sqlite3_column_count(s.raw());
  for (int c = 0; c < n; ++c) table.columns.emplace_back(sqlite3_column_name(s.raw(), c));
  while (s.step()) {
    std::vector<Cell> row;
    row.reserve(static_cast<size_t>(n));
    for (int c = 0; c < n; ++c) {
      switch (sqlite3_column_type(s.raw(), c)) {
        case SQLITE_INTEGER: row.emplace_back(s.int64(c)); break;
        case SQLITE_FLOAT: row.emplace_back(s.real(c)); break;
        case SQLITE_NULL: row.emplace_back(std::monostate{}); break;
        default: row.emplace_back(s.text(c)); break;
      }
    }
    table.rows.push_back(std::move(row));
  }
  return table;
}

// " WHERE a AND b" from the filter's conditions that apply, with their parameters.
std::string where(const Filter& f, const char* time_column, bool kind, bool changed,
                  std::vector<Cell>& params) {
  std::vector<std::string> conditions;
  if (!f.job.empty()) {
    conditions.push_back("job = ?");
    params.emplace_back(f.job);
  }
  if (f.since) {
    conditions.push_back(std::string(time_column) + " >= ?");
    params.emplace_back(format_time(*f.since));
  }
  if (kind && !f.kind.empty()) {
    conditions.push_back("kind = ?");
    params.emplace_back(f.kind);
  }
  if (changed && f.changed_only) conditions.push_back("changed = 1");
  std::string sql;
  for (const auto& c : conditions) sql += (sql.empty() ? " WHERE " : " AND ") + c;
  return sql;
}

}  // namespace

namespace {

// `select` (a SELECT ... FROM table) filtered by `f`, newest first, at most f.limit rows.
Table newest(const std::string& path, const std::string& select, const char* time_column,
             const Filter& f, bool by_kind, bool by_change) {
  std::vector<Cell> params;
  std::string sql = select + where(f, time_column, by_kind, by_change, params) + " ORDER BY " +
                    time_column + " DESC, id DESC LIMIT ?";
  params.emplace_back(std::int64_t{f.limit});
  return run_query(path, sql, params);
}

}  // namespace

Table query_results(const std::string& path, const Filter& f) {
  return newest(path,
                "SELECT fetched_at, job, status, bytes, round(elapsed_ms) AS ms, url, final_url, "
                "changed, data, run_id FROM results",
                "fetched_at", f, false, true);
}

Table query_errors(const std::string& path, const Filter& f) {
  return newest(path,
                "SELECT fetched_at, job, kind, status, attempt, url, message, run_id FROM errors",
                "fetched_at", f, true, false);
}

Table query_runs(const std::string& path, const Filter& f) {
  return newest(path,
                "SELECT id, job, status, due_at, started_at, finished_at, "
                "round((julianday(started_at) - julianday(due_at)) * 86400000) AS lag_ms, urls, "
                "ok, failed FROM runs",
                "started_at", f, false, false);
}

std::map<std::string, Clock::time_point> next_due_times(const std::string& path) {
  std::map<std::string, Clock::time_point> due;
  auto db = open_existing(path);
  sqlite::Stmt s(db, "SELECT name, next_due FROM jobs WHERE next_due IS NOT NULL");
  while (s.step()) due[s.text(0)] = parse_time(s.text(1));
  return due;
}

std::map<std::pair<std::string, std::string>, UrlState> url_states(const std::string& path) {
  std::map<std::pair<std::string, std::string>, UrlState> out;
  auto db = open_existing(path);
  sqlite::Stmt s(db,
                 "SELECT job, url, coalesce(etag, ''), coalesce(last_modified, ''), "
                 "coalesce(content_hash, ''), coalesce(data, ''), coalesce(links, '') "
                 "FROM url_state");
  while (s.step())
    out[{s.text(0), s.text(1)}] =
        UrlState{{}, {}, s.text(2), s.text(3), s.text(4), s.text(5), s.text(6)};
  return out;
}

std::map<std::string, int> failing_streaks(const std::string& path) {
  std::map<std::string, int> out;
  auto db = open_existing(path);
  sqlite::Stmt s(db,
                 "SELECT job, count(*) FROM runs r WHERE status = 'failed' AND started_at > "
                 "coalesce((SELECT max(started_at) FROM runs o WHERE o.job = r.job AND "
                 "o.status IN ('ok', 'partial')), '') GROUP BY job");
  while (s.step()) out[s.text(0)] = static_cast<int>(s.int64(1));
  return out;
}

Table query_jobs(const std::string& path, const Filter& f) {
  std::vector<Cell> params;
  std::string where;
  if (!f.job.empty()) {
    where = "WHERE j.name = ? ";
    params.emplace_back(f.job);
  }
  params.emplace_back(std::int64_t{f.limit});
  return run_query(path,
                   "SELECT j.name AS job, "
                   "CASE WHEN p.job IS NOT NULL THEN 'paused' "
                   " WHEN EXISTS (SELECT 1 FROM runs r WHERE r.job = j.name "
                   "  AND r.status = 'running') THEN 'running' "
                   " WHEN NOT EXISTS (SELECT 1 FROM runs r WHERE r.job = j.name "
                   "  AND r.status <> 'skipped') THEN 'never run' ELSE 'active' END AS state, "
                   "j.schedule, j.urls, last.started_at AS last_run, "
                   "last.status AS last_status, "
                   "(SELECT round(100.0 * sum(ok) / nullif(sum(ok + failed), 0), 1) FROM runs r "
                   " WHERE r.job = j.name AND r.started_at >= datetime('now', '-1 day')) "
                   "AS ok_pct_24h, "
                   "j.next_due, p.since AS paused_since FROM jobs j "
                   "LEFT JOIN paused p ON p.job = j.name "
                   "LEFT JOIN runs last ON last.id = (SELECT id FROM runs r WHERE r.job = j.name "
                   " ORDER BY started_at DESC, id DESC LIMIT 1) " +
                       where + "ORDER BY j.name LIMIT ?",
                   params);
}

Table query_field_series(const std::string& path, const Filter& f) {
  std::vector<Cell> params{f.job};
  std::string since;
  if (f.since) {
    since = "AND r.fetched_at >= ? ";
    params.emplace_back(format_time(*f.since));
  }
  params.emplace_back(std::int64_t{f.limit});
  return run_query(path,
                   "SELECT field, url, fetched_at, value FROM (SELECT j.key AS field, r.url, "
                   "r.fetched_at, j.value, r.id FROM results r, json_each(r.data) j "
                   "WHERE r.job = ? AND r.data IS NOT NULL AND j.type IN ('integer', 'real') " +
                       since +
                       "ORDER BY r.fetched_at DESC, r.id DESC LIMIT ?) "
                       "ORDER BY field, url, fetched_at, id",
                   params);
}

Table query_error_groups(const std::string& path, const Filter& f) {
  std::vector<Cell> params;
  std::string where;
  if (!f.job.empty()) {
    where = "AND job = ? ";
    params.emplace_back(f.job);
  }
  params.emplace_back(std::int64_t{f.limit});
  // The host: what lies between "://" and the next "/" of the URL. With max(), SQLite takes
  // the bare columns (url, message) from the row of the newest error.
  return run_query(path,
                   "SELECT job, kind, CASE WHEN instr(rest, '/') > 0 "
                   " THEN substr(rest, 1, instr(rest, '/') - 1) ELSE rest END AS host, "
                   "sum(fetched_at >= strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 hour')) AS last_1h, "
                   "count(*) AS last_24h, max(fetched_at) AS last_at, url, message FROM ("
                   "SELECT job, kind, url, message, fetched_at, CASE WHEN instr(url, '://') > 0 "
                   " THEN substr(url, instr(url, '://') + 3) ELSE url END AS rest FROM errors "
                   "WHERE fetched_at >= strftime('%Y-%m-%d %H:%M:%f', 'now', '-1 day') " +
                       where +
                       ") GROUP BY job, kind, host ORDER BY last_24h DESC, job, kind, host "
                       "LIMIT ?",
                   params);
}

Table query_unfinished_runs(const std::string& path) {
  return run_query(path,
                   "SELECT id, job, started_at, urls, ok + failed AS done, ok, failed FROM runs "
                   "WHERE status = 'running' ORDER BY started_at, id",
                   {});
}

bool set_paused(const std::string& path, const std::string& job, bool paused,
                Clock::time_point at) {
  migrate(path);
  sqlite::Db db(path, sqlite::Db::Mode::kReadWrite);
  if (paused) {
    sqlite::Stmt s(db, "INSERT OR IGNORE INTO paused (job, since) VALUES (?, ?)");
    s.run(job, format_time(at));
  } else {
    sqlite::Stmt s(db, "DELETE FROM paused WHERE job = ?");
    s.run(job);
  }
  return sqlite3_changes(db.get()) > 0;
}

std::map<std::string, Clock::time_point> paused_jobs(const std::string& path) {
  std::map<std::string, Clock::time_point> out;
  auto db = open_existing(path);
  if (db.user_version() < 5) return out;  // no table yet: nothing was paused
  sqlite::Stmt s(db, "SELECT job, since FROM paused");
  while (s.step()) out[s.text(0)] = parse_time(s.text(1));
  return out;
}

bool job_known(const std::string& path, const std::string& job) {
  auto db = open_existing(path);
  sqlite::Stmt s(db, "SELECT 1 FROM jobs WHERE name = ?");
  s.bind(1, job);
  return s.step();
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
