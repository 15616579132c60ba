#include "storage/pg.h"

#include <cstdio>
#include <ctime>

namespace scraperd::storage::pg {

std::string redact(const std::string& url) {
  // postgresql://user:password@host/...: the password is between the first ':' after the
  // scheme and the '@'.
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto at = url.find('@', scheme + 3);
  auto slash = url.find('/', scheme + 3);
  if (at == std::string::npos || (slash != std::string::npos && slash < at)) return url;
  auto colon = url.find(':', scheme + 3);
  if (colon == std::string::npos || colon > at) return url;
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}

Conn::Conn(const std::string& url) : name_(redact(url)) {
  // The URL's own settings come last, so they win over these defaults.
  const char* keys[] = {"connect_timeout", "application_name", "dbname", nullptr};
  const char* values[] = {"10", "scraperd", url.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, values, 1);
  if (!conn_) throw Error("cannot connect to " + name_ + ": out of memory", kPgError);
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn_);
    PQfinish(conn_);
    conn_ = nullptr;
    while (!message.empty() && message.back() == '\n') message.pop_back();
    throw Error("cannot connect to " + name_ + ": " + message, kPgError);
  }
  exec("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET client_min_messages = warning");
}

Conn::~Conn() {
  if (conn_) PQfinish(conn_);
}

void Conn::fail(const std::string& what, const PGresult* r) {
  std::string message = r ? PQresultErrorMessage(r) : PQerrorMessage(conn_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  throw Error(name_ + ": " + message + " (" + what + ")", kPgError);
}

void Conn::exec(const std::string& sql) {
  Result r(PQexec(conn_, sql.c_str()));
  auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(sql.substr(0, 60), r.get());
}

Result Conn::query(const std::string& sql, const std::vector<Param>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  Result r(PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0));
  auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail(sql.substr(0, 60), r.get());
  return r;
}

void Conn::copy(const std::string& into, const std::string& data) {
  std::string sql = "COPY " + into + " FROM STDIN";
  Result r(PQexec(conn_, sql.c_str()));
  if (!r || PQresultStatus(r.get()) != PGRES_COPY_IN) fail(sql, r.get());
  if (PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) != 1 ||
      PQputCopyEnd(conn_, nullptr) != 1)
    fail(sql);
  Result end(PQgetResult(conn_));
  bool ok = end && PQresultStatus(end.get()) == PGRES_COMMAND_OK;
  std::string message = ok ? "" : (end ? PQresultErrorMessage(end.get()) : PQerrorMessage(conn_));
  while (Result more{PQgetResult(conn_)}) {
  }
  if (!ok) {
    while (!message.empty() && message.back() == '\n') message.pop_back();
    throw Error(name_ + ": " + message + " (" + sql + ")", kPgError);
  }
}

void Conn::rollback() noexcept {
  if (!conn_ || PQstatus(conn_) != CONNECTION_OK) return;
  PQclear(PQexec(conn_, "ROLLBACK"));
}

void copy_text(std::string& line, std::string_view v) {
  for (char c : v) {
    switch (c) {
      case '\\': line += "\\\\"; break;
      case '\t': line += "\\t"; break;
      case '\n': line += "\\n"; break;
      case '\r': line += "\\r"; break;
      default: line += c;
    }
  }
}

std::string time_param(Clock::time_point t) {
  return format_time(t) + "+00";
}

Clock::time_point parse_timestamptz(const char* text) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text, "%d-%d-%d %d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) < 6)
    return {};
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  auto t = Clock::from_time_t(timegm(&tm));
  const char* p = text + consumed;
  if (*p == '.') {  // up to microseconds, trailing zeros left out
    long micros = 0;
    int digits = 0;
    for (++p; *p >= '0' && *p <= '9'; ++p, ++digits)
      if (digits < 6) micros = micros * 10 + (*p - '0');
    for (; digits < 6; ++digits) micros *= 10;
    t += std::chrono::microseconds(micros);
  }
  return std::chrono::time_point_cast<Clock::duration>(t);
}

}  // namespace scraperd::storage::pg
