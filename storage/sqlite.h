// Private to storage/: thin RAII over the SQLite C API. Errors throw storage::Error.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/store.h"

namespace scraperd::storage::sqlite {

// One connection. Not thread-safe: one thread uses it at a time.
class Db {
 public:
  enum class Mode { kReadOnly, kReadWrite };
  Db(const std::string& path, Mode mode);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  void exec(const char* sql);
  std::int64_t user_version();
  sqlite3* get() { return db_; }
  const std::string& path() const { return path_; }

 private:
  sqlite3* db_ = nullptr;
  std::string path_;
};

// A prepared statement, reset and reused (bind → step → reset).
class Stmt {
 public:
  Stmt(Db& db, const char* sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  void bind(int index, std::string_view text);
  void bind(int index, std::int64_t value);
  void bind(int index, double value);
  void bind_null(int index);
  bool step();  // true while a row is available; throws on error
  void reset();

  // Binds `args` to parameters 1, 2, ... (std::nullopt / an empty optional binds NULL),
  // steps once, resets. For INSERT / UPDATE / DELETE.
  template <typename... Args>
  void run(const Args&... args) {
    int at = 0;
    (bind_any(++at, args), ...);
    step();
    reset();
  }

  std::int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string text(int col) const;
  sqlite3_stmt* raw() { return stmt_; }

 private:
  void bind_any(int at, std::string_view v) { bind(at, v); }
  void bind_any(int at, const std::string& v) { bind(at, std::string_view(v)); }
  void bind_any(int at, const char* v) { bind(at, std::string_view(v)); }
  void bind_any(int at, std::int64_t v) { bind(at, v); }
  void bind_any(int at, int v) { bind(at, std::int64_t{v}); }
  void bind_any(int at, double v) { bind(at, v); }
  void bind_any(int at, std::nullopt_t) { bind_null(at); }
  template <typename T>
  void bind_any(int at, const std::optional<T>& v) {
    if (v)
      bind_any(at, *v);
    else
      bind_null(at);
  }

  Db& db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// Throws storage::Error with the connection's message when rc is not SQLITE_OK/ROW/DONE.
void check(Db& db, int rc, std::string_view what);

}  // namespace scraperd::storage::sqlite
