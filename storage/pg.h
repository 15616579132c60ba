// Private to storage/: thin RAII over libpq (PostgreSQL's C client). Errors throw
// storage::Error (code kPgError). A locator that starts with postgresql:// or postgres:// names
// a PostgreSQL database (is_postgres, store.h); anything else is a SQLite file.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/store.h"

namespace scraperd::storage::pg {

// storage::Error's code for PostgreSQL failures (SQLite's codes are below 256).
constexpr int kPgError = 0x10000;

// A query's result; PQclear on destruction.
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// A parameter: text, or NULL (std::nullopt). Everything is sent in text form.
using Param = std::optional<std::string>;

// One connection, session time zone UTC. Not thread-safe: one thread uses it at a time.
class Conn {
 public:
  explicit Conn(const std::string& url);  // throws Error when it cannot connect
  ~Conn();
  Conn(Conn&& other) noexcept
      : conn_(std::exchange(other.conn_, nullptr)), name_(std::move(other.name_)) {}
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Runs `sql` (one or more statements, no parameters); throws on error.
  void exec(const std::string& sql);
  // One statement with $1, $2, ... parameters; the result (rows or none); throws on error.
  Result query(const std::string& sql, const std::vector<Param>& params = {});
  // COPY `into` FROM STDIN (text format) with `data`, lines already escaped (copy_text).
  void copy(const std::string& into, const std::string& data);
  // BEGIN / COMMIT; ROLLBACK never throws.
  void rollback() noexcept;

  PGconn* get() { return conn_; }
  // The URL without its password, for messages.
  const std::string& name() const { return name_; }

 private:
  [[noreturn]] void fail(const std::string& what, const PGresult* r = nullptr);
  PGconn* conn_ = nullptr;
  std::string name_;
};

// `url` with any password hidden ("postgresql://u:***@h/db"), for logs and messages.
std::string redact(const std::string& url);

// Appends `v` to a COPY text-format line, escaping backslash, tab, newline, CR.
void copy_text(std::string& line, std::string_view v);

// Timestamps: sent as format_time's text with "+00" (UTC); read back from timestamptz's text
// form (ISO, UTC session) into a time point.
std::string time_param(Clock::time_point t);
Clock::time_point parse_timestamptz(const char* text);

}  // namespace scraperd::storage::pg
