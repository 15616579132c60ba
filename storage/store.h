// The SQLite database: what a run leaves behind, and the queries people run on it.
//
// Every fetch ends as exactly one row: a ResultRow when a page came back, an ErrorRow (with a
// kind) when it did not; every job run is a row in `runs`. Rows are written by
// storage::Writer (writer.h). The query functions here open the database read-only, so they
// work while the daemon writes. Schema and columns: docs/schema.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace scraperd::storage {

using Clock = std::chrono::system_clock;

struct ResultRow {
  std::int64_t run_id = 0;  // the run's key (RunStarted); 0: no run
  std::string job;
  std::string url;
  std::string final_url;  // after redirects; empty when the same as url
  int status = 0;         // HTTP status of the final response
  std::int64_t bytes = 0;
  double elapsed_ms = 0;
  Clock::time_point fetched_at;
  std::string content_hash{};     // of the extracted fields, or of the body; empty: NULL
  std::optional<bool> changed{};  // against the previous fetch of the URL; nullopt: NULL
  std::string data{};             // the extracted fields as one JSON object; empty: NULL
};

struct ErrorRow {
  std::int64_t run_id = 0;  // the run's key (RunStarted); 0: no run
  std::string job;
  std::string url;
  int attempt = 1;
  std::string kind;           // dns, connect, tls, timeout, http, too_large, read, ...
  std::optional<int> status;  // the HTTP status, for kind "http"
  std::string message;
  double elapsed_ms = 0;
  Clock::time_point fetched_at;
};

// A job run began. `key` comes from Writer::new_run_key(): a handle in this process only.
// The database gives the run its id (runs.id, AUTOINCREMENT) when the row is committed, and
// every row that names the key (`run_id` of ResultRow, ErrorRow; RunFinished) is stored with
// that id. So ids never come from memory, and two writers never hand out the same one.
struct RunStarted {
  std::int64_t key = 0;
  std::string job;
  Clock::time_point due_at;
  Clock::time_point started_at;
  int urls = 0;
};

// A job run ended: status is ok (no failure), partial (some failed), failed (all failed),
// skipped (the previous run was still going) or cancelled.
struct RunFinished {
  std::int64_t key = 0;  // RunStarted's
  Clock::time_point finished_at;
  std::string status;
  int ok = 0;
  int failed = 0;
  int urls = 0;  // URLs of the run in the end, followed links included; 0 keeps RunStarted's
};

// A run's counters while it goes on (the engine sends them about once a second, when they
// moved), so `runs` shows its progress. Only a run still `running` is updated.
struct RunProgress {
  std::int64_t key = 0;  // RunStarted's
  int ok = 0;
  int failed = 0;
  int urls = 0;
};

// The daemon runs this job (inserted, or updated when it already exists).
struct JobSeen {
  std::string name;
  std::string schedule;  // as people read it: "every 15m", "cron '0 3 * * *' Europe/Paris"
  int urls = 0;
  Clock::time_point seen_at;
};

// A due point of a job passed while its previous run was still going: recorded, not run.
struct RunSkipped {
  std::string job;
  Clock::time_point due_at;
};

// When the job is next due, so a restarted daemon resumes the schedule.
struct JobDue {
  std::string name;
  Clock::time_point next_due;
};

// What the next fetch of a URL needs to know of the last one: the validators its last full
// response carried (sent back as If-None-Match / If-Modified-Since), the hash of the last
// content seen (change detection) and its fields. Empty strings are stored as NULL.
struct UrlState {
  std::string job;
  std::string url;
  std::string etag;
  std::string last_modified;
  std::string content_hash;
  std::string data;   // the extracted fields of that content (JSON): change notifications, and
                      // the data of a 304's result row
  std::string links;  // follow jobs: the links found in that content (a JSON array of URLs),
                      // followed again when the page answers 304
};

using Row = std::variant<ResultRow, ErrorRow, RunStarted, RunFinished, RunSkipped, JobSeen, JobDue,
                         UrlState, RunProgress>;

// A database that cannot be opened, migrated or queried. `code` is SQLite's result code, or
// 0x10000 for PostgreSQL's errors.
class Error : public std::runtime_error {
 public:
  Error(const std::string& what, int code) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// The schema version this build writes (SQLite: PRAGMA user_version; PostgreSQL: the table
// schema_version).
std::int64_t schema_version();

// Every function here that takes a `path` takes a locator: a SQLite file's path, or a
// PostgreSQL connection URL (postgresql://user@host/db, libpq's syntax; the password from
// PGPASSFILE / passfile=, never in the job file). True for the latter.
bool is_postgres(const std::string& locator);
// `locator` as logs and status may show it: a URL's password (from a ${VAR}) as ***.
std::string redacted(const std::string& locator);

// Creates the database if needed and migrates it forward to `version` (default: the current
// one), each step in one transaction. Throws Error if the file cannot be opened or was
// written by a newer build.
void migrate(const std::string& path, std::int64_t version = -1);

// The persisted next due time of every job that has one. Throws Error.
std::map<std::string, Clock::time_point> next_due_times(const std::string& path);

// For each job whose latest finished runs failed (every URL failed), how many in a row, so a
// restarted daemon knows a failing streak is going on. Throws Error.
std::map<std::string, int> failing_streaks(const std::string& path);

// Calls `each` with every stored url_state row, one at a time (a daemon's start: nothing is
// held but the row at hand), `data` left empty. Throws Error.
void for_each_url_state(const std::string& path, const std::function<void(const UrlState&)>& each);

// Reads single url_state rows (a fetch that needs its URL's validators, fields or links):
// one read-only connection, opened at the first read and kept. Thread-safe: one read at a time.
class UrlStateReader {
 public:
  explicit UrlStateReader(std::string path);
  ~UrlStateReader();
  UrlStateReader(const UrlStateReader&) = delete;
  UrlStateReader& operator=(const UrlStateReader&) = delete;

