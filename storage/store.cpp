#include "storage/store.h"

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <tuple>
#include <variant>

#include "storage/pg.h"
#include "storage/pg_store.h"
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
    // Version 6: the dashboard at scale. Every numeric value of results.data (a JSON object's
    // numbers) in a table of its own, ordered for the job page's charts (job, field, URL,
    // time) and kept by triggers as results are written and deleted, so the charts read no
    // JSON; the running runs and the changed results in partial indexes of their own; runs'
    // index by job and start time covers their status.
    R"sql(
CREATE TABLE field_values (
  job        TEXT    NOT NULL,
  field      TEXT    NOT NULL,
  url        TEXT    NOT NULL,
  at_ms      INTEGER NOT NULL,  -- results.fetched_at, milliseconds since the epoch (UTC)
  result_id  INTEGER NOT NULL,  -- results.id
  value      NOT NULL,          -- an integer or a real, as the JSON number was
  PRIMARY KEY (job, field, url, at_ms, result_id)
) WITHOUT ROWID;
CREATE INDEX field_values_job_at ON field_values (job, at_ms, result_id, field);
CREATE INDEX field_values_result_id ON field_values (result_id);
CREATE TRIGGER results_field_values AFTER INSERT ON results
  WHEN new.data IS NOT NULL AND json_valid(new.data)
BEGIN
  INSERT OR IGNORE INTO field_values (job, field, url, at_ms, result_id, value)
    SELECT new.job, j.key, new.url,
           unixepoch(new.fetched_at) * 1000 + CAST(substr(new.fetched_at, 21, 3) AS INTEGER),
           new.id, j.value
    FROM json_each(new.data) j
    WHERE json_type(new.data) = 'object' AND j.type IN ('integer', 'real');
END;
CREATE TRIGGER results_field_values_delete AFTER DELETE ON results
BEGIN
  DELETE FROM field_values WHERE result_id = old.id;
END;
INSERT OR IGNORE INTO field_values (job, field, url, at_ms, result_id, value)
  SELECT r.job, j.key, r.url,
         unixepoch(r.fetched_at) * 1000 + CAST(substr(r.fetched_at, 21, 3) AS INTEGER),
         r.id, j.value
  FROM (SELECT * FROM results WHERE data IS NOT NULL AND json_valid(data)
        AND json_type(data) = 'object') r, json_each(r.data) j
  WHERE j.type IN ('integer', 'real');
CREATE INDEX runs_running ON runs (job) WHERE status = 'running';
-- A job's last run and whether it ever ran, read from the index alone (one seek a job).
DROP INDEX runs_job_started_at;
CREATE INDEX runs_job_started_at_status ON runs (job, started_at, status);
CREATE INDEX results_changed ON results (job, fetched_at) WHERE changed = 1;
)sql",
    // 7: PostgreSQL's cluster tables (nodes, leases, storage/cluster.h); nothing on SQLite,
    // where one daemon runs alone.
    "SELECT 1;",
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

bool is_postgres(const std::string& locator) {
  return locator.rfind("postgresql://", 0) == 0 || locator.rfind("postgres://", 0) == 0;
}

std::string redacted(const std::string& locator) {
  return is_postgres(locator) ? pg::redact(locator) : locator;
}

void migrate(const std::string& path, std::int64_t target) {
  if (is_postgres(path)) return pg::migrate(path, target);
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
  if (is_postgres(path)) return pg::run_query(path, sql, params);
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
  std::string select =
      "SELECT fetched_at, job, status, bytes, round(elapsed_ms) AS ms, url, final_url, "
      "changed, data, run_id";
  if (f.with_previous)  // the results of a URL, by id (results_job_url): one step back
    select +=
        ", (SELECT p.data FROM results p WHERE p.job = results.job AND p.url = results.url "
        "AND p.id < results.id ORDER BY p.id DESC LIMIT 1) AS previous_data";
  select += " FROM results";
  if (!f.latest_only) return newest(path, select, "fetched_at", f, false, true);
  // The newest row of each (job, URL): its highest id. For one job, its URLs one after the
  // other, each a seek in results_job_url (a skip scan: not every row of the job), and the
  // rows read by id (the job's condition is in the list: results_job_fetched_at would walk
  // every row of the job).
  std::vector<Cell> params;
  Filter others = f;
  others.job.clear();
  std::string conditions = where(others, "fetched_at", false, true, params);
  std::string latest;
  if (!f.job.empty()) {
    latest =
        " id IN (WITH RECURSIVE u(url) AS (SELECT min(url) FROM results WHERE job = ? "
        "UNION ALL SELECT (SELECT min(url) FROM results WHERE job = ? AND url > u.url) FROM u "
        "WHERE u.url IS NOT NULL) SELECT (SELECT max(id) FROM results WHERE job = ? AND "
        "url = u.url) FROM u WHERE u.url IS NOT NULL)";
    params.insert(params.end(), 3, Cell(f.job));
  } else {
    latest = " id IN (SELECT max(id) FROM results GROUP BY job, url)";
  }
  std::string sql = select + (conditions.empty() ? " WHERE" : conditions + " AND") + latest +
                    " ORDER BY fetched_at DESC, id DESC LIMIT ?";
  params.emplace_back(std::int64_t{f.limit});
  return run_query(path, sql, params);
}

