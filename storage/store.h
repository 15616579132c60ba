// The SQLite database: what a fetch leaves behind, and the queries people run on it.
//
// Every fetch ends as exactly one row: a ResultRow when a page came back, an ErrorRow (with a
// kind) when it did not. Rows are written by storage::Writer (writer.h); everything here
// reads. Schema and columns: docs/schema.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace scraperd::storage {

using Clock = std::chrono::system_clock;

struct ResultRow {
  std::string job;
  std::string url;
  int status = 0;  // HTTP status of the final response
  std::int64_t bytes = 0;
  double elapsed_ms = 0;
  Clock::time_point fetched_at;
};

struct ErrorRow {
  std::string job;
  std::string url;
  std::string kind;           // dns, connect, tls, timeout, http, too_large, redirect, read, ...
  std::optional<int> status;  // the HTTP status, for kind "http"
  std::string message;
  double elapsed_ms = 0;
  Clock::time_point fetched_at;
};

using Row = std::variant<ResultRow, ErrorRow>;

// A database that cannot be opened, migrated or queried. `code` is SQLite's result code.
class Error : public std::runtime_error {
 public:
  Error(const std::string& what, int code) : std::runtime_error(what), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

// The schema version this build writes (PRAGMA user_version).
std::int64_t schema_version();

// Creates the database if needed and migrates it forward to schema_version(), each step in
// one transaction. Throws Error if the file cannot be opened or was written by a newer build.
void migrate(const std::string& path);

// The newest rows first, at most `limit`. Opens the database read-only, so it works while the
// daemon writes. Throws Error when there is no database at `path`.
std::vector<ResultRow> recent_results(const std::string& path, int limit);
std::vector<ErrorRow> recent_errors(const std::string& path, int limit);

// Timestamps are stored as UTC text "YYYY-MM-DD HH:MM:SS.SSS", the form SQLite's own date
// functions produce, so `fetched_at > datetime('now', '-1 hour')` compares correctly.
std::string format_time(Clock::time_point t);
Clock::time_point parse_time(const std::string& text);

}  // namespace scraperd::storage
