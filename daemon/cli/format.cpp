#include "daemon/cli/format.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>

#include <numeric>
#include <set>

#include "config/duration.h"
#include "daemon/schedule/schedule.h"

namespace scraperd::daemon {
namespace {

std::string text(const storage::Cell& cell) {
  if (std::holds_alternative<std::monostate>(cell)) return "-";
  if (auto* n = std::get_if<std::int64_t>(&cell)) return std::to_string(*n);
  if (auto* d = std::get_if<double>(&cell)) return fmt::format("{:g}", *d);
  return std::get<std::string>(cell);
}

// Display columns of UTF-8 text (code points; wide characters count as one).
std::size_t columns(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// The first `n` display columns of `s`, with "…" when something was cut.
std::string cut(const std::string& s, std::size_t n) {
  if (columns(s) <= n) return s;
  std::size_t seen = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((s[i] & 0xC0) != 0x80 && seen++ == n - 1) break;
  }
  return s.substr(0, i) + "…";
}

void print_table(std::ostream& out, const storage::Table& t, std::size_t width) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::size_t> w(t.columns.size());
  for (size_t c = 0; c < t.columns.size(); ++c) w[c] = columns(t.columns[c]);
  for (const auto& row : t.rows) {
    auto& line = cells.emplace_back();
    for (size_t c = 0; c < row.size(); ++c) {
      std::string s = text(row[c]);
      std::replace(s.begin(), s.end(), '\n', ' ');
      w[c] = std::max(w[c], columns(s));
      line.push_back(std::move(s));
    }
  }
  // Fit the terminal: narrow the widest column, one column at a time, down to 12.
  auto total = [&] {
    return std::accumulate(w.begin(), w.end(), std::size_t{0}) + 2 * (w.size() - 1);
  };
  while (width > 0 && !w.empty() && total() > width) {
    auto widest = std::max_element(w.begin(), w.end());
    if (*widest <= 12) break;
    --*widest;
  }
  auto line = [&](const std::vector<std::string>& row) {
    std::string s;
    for (size_t c = 0; c < row.size(); ++c) {
      std::string v = cut(row[c], w[c]);
      s += v;
      if (c + 1 < row.size()) s.append(w[c] - columns(v) + 2, ' ');
    }
    out << s << '\n';
  };
  std::vector<std::string> header;
  for (const auto& c : t.columns) {
    std::string h = c;
    std::transform(h.begin(), h.end(), h.begin(), ::toupper);
    header.push_back(h);
  }
  line(header);
  for (const auto& row : cells) line(row);
}

nlohmann::json object(const storage::Table& t, const std::vector<storage::Cell>& row) {
  nlohmann::json o = nlohmann::json::object();
  for (size_t c = 0; c < row.size(); ++c) {
    const auto& cell = row[c];
    if (std::holds_alternative<std::monostate>(cell))
      o[t.columns[c]] = nullptr;
    else if (auto* n = std::get_if<std::int64_t>(&cell))
      o[t.columns[c]] = *n;
    else if (auto* d = std::get_if<double>(&cell))
      o[t.columns[c]] = *d;
    else if (t.columns[c] == "data") {
      // Extracted fields are stored as JSON text: nest them as JSON, not as a string.
      auto parsed = nlohmann::json::parse(std::get<std::string>(cell), nullptr, false);
      o[t.columns[c]] =
          parsed.is_discarded() ? nlohmann::json(std::get<std::string>(cell)) : parsed;
    } else {
      o[t.columns[c]] = std::get<std::string>(cell);
    }
  }
  return o;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

}  // namespace

nlohmann::json to_json(const storage::Table& t) {
  nlohmann::json all = nlohmann::json::array();
  for (const auto& row : t.rows) all.push_back(object(t, row));
  return all;
}

std::optional<storage::Clock::time_point> parse_since(const std::string& text) {
  if (auto d = config::parse_duration(text)) return storage::Clock::now() - *d;
  int y, mo, d, h = 0, mi = 0, sec = 0;
  char sep = ' ', extra = 0;
  int n = std::sscanf(text.c_str(), "%4d-%2d-%2d%c%2d:%2d:%2d%c", &y, &mo, &d, &sep, &h, &mi, &sec,
                      &extra);
  bool shape = n == 3 || ((n == 6 || n == 7) && (sep == ' ' || sep == 'T'));
  if (!shape || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
    return std::nullopt;
  auto t = storage::parse_time(
      fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.000", y, mo, d, h, mi, sec));
  if (storage::format_time(t).substr(0, 10) != text.substr(0, 10)) return std::nullopt;  // 02-31
  return t;
}

namespace {
constexpr std::string_view kKinds[] = {"dns",    "connect",   "timeout", "tls",
                                       "http",   "too_large", "read",    "redirect_loop",
                                       "robots", "cancelled", "parse"};
}

bool is_error_kind(std::string_view kind) {
  return std::find(std::begin(kKinds), std::end(kKinds), kind) != std::end(kKinds);
}

std::string error_kinds() {
  std::string out;
  for (auto k : kKinds) out += (out.empty() ? "" : ", ") + std::string(k);
  return out;
}

std::optional<Format> parse_format(std::string_view name) {
  if (name == "table") return Format::kTable;
  if (name == "json") return Format::kJson;
  if (name == "ndjson") return Format::kNdjson;
  if (name == "csv") return Format::kCsv;
  return std::nullopt;
}

void print(std::ostream& out, const storage::Table& t, Format format, std::size_t width) {
  constexpr auto kDump = nlohmann::json::error_handler_t::replace;  // invalid UTF-8 → U+FFFD
  switch (format) {
    case Format::kTable: print_table(out, t, width); break;
    case Format::kJson: out << to_json(t).dump(2, ' ', false, kDump) << '\n'; break;
    case Format::kNdjson:
      for (const auto& row : t.rows) out << object(t, row).dump(-1, ' ', false, kDump) << '\n';
      break;
    case Format::kCsv: {
      for (size_t c = 0; c < t.columns.size(); ++c)
        out << (c ? "," : "") << csv_field(t.columns[c]);
      out << "\r\n";
      for (const auto& row : t.rows) {
        for (size_t c = 0; c < row.size(); ++c) {
          bool null = std::holds_alternative<std::monostate>(row[c]);
          out << (c ? "," : "") << (null ? "" : csv_field(text(row[c])));
        }
        out << "\r\n";
      }
      break;
    }
  }
}

void merge_job_file(storage::Table& t, const config::Config* config, int limit) {
  auto column = [&](std::string_view name) {
    return static_cast<std::size_t>(std::find(t.columns.begin(), t.columns.end(), name) -
                                    t.columns.begin());
  };
  const std::size_t job = column("job"), state = column("state"), schedule = column("schedule"),
                    urls = column("urls");
  if (config && state < t.columns.size()) {
    std::map<std::string, const config::Job*> in_file;
    for (const auto& j : config->jobs) in_file[j.name] = &j;
    std::set<std::string> known;
    for (auto& row : t.rows) {
      const auto& name = std::get<std::string>(row[job]);
      known.insert(name);
      auto it = in_file.find(name);
      if (it == in_file.end())
        row[state] = std::string("removed");
      else if (it->second->paused)
        row[state] = std::string("paused");
    }
    for (const auto& [name, j] : in_file) {
      if (known.contains(name)) continue;
      std::vector<storage::Cell> row(t.columns.size());
      row[job] = name;
      row[state] = std::string(j->paused ? "paused" : "never run");
      if (schedule < row.size()) row[schedule] = describe(j->schedule);
      if (urls < row.size()) row[urls] = static_cast<std::int64_t>(j->urls.size());
      t.rows.push_back(std::move(row));
    }
    std::sort(t.rows.begin(), t.rows.end(), [&](const auto& a, const auto& b) {
      return std::get<std::string>(a[job]) < std::get<std::string>(b[job]);
    });
  }
  if (limit >= 0 && t.rows.size() > static_cast<std::size_t>(limit))
    t.rows.resize(static_cast<std::size_t>(limit));
}

std::size_t terminal_width() {
  winsize ws{};
  if (!isatty(STDOUT_FILENO) || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0) return 0;
  return ws.ws_col;
}

}  // namespace scraperd::daemon