Table query_errors(const std::string& path, const Filter& f) {
  return newest(path,
                "SELECT fetched_at, job, kind, status, attempt, url, message, run_id FROM errors",
                "fetched_at", f, true, false);
}

Table query_runs(const std::string& path, const Filter& f) {
  const char* lag =
      is_postgres(path)
          ? "round(extract(epoch FROM started_at - due_at) * 1000)::float8 AS lag_ms, "
          : "round((julianday(started_at) - julianday(due_at)) * 86400000) AS lag_ms, ";
  return newest(path,
                std::string("SELECT id, job, status, due_at, started_at, finished_at, ") + lag +
                    "urls, ok, failed FROM runs",
                "started_at", f, false, false);
}

std::map<std::string, Clock::time_point> next_due_times(const std::string& path) {
  if (is_postgres(path)) return pg::next_due_times(path);
  std::map<std::string, Clock::time_point> due;
  auto db = open_existing(path);
  sqlite::Stmt s(db, "SELECT name, next_due FROM jobs WHERE next_due IS NOT NULL");
  while (s.step()) due[s.text(0)] = parse_time(s.text(1));
  return due;
}

void for_each_url_state(const std::string& path, const std::function<void(const UrlState&)>& each) {
  if (is_postgres(path)) return pg::for_each_url_state(path, each);
  auto db = open_existing(path);
  sqlite::Stmt s(db,
                 "SELECT job, url, coalesce(etag, ''), coalesce(last_modified, ''), "
                 "coalesce(content_hash, ''), coalesce(links, '') FROM url_state");
  UrlState row;
  while (s.step()) {
    row = UrlState{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), {}, s.text(5)};
    each(row);
  }
}

// A SQLite file's read-only connection and its statement, or a PostgreSQL connection.
struct UrlStateReader::Connection {
  struct Sqlite {
    explicit Sqlite(const std::string& path)
        : db(path, sqlite::Db::Mode::kReadOnly),
          select(db,
                 "SELECT coalesce(etag, ''), coalesce(last_modified, ''), "
                 "coalesce(content_hash, ''), coalesce(data, ''), coalesce(links, '') "
                 "FROM url_state WHERE job = ? AND url = ?") {}
    sqlite::Db db;
    sqlite::Stmt select;
  };
  std::optional<Sqlite> sqlite;
  std::optional<pg::Conn> postgres;
};

UrlStateReader::UrlStateReader(std::string path) : path_(std::move(path)) {}
UrlStateReader::~UrlStateReader() = default;

std::optional<UrlState> UrlStateReader::read(const std::string& job, const std::string& url) {
  std::lock_guard lock(mu_);
  try {
    if (!connection_) {
      auto c = std::make_unique<Connection>();
      if (is_postgres(path_)) {
        c->postgres.emplace(path_);
      } else {
        if (!std::filesystem::exists(path_)) return std::nullopt;
        c->sqlite.emplace(path_);
      }
      connection_ = std::move(c);
    }
    if (connection_->postgres) return pg::read_url_state(*connection_->postgres, job, url);
    sqlite::Stmt& s = connection_->sqlite->select;
    s.bind(1, job);
    s.bind(2, url);
    std::optional<UrlState> row;
    if (s.step()) row = UrlState{job, url, s.text(0), s.text(1), s.text(2), s.text(3), s.text(4)};
    s.reset();
    return row;
  } catch (...) {
    connection_.reset();  // the next read opens a new one (a restarted PostgreSQL, say)
    throw;
  }
}

