// Printing query results (storage::Table) for people and for programs.
#pragma once

#include <optional>
#include <ostream>
#include <string_view>

#include "storage/store.h"

namespace scraperd::daemon {

enum class Format {
  kTable,   // aligned columns, cut to `width` when it is not 0
  kJson,    // one JSON array of objects
  kNdjson,  // one JSON object per line
  kCsv,     // RFC 4180, with a header line
};

std::optional<Format> parse_format(std::string_view name);

void print(std::ostream& out, const storage::Table& table, Format format, std::size_t width);

// The terminal's width in columns, or 0 when stdout is not a terminal (nothing is cut).
std::size_t terminal_width();

}  // namespace scraperd::daemon
