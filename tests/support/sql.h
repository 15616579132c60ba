// Test support: read a SQLite file the way a person would, with SQL, independent of the code
// under test. Every value comes back as text ("" for NULL).
#pragma once

#include <sqlite3.h>

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace scraperd::test {

using SqlRow = std::map<std::string, std::string>;

inline std::vector<SqlRow> sql(const std::string& path, const std::string& query) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + path);
  }
  sqlite3_busy_timeout(db, 5000);
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, query.c_str(), -1, &s, nullptr) != SQLITE_OK) {
    std::string msg = sqlite3_errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error(msg + ": " + query);
  }
  std::vector<SqlRow> rows;
  while (sqlite3_step(s) == SQLITE_ROW) {
    SqlRow row;
    for (int c = 0; c < sqlite3_column_count(s); ++c) {
      auto text = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
      row[sqlite3_column_name(s, c)] = text ? text : "";
    }
    rows.push_back(std::move(row));
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return rows;
}

inline std::string sql1(const std::string& path, const std::string& query) {
  auto rows = sql(path, query);
  if (rows.empty() || rows[0].empty()) throw std::runtime_error("no value: " + query);
  return rows[0].begin()->second;
}

}  // namespace scraperd::test
