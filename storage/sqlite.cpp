#include "storage/sqlite.h"

namespace scraperd::storage::sqlite {

void check(Db& db, int rc, std::string_view what) {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
  std::string message = db.path() + ": " + sqlite3_errmsg(db.get());
  if (what == "prepare") message += " (preparing a statement)";  // a bug, not the environment
  throw Error(message, rc);
}

Db::Db(const std::string& path, Mode mode) : path_(path) {
  int flags =
      mode == Mode::kReadOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error("cannot open database " + path + ": " + message, rc);
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, 5000);
}

Db::~Db() {
  sqlite3_close_v2(db_);
}

void Db::exec(const char* sql) {
  char* message = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &message);
  if (rc != SQLITE_OK) {
    std::string text = message ? message : sqlite3_errstr(rc);
    sqlite3_free(message);
    throw Error(path_ + ": " + text, rc);
  }
}

std::int64_t Db::user_version() {
  Stmt s(*this, "PRAGMA user_version");
  s.step();
  return s.int64(0);
}

Stmt::Stmt(Db& db, const char* sql) : db_(db) {
  check(db_, sqlite3_prepare_v3(db.get(), sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr),
        "prepare");
}

Stmt::~Stmt() {
  sqlite3_finalize(stmt_);
}

void Stmt::bind(int index, std::string_view text) {
  check(
      db_,
      sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT),
      "bind");
}
void Stmt::bind(int index, std::int64_t value) {
  check(db_, sqlite3_bind_int64(stmt_, index, value), "bind");
}
void Stmt::bind(int index, double value) {
  check(db_, sqlite3_bind_double(stmt_, index, value), "bind");
}
void Stmt::bind_null(int index) {
  check(db_, sqlite3_bind_null(stmt_, index), "bind");
}

bool Stmt::step() {
  int rc = sqlite3_step(stmt_);
  check(db_, rc, "step");
  return rc == SQLITE_ROW;
}

void Stmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string Stmt::text(int col) const {
  auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
}

}  // namespace scraperd::storage::sqlite