  // The row of (job, url), or nullopt when there is none or no database yet. Throws Error.
  std::optional<UrlState> read(const std::string& job, const std::string& url);

 private:
  struct Connection;
  std::string path_;
  std::mutex mu_;
  std::unique_ptr<Connection> connection_;  // GUARDED_BY(mu_)
};

// Query results: column names and typed cells, ready for any output format.
using Cell = std::variant<std::monostate, std::int64_t, double, std::string>;
struct Table {
  std::vector<std::string> columns;
  std::vector<std::vector<Cell>> rows;
};

struct Filter {
  std::string job;                         // empty: every job
  std::optional<Clock::time_point> since;  // only rows from then on
  std::string kind;                        // errors only: one kind
  bool changed_only = false;               // results only: rows whose content changed
  bool latest_only = false;                // results only: the latest row of each (job, URL)
  bool with_previous = false;  // results only: a column previous_data, the data of the URL's
                               // result before each row
  int limit = 20;
  std::vector<std::string> jobs;  // query_jobs only: these jobs (empty: every job)
};

// Newest first. Each throws Error when there is no database at `path` or it cannot be read.
Table query_results(const std::string& path, const Filter& filter);
Table query_errors(const std::string& path, const Filter& filter);
Table query_runs(const std::string& path, const Filter& filter);
// Every job a daemon has registered (filter.job: that one; filter.jobs: those), by name, at
// most filter.limit: state (paused, running: a run not finished, never run, or active),
// schedule, last run and its status, success ratio over 24 h, next due time, paused since.
// filter.since does not apply.
Table query_jobs(const std::string& path, const Filter& filter);

// Every registered job with what its state depends on, by name: job, state (as query_jobs
// has it), last_status. Cheaper than query_jobs (no 24 h ratio): to filter before paging.
Table query_job_states(const std::string& path);

// The latest `n` finished runs (not skipped) of each of `jobs`, newest first within a job:
// job, started_at, finished_at, status, ok, failed. One query for them all. Throws Error.
Table query_recent_runs(const std::string& path, const std::vector<std::string>& jobs, int n);

// The time of the latest result whose content changed, of each of `jobs` that has one: job,
// last_change. Throws Error.
Table query_last_changes(const std::string& path, const std::vector<std::string>& jobs);

// One numeric value of a job's extracted field (a JSON number in results.data), kept in the
// table field_values as the result is written. `field` and `url` live until the next call.
struct FieldValue {
  std::string_view field;
  std::string_view url;
  std::int64_t at_ms = 0;  // fetched_at, in milliseconds since the epoch (UTC)
  Cell value;              // an integer or a double
};

// Calls `each` with the numeric values of `filter.job`'s fields, the newest filter.limit of
// them from filter.since on, ordered by field, url, time: the dashboard's charts, streamed
// from the database without a table of every value. Throws Error.
void for_each_field_value(const std::string& path, const Filter& filter,
                          const std::function<void(const FieldValue&)>& each);

// Errors of the last 24 hours grouped by job, kind and host (of the URL), most first:
// job, kind, host, last_1h, last_24h, last_at, and the url and message of the newest one;
// filter.job: that job's only; at most filter.limit groups. Throws Error.
Table query_error_groups(const std::string& path, const Filter& filter);

// Runs not finished yet (a daemon's runs going on, or left by one that was killed), oldest
// first: id, job, started_at, urls, done (ok + failed), ok, failed. Throws Error.
Table query_unfinished_runs(const std::string& path);

// Pauses (`paused` true) or resumes `job`: a row in the `paused` table, or none; opens the
// database for writing, creating and migrating it when needed. False when the job already was
// in that state. Throws Error.
bool set_paused(const std::string& path, const std::string& job, bool paused, Clock::time_point at);
// Every paused job, and since when. Throws Error.
std::map<std::string, Clock::time_point> paused_jobs(const std::string& path);
// True when a daemon has registered `job` in the database at `path`. Throws Error.
bool job_known(const std::string& path, const std::string& job);

// Copies the whole history of the SQLite database `from` (migrated to this build's version)
// into the PostgreSQL database `to` (created and migrated when needed; it must hold no jobs,
// runs, results or errors yet), in one transaction: ids, times and run references kept, new
// ids continuing after them. Returns the rows copied, per table. Throws Error.
std::vector<std::pair<std::string, std::int64_t>> copy_history(const std::string& from,
                                                               const std::string& to);

// Timestamps are stored as UTC text "YYYY-MM-DD HH:MM:SS.SSS", the form SQLite's own date
// functions produce, so `fetched_at > datetime('now', '-1 hour')` compares correctly.
std::string format_time(Clock::time_point t);
Clock::time_point parse_time(const std::string& text);

}  // namespace scraperd::storage
