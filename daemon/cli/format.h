// Printing query results (storage::Table) for people and for programs.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "config/config.h"
#include "storage/store.h"

namespace scraperd::daemon {

enum class Format {
  kTable,   // aligned columns, cut to `width` when it is not 0
  kJson,    // one JSON array of objects
  kNdjson,  // one JSON object per line
  kCsv,     // RFC 4180, with a header line
};

std::optional<Format> parse_format(std::string_view name);

// The rows as a JSON array of objects, typed (numbers are numbers, NULL is null, the `data`
// column is nested JSON). What --format json prints and the HTTP API returns.
nlohmann::json to_json(const storage::Table& table);

void print(std::ostream& out, const storage::Table& table, Format format, std::size_t width);

// Query arguments shared by the CLI and the HTTP API.

// "1h", "30m" back from now, or an absolute UTC "YYYY-MM-DD[ HH:MM[:SS]]" (a 'T' works too).
std::optional<storage::Clock::time_point> parse_since(const std::string& text);

// The error kinds of the `errors` table, and whether `kind` is one.
bool is_error_kind(std::string_view kind);
std::string error_kinds();  // "dns, connect, ..." for messages

// The rows of storage::query_jobs completed with the job file `config` (null: not known):
// jobs of the file the database does not know yet come in as "never run", jobs the file no
// longer has become "removed", jobs the file pauses (`paused: true`) "paused". Sorted by name,
// at most `limit` rows.
void merge_job_file(storage::Table& jobs, const config::Config* config, int limit);

// The terminal's width in columns, or 0 when stdout is not a terminal (nothing is cut).
std::size_t terminal_width();

}  // namespace scraperd::daemon