std::map<std::string, int> failing_streaks(const std::string& path) {
  if (is_postgres(path)) return pg::failing_streaks(path);
  std::map<std::string, int> out;
  auto db = open_existing(path);
  sqlite::Stmt s(db,
                 "SELECT job, count(*) FROM runs r WHERE status = 'failed' AND started_at > "
                 "coalesce((SELECT max(started_at) FROM runs o WHERE o.job = r.job AND "
                 "o.status IN ('ok', 'partial')), '') GROUP BY job");
  while (s.step()) out[s.text(0)] = static_cast<int>(s.int64(1));
  return out;
}

namespace {

// A job's state as query_jobs and query_job_states have it (`j` is the jobs table, `p` its
// row of paused).
constexpr const char* kJobState =
    "CASE WHEN p.job IS NOT NULL THEN 'paused' "
    " WHEN EXISTS (SELECT 1 FROM runs r WHERE r.job = j.name AND r.status = 'running') "
    " THEN 'running' "
    " WHEN NOT EXISTS (SELECT 1 FROM runs r WHERE r.job = j.name AND r.status <> 'skipped') "
    " THEN 'never run' ELSE 'active' END AS state";

// "(?, ?, ...)" for `names`, appended to `params`.
std::string in_list(const std::vector<std::string>& names, std::vector<Cell>& params) {
  std::string sql = "(";
  for (const auto& name : names) {
    sql += sql.size() > 1 ? ", ?" : "?";
    params.emplace_back(name);
  }
  return sql + ")";
}

}  // namespace

Table query_jobs(const std::string& path, const Filter& f) {
  std::vector<Cell> params;
  std::string where;
  if (!f.job.empty()) {
    where = "WHERE j.name = ? ";
    params.emplace_back(f.job);
  }
  if (!f.jobs.empty())
    where += (where.empty() ? "WHERE " : "AND ") + std::string("j.name IN ") +
             in_list(f.jobs, params) + " ";
  params.emplace_back(std::int64_t{f.limit});
  return run_query(
      path,
      std::string("SELECT j.name AS job, ") + kJobState +
          ", j.schedule, j.urls, last.started_at AS last_run, "
          "last.status AS last_status, "
          "(SELECT round(100.0 * sum(ok) / nullif(sum(ok + failed), 0), 1) FROM runs "
          "r WHERE r.job = j.name AND r.started_at >= " +
          (is_postgres(path) ? "now() - interval '1 day'" : "datetime('now', '-1 day')") +
          ") "
          "AS ok_pct_24h, "
          "j.next_due, p.since AS paused_since FROM jobs j "
          "LEFT JOIN paused p ON p.job = j.name "
          "LEFT JOIN runs last ON last.id = (SELECT id FROM runs r WHERE r.job = "
          "j.name ORDER BY started_at DESC, id DESC LIMIT 1) " +
          where + "ORDER BY j.name LIMIT ?",
      params);
}

Table query_job_states(const std::string& path) {
  return run_query(path,
                   std::string("SELECT j.name AS job, ") + kJobState +
                       ", (SELECT status FROM runs r WHERE r.job = j.name "
                       "ORDER BY started_at DESC, id DESC LIMIT 1) AS last_status "
                       "FROM jobs j LEFT JOIN paused p ON p.job = j.name ORDER BY j.name",
                   {});
}

Table query_recent_runs(const std::string& path, const std::vector<std::string>& jobs, int n) {
  std::vector<Cell> params;
  std::string in = in_list(jobs, params);
  params.emplace_back(std::int64_t{n});
  return run_query(path,
                   "SELECT job, started_at, finished_at, status, ok, failed FROM ("
                   "SELECT job, started_at, finished_at, status, ok, failed, id, row_number() "
                   "OVER (PARTITION BY job ORDER BY started_at DESC, id DESC) AS n FROM runs "
                   "WHERE job IN " +
                       in +
                       " AND finished_at IS NOT NULL AND status <> 'skipped') recent WHERE n <= ? "
                       "ORDER BY job, started_at DESC, id DESC",
                   params);
}

Table query_last_changes(const std::string& path, const std::vector<std::string>& jobs) {
  std::vector<Cell> params;
  std::string in = in_list(jobs, params);
  return run_query(path,
                   "SELECT job, max(fetched_at) AS last_change FROM results "
                   "WHERE changed = 1 AND job IN " +
                       in + " GROUP BY job ORDER BY job",
                   params);
}

