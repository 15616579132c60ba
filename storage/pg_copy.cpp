// copy_history (store.h): a SQLite history into an empty PostgreSQL database, one COPY per
// 10,000 rows of each table, all in one transaction.
#include "storage/pg.h"
#include "storage/sqlite.h"
#include "storage/store.h"

namespace scraperd::storage {
namespace {

struct TableCopy {
  const char* name;
  const char* columns;      // in both schemas
  std::uint32_t time_cols;  // bit i: column i is a timestamp (SQLite text, timestamptz here)
};

// Parents first (runs before results and errors). field_values fills itself (its trigger).
constexpr TableCopy kTables[] = {
    {"jobs", "name, schedule, urls, first_seen, last_seen, next_due", 0b111000},
    {"paused", "job, since", 0b10},
    {"runs", "id, job, due_at, started_at, finished_at, status, urls, ok, failed", 0b11100},
    {"results",
     "id, job, url, status, bytes, elapsed_ms, fetched_at, run_id, final_url, content_hash, "
     "changed, data",
     0b1000000},
    {"errors", "id, job, url, kind, status, message, elapsed_ms, fetched_at, run_id, attempt",
     0b10000000},
    {"url_state", "job, url, etag, last_modified, content_hash, data, links", 0},
};

}  // namespace

std::vector<std::pair<std::string, std::int64_t>> copy_history(const std::string& from,
                                                               const std::string& to) {
  if (is_postgres(from) || !is_postgres(to))
    throw Error("copy_history: from a SQLite file to a postgresql:// URL", pg::kPgError);
  // The source as it is: read-only, at this build's schema version.
  auto source = [&] {
    Filter none;
    none.limit = 0;
    query_runs(from, none);  // throws when there is no database or it is not migrated
    return sqlite::Db(from, sqlite::Db::Mode::kReadOnly);
  }();
  migrate(to);
  pg::Conn target(to);
  std::vector<std::pair<std::string, std::int64_t>> copied;
  target.exec("BEGIN");
  try {
    auto present = target.query(
        "SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM runs) + "
        "(SELECT count(*) FROM results) + (SELECT count(*) FROM errors)");
    if (std::string(PQgetvalue(present.get(), 0, 0)) != "0")
      throw Error(target.name() + " already holds a history: copy into an empty database",
                  pg::kPgError);
    for (const TableCopy& t : kTables) {
      sqlite::Stmt s(source, (std::string("SELECT ") + t.columns + " FROM " + t.name).c_str());
      int n = sqlite3_column_count(s.raw());
      std::string data;
      std::int64_t rows = 0;
      auto flush = [&] {
        if (!data.empty()) target.copy(std::string(t.name) + " (" + t.columns + ")", data);
        data.clear();
      };
      while (s.step()) {
        for (int c = 0; c < n; ++c) {
          if (c) data += '\t';
          if (s.is_null(c)) {
            data += "\\N";
            continue;
          }
          pg::copy_text(data, s.text(c));
          if (t.time_cols & (1u << c)) data += "+00";
        }
        data += '\n';
        if (++rows % 10'000 == 0) flush();
      }
      flush();
      copied.emplace_back(t.name, rows);
    }
    // New ids continue after the copied ones, and after SQLite's AUTOINCREMENT high-water mark
    // of runs (ids of deleted runs are never handed out again).
    std::int64_t runs_seq = 0;
    {
      sqlite::Stmt s(source,
                     "SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'runs'");
      if (s.step()) runs_seq = s.int64(0);
    }
    for (const char* table : {"runs", "results", "errors"})
      target.query(std::string("SELECT setval(pg_get_serial_sequence('") + table +
                       "', 'id'), greatest(coalesce(max(id), 0), $1::bigint) + 1, false) FROM " +
                       table,
                   {std::to_string(table == std::string("runs") ? runs_seq : 0)});
    target.exec("COMMIT");
  } catch (...) {
    target.rollback();
    throw;
  }
  return copied;
}

}  // namespace scraperd::storage