void for_each_field_value(const std::string& path, const Filter& f,
                          const std::function<void(const FieldValue&)>& each) {
  if (is_postgres(path)) return pg::for_each_field_value(path, f, each);
  auto db = open_existing(path);
  if (db.user_version() < kVersion)
    throw Error(path + " has schema version " + std::to_string(db.user_version()) +
                    "; start the daemon once to migrate it",
                SQLITE_ERROR);
  const std::int64_t since =
      f.since ? std::chrono::duration_cast<std::chrono::milliseconds>(f.since->time_since_epoch())
                    .count()
              : std::numeric_limits<std::int64_t>::min();
  // The newest value beyond the newest filter.limit: the values start after it (none: there
  // are no more than filter.limit, all are read).
  std::optional<std::tuple<std::int64_t, std::int64_t, std::string>> before;
  {
    sqlite::Stmt s(db,
                   "SELECT at_ms, result_id, field FROM field_values WHERE job = ? AND at_ms >= ? "
                   "ORDER BY at_ms DESC, result_id DESC, field DESC LIMIT 1 OFFSET ?");
    s.bind(1, f.job);
    s.bind(2, since);
    s.bind(3, std::int64_t{f.limit});
    if (s.step()) before.emplace(s.int64(0), s.int64(1), s.text(2));
  }
  std::string sql = "SELECT field, url, at_ms, value FROM field_values WHERE job = ? ";
  sql += before ? "AND (at_ms, result_id, field) > (?, ?, ?) " : "AND at_ms >= ? ";
  sql += "ORDER BY field, url, at_ms, result_id";
  sqlite::Stmt s(db, sql.c_str());
  s.bind(1, f.job);
  if (before) {
    s.bind(2, std::get<0>(*before));
    s.bind(3, std::get<1>(*before));
    s.bind(4, std::get<2>(*before));
  } else {
    s.bind(2, since);
  }
  FieldValue v;
  while (s.step()) {
    auto text = [&](int col) {
      const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(s.raw(), col));
      return std::string_view(p ? p : "",
                              static_cast<std::size_t>(sqlite3_column_bytes(s.raw(), col)));
    };
    v.field = text(0);
    v.url = text(1);
    v.at_ms = s.int64(2);
    if (sqlite3_column_type(s.raw(), 3) == SQLITE_INTEGER)
      v.value = s.int64(3);
    else
      v.value = s.real(3);
    each(v);
  }
}

Table query_error_groups(const std::string& path, const Filter& f) {
  std::vector<Cell> params;
  std::string where;
  if (!f.job.empty()) {
    where = "AND job = ? ";
    params.emplace_back(f.job);
  }
  params.emplace_back(std::int64_t{f.limit});
  if (is_postgres(path))  // the url and message of the newest error from ordered aggregates
    return run_query(
        path,
        "SELECT job, kind, host, count(*) FILTER (WHERE fetched_at >= now() - interval '1 hour') "
        "AS last_1h, count(*) AS last_24h, max(fetched_at) AS last_at, "
        "(array_agg(url ORDER BY fetched_at DESC, id DESC))[1] AS url, "
        "(array_agg(message ORDER BY fetched_at DESC, id DESC))[1] AS message FROM ("
        "SELECT id, job, kind, url, message, fetched_at, split_part(CASE WHEN strpos(url, '://') "
        "> 0 THEN substr(url, strpos(url, '://') + 3) ELSE url END, '/', 1) AS host FROM errors "
        "WHERE fetched_at >= now() - interval '1 day' " +
            where + ") e GROUP BY job, kind, host ORDER BY last_24h DESC, job, kind, host LIMIT ?",
        params);
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
  if (is_postgres(path))
    return run_query(path,
                     "SELECT id, job, started_at, urls, ok + failed AS done, ok, failed FROM runs "
                     "WHERE status = 'running' ORDER BY started_at, id",
                     {});
  return run_query(path,
                   // The partial index of the running runs, not runs_started_at's order over
                   // every run.
                   "SELECT id, job, started_at, urls, ok + failed AS done, ok, failed FROM runs "
                   "INDEXED BY runs_running WHERE status = 'running' ORDER BY started_at, id",
                   {});
}

bool set_paused(const std::string& path, const std::string& job, bool paused,
                Clock::time_point at) {
  if (is_postgres(path)) return pg::set_paused(path, job, paused, at);
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
  if (is_postgres(path)) return pg::paused_jobs(path);
  std::map<std::string, Clock::time_point> out;
  auto db = open_existing(path);
  if (db.user_version() < 5) return out;  // no table yet: nothing was paused
  sqlite::Stmt s(db, "SELECT job, since FROM paused");
  while (s.step()) out[s.text(0)] = parse_time(s.text(1));
  return out;
}

bool job_known(const std::string& path, const std::string& job) {
  if (is_postgres(path)) return pg::job_known(path, job);
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
