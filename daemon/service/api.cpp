#include "daemon/service/api.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include <malloc.h>
#include <unistd.h>

#include "config/text.h"
#include "daemon/cli/format.h"
#include "daemon/service/ui.h"
#include "storage/store.h"

namespace scraperd::daemon {
namespace {

// The token of the systemd credential "api-token" (LoadCredential=api-token:FILE), or "".
std::string credential_token() {
  const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
  if (!dir || !*dir) return "";
  std::ifstream in(std::string(dir) + "/api-token", std::ios::binary);
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

void reply_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message) {
  reply_json(res, status, {{"error", message}});
}

// Filter from ?since=&limit=&kind=&changed=&latest=&previous=; false (and the reply sent) when one
// is bad.
bool read_filter(const httplib::Request& req, httplib::Response& res, storage::Filter& f) {
  if (req.has_param("since")) {
    auto since = parse_since(req.get_param_value("since"));
    if (!since) {
      reply_error(res, 400, "since must be a duration (1h, 30m, 2d) or a date (2026-11-24 08:00)");
      return false;
    }
    f.since = since;
  }
  if (req.has_param("limit")) {
    std::string text = req.get_param_value("limit");
    int n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size() || n < 1 || n > 10'000) {
      reply_error(res, 400, "limit must be a number from 1 to 10000");
      return false;
    }
    f.limit = n;
  }
  if (req.has_param("kind")) {
    f.kind = req.get_param_value("kind");
    if (!is_error_kind(f.kind)) {
      reply_error(res, 400, "kind must be one of: " + error_kinds());
      return false;
    }
  }
  if (req.has_param("job")) f.job = req.get_param_value("job");
  f.changed_only = req.has_param("changed") && req.get_param_value("changed") != "0";
  f.latest_only = req.has_param("latest") && req.get_param_value("latest") != "0";
  f.with_previous = req.has_param("previous") && req.get_param_value("previous") != "0";
  return true;
}

// host and port of "127.0.0.1:9184" or "[::1]:9184".
std::pair<std::string, int> split_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return {host, std::atoi(listen.c_str() + colon + 1)};
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The segments of the request target's path, each percent-decoded, so that a job named "a/b"
// (written a%2Fb) is one segment. Empty segments are dropped ("/api//jobs/" is /api/jobs).
std::vector<std::string> path_segments(const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= path.size()) {
    auto slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    std::string segment;
    for (std::size_t i = at; i < slash; ++i) {
      if (path[i] == '%' && i + 2 < slash && hex(path[i + 1]) >= 0 && hex(path[i + 2]) >= 0) {
        segment += static_cast<char>(hex(path[i + 1]) * 16 + hex(path[i + 2]));
        i += 2;
      } else {
        segment += path[i];
      }
    }
    if (!segment.empty()) out.push_back(std::move(segment));
    at = slash + 1;
  }
  return out;
}

bool same_secret(std::string_view given, const std::string& token) {  // constant time
  unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (std::size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
  return diff == 0;
}

// "Authorization: Bearer TOKEN", the scheme in any case, spaces around ignored; the token is
// compared in constant time.
bool authorized(const httplib::Request& req, const std::string& token) {
  const std::string header = req.get_header_value("Authorization");
  std::string_view h = config::trim(header);
  auto space = h.find(' ');
  if (space == std::string_view::npos || config::lower(h.substr(0, space)) != "bearer")
    return false;
  return same_secret(config::trim(h.substr(space + 1)), token);
}

// The dashboard's login cookie holds the token in hex (any byte of a token is then a valid
// cookie value).
constexpr std::string_view kCookie = "scraperd_token";

std::string to_hex(std::string_view s) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// The value of the cookie `name` in the request's Cookie headers, or "".
std::string cookie(const httplib::Request& req, std::string_view name) {
  for (std::size_t n = 0; n < req.get_header_value_count("Cookie"); ++n) {
    const std::string header = req.get_header_value("Cookie", n);
    std::string_view rest = header;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view pair = config::trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      auto eq = pair.find('=');
      if (eq != std::string_view::npos && config::trim(pair.substr(0, eq)) == name)
        return std::string(config::trim(pair.substr(eq + 1)));
    }
  }
  return "";
}

bool cookie_authorized(const httplib::Request& req, const std::string& token) {
  std::string given = cookie(req, kCookie);
  return !given.empty() && same_secret(given, to_hex(token));
}

bool loopback(const std::string& addr) {
  return addr.starts_with("127.") || addr == "::1" || addr.starts_with("::ffff:127.");
}

// True when the client asks for HTML (a browser) rather than JSON (curl sends */*).
bool wants_html(const httplib::Request& req) {
  return req.get_header_value("Accept").find("text/html") != std::string::npos;
}

// The Origin header's host[:port] is the Host the request was sent to: the POST comes from a
// page of the daemon itself, not from another site (CSRF).
bool same_origin(const std::string& origin, const std::string& host) {
  auto scheme = origin.find("://");
  return scheme != std::string::npos && !host.empty() && origin.substr(scheme + 3) == host;
}

// Headers of every dashboard answer: no inline script or style can run, nothing is sniffed,
// framed, or sent as a referrer to another site.
void ui_headers(httplib::Response& res) {
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                 "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                 "base-uri 'none'");
  res.set_header("X-Frame-Options", "DENY");
  // same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on a
  // form POST, and the login form would be refused as cross-origin.
  res.set_header("Referrer-Policy", "same-origin");
}

std::string content_type(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

const UiFile* ui_file(std::string_view name) {
  for (const auto& f : ui_files())
    if (f.name == name) return &f;
  return nullptr;
}

void redirect(httplib::Response& res, const std::string& to) {
  res.status = 303;
  res.set_header("Location", to);
  res.set_content("see " + to + "\n", "text/plain");
}

// A string as JSON text: escaped by nlohmann's dump, invalid UTF-8 replaced.
std::string json_string(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The rows as a JSON array of objects, typed as to_json types them (for tables without a
// `data` column), written straight as text: no JSON tree of every row. One row a line.
// `extra[r]`, when given, is JSON text of more members of row r's object (",\"k\":v...").
std::string rows_text(const storage::Table& t, const std::vector<std::string>* extra = nullptr) {
  std::vector<std::string> keys;
  for (const auto& c : t.columns) keys.push_back(json_string(c) + ':');
  std::string out = "[";
  for (std::size_t r = 0; r < t.rows.size(); ++r) {
    out += r ? ",\n{" : "\n{";
    for (std::size_t c = 0; c < keys.size() && c < t.rows[r].size(); ++c) {
      if (c) out += ',';
      out += keys[c];
      const auto& cell = t.rows[r][c];
      if (auto* n = std::get_if<std::int64_t>(&cell))
        out += std::to_string(*n);
      else if (auto* d = std::get_if<double>(&cell))
        out += nlohmann::json(*d).dump();  // shortest round trip; NaN and infinities: null
      else if (auto* text = std::get_if<std::string>(&cell))
        out += json_string(*text);
      else
        out += "null";
    }
    if (extra && r < extra->size()) out += (*extra)[r];
    out += '}';
  }
  out += "\n]\n";
  return out;
}

// Results as JSON: `data`, and `previous_data` when asked for, nested.
nlohmann::json results_json(const storage::Table& t) {
  nlohmann::json rows = to_json(t);
  for (auto& row : rows) {
    auto it = row.find("previous_data");
    if (it == row.end() || !it->is_string()) continue;
    auto parsed = nlohmann::json::parse(it->get<std::string>(), nullptr, false);
    if (!parsed.is_discarded()) *it = std::move(parsed);
  }
  return rows;
}

}  // namespace

// Failed commit attempts in a row (retried after 0.1, 0.2, 0.4 s, ...) that make /healthz 503.
constexpr int kUnhealthyAfterFailures = 3;

// The most values /api/jobs/NAME/series reads (the newest ones), before downsampling.
constexpr int kSeriesLimit = 100'000;
// The most points a (field, URL) line of the series answer has, by default and at most: more
// values than that are downsampled (the min and max of each time bucket).
constexpr int kSeriesPoints = 600;
constexpr int kSeriesMaxPoints = 10'000;

struct Api::Impl {
  Impl(config::Api s, std::string db, Metrics& m, const storage::Writer& w, ApiHooks h)
      : settings(std::move(s)),
        db_path(std::move(db)),
        metrics(m),
        writer(w),
        hooks(std::move(h)) {}

  config::Api settings;
  std::string db_path;
  Metrics& metrics;
  const storage::Writer& writer;
  ApiHooks hooks;
  httplib::Server server;
  std::thread thread;

  // A route: its method, its path (a "*" segment matches any one segment: a job name), what it
  // does (for the index at /), and its handler, given the segments the "*"s matched.
  using Handler = std::function<void(const httplib::Request&, httplib::Response&,
                                     const std::vector<std::string>&)>;
  struct Route {
    std::string method;
    std::vector<std::string> path;
    std::string about;
    Handler handle;
  };
  std::vector<Route> routes;

  // Every storage::Error becomes a 503 (no database yet, locked, unreadable): never a crash.
  template <typename F>
  void query(httplib::Response& res, F&& f) {
    try {
      f();
    } catch (const storage::Error& e) {
      reply_error(res, 503, e.what());
    }
  }

  void add(std::string method, const std::string& path, std::string about, Handler handle) {
    routes.push_back({std::move(method), path_segments(path), std::move(about), std::move(handle)});
  }

  // Every job as `scraperd jobs` shows it: the database's, completed with the job file.
  storage::Table jobs_table(const storage::Filter& f) {
    storage::Filter all = f;
    all.limit = std::numeric_limits<int>::max();
    storage::Table table = storage::query_jobs(db_path, all);
    std::shared_ptr<const config::Config> config = hooks.config ? hooks.config() : nullptr;
    if (config && !f.job.empty()) {  // one job: only its line of the file
      auto copy = std::make_shared<config::Config>();
      for (const auto& j : config->jobs)
        if (j.name == f.job) copy->jobs.push_back(j);
      config = copy;
    }
    merge_job_file(table, config.get(), f.limit);
    return table;
  }
  nlohmann::json jobs(const storage::Filter& f) { return to_json(jobs_table(f)); }

  // /api/jobs's filter and page: ?q= (in the name or a URL of the job, any case), ?state=,
  // ?job= (that name), ?offset=, ?limit=, and ?recent=N (each job's last N finished runs).
  struct JobsQuery {
    std::string q, state, job;
    std::size_t offset = 0;
    std::size_t limit = std::numeric_limits<std::size_t>::max();
    int recent = 0;
  };

  // A job's state as the dashboard shows it: paused, removed, never run, running as the rows
  // say; failing when its last run failed; idle otherwise.
  static std::string shown_state(const std::string& state, const storage::Cell& last_status) {
    if (state == "paused" || state == "removed" || state == "never run" || state == "running")
      return state;
    if (last_status == storage::Cell(std::string("failed"))) return "failing";
    return "idle";
  }

  // The jobs the query selects, by name (filtered on every job, the database's and the job
  // file's, before the page is cut), one page of them as `scraperd jobs` shows them, and
  // `total`: how many matched.
  storage::Table jobs_page(const JobsQuery& q, std::size_t& total,
                           std::vector<std::string>& extra) {
    std::shared_ptr<const config::Config> config = hooks.config ? hooks.config() : nullptr;
    // The database's jobs and the job file's, both by name, walked side by side: the states
    // merge_job_file would give, without a table of every job.
    storage::Table states = storage::query_job_states(db_path);  // job, state, last_status
    std::vector<const config::Job*> file;
    if (config) {
      for (const auto& j : config->jobs) file.push_back(&j);
      std::sort(file.begin(), file.end(), [](auto* a, auto* b) { return a->name < b->name; });
    }
    const std::string needle = config::lower(q.q);
    auto contains = [&](std::string_view text) {
      return config::lower(text).find(needle) != std::string::npos;
    };
    const storage::Cell none;
    std::vector<std::string> names;
    std::size_t jobs = 0;  // the database's and the job file's
    total = 0;
    auto consider = [&](const std::string& name, std::string state, const storage::Cell& last,
                        const config::Job* job) {
      ++jobs;
      if (!q.job.empty() && name != q.job) return;
      if (!q.state.empty() && shown_state(state, last) != q.state) return;
      if (!needle.empty() && !contains(name) &&
          (!job || std::none_of(job->urls.begin(), job->urls.end(), contains)))
        return;
      if (total++ >= q.offset && names.size() < q.limit) names.push_back(name);
    };
    std::size_t r = 0, k = 0;
    while (r < states.rows.size() || k < file.size()) {
      const std::string* db_name =
          r < states.rows.size() ? &std::get<std::string>(states.rows[r][0]) : nullptr;
      const config::Job* job = k < file.size() ? file[k] : nullptr;
      if (db_name && (!job || !config || *db_name <= job->name)) {
        const auto& row = states.rows[r++];
        bool both = job && *db_name == job->name;
        if (both) ++k;
        std::string state = std::get<std::string>(row[1]);
        if (config && !both)
          state = "removed";
        else if (both && job->paused)
          state = "paused";
        consider(*db_name, std::move(state), row[2], both ? job : nullptr);
      } else {
        ++k;
        consider(job->name, job->paused ? "paused" : "never run", none, job);
      }
    }
    storage::Table table;
    if (names.empty()) return table;
    storage::Filter f;
    f.limit = static_cast<int>(names.size());
    const bool every = names.size() == jobs;  // every job, the database's and the file's
    if (!every) f.jobs = names;
    table = storage::query_jobs(db_path, f);
    if (config && !every) {  // the job file's lines of these jobs only
      auto copy = std::make_shared<config::Config>();
      for (const auto* j : file)
        if (std::binary_search(names.begin(), names.end(), j->name)) copy->jobs.push_back(*j);
      config = copy;
    }
    merge_job_file(table, config.get(), -1);
    if (q.recent > 0) extra = recent_runs(table, q.recent);
    return table;
  }

  // For each row of `jobs`: its last `n` finished runs' durations (oldest first), the last
  // one's duration and counts, the time of its last change; one query each for the page.
  std::vector<std::string> recent_runs(const storage::Table& jobs, int n) {
    std::vector<std::string> names;
    for (const auto& row : jobs.rows) names.push_back(std::get<std::string>(row[0]));
    storage::Table runs = storage::query_recent_runs(db_path, names, n);
    storage::Table changes = storage::query_last_changes(db_path, names);
    auto ms = [](const storage::Cell& from, const storage::Cell& to) -> std::int64_t {
      return std::chrono::duration_cast<std::chrono::milliseconds>(
                 storage::parse_time(std::get<std::string>(to)) -
                 storage::parse_time(std::get<std::string>(from)))
          .count();
    };
    auto cell_text = [](const storage::Cell& c) {
      if (auto* i = std::get_if<std::int64_t>(&c)) return std::to_string(*i);
      if (auto* t = std::get_if<std::string>(&c)) return json_string(*t);
      return std::string("null");
    };
    // Both tables are ordered by job, as `jobs` is: walked side by side.
    std::vector<std::string> out;
    std::size_t r = 0, c = 0;
    for (const auto& name : names) {
      std::vector<std::int64_t> durations;  // newest first
      std::string last = ",\"last_duration_ms\":null,\"last_ok\":null,\"last_failed\":null";
      for (; r < runs.rows.size() && std::get<std::string>(runs.rows[r][0]) < name; ++r) {
      }
      for (; r < runs.rows.size() && std::get<std::string>(runs.rows[r][0]) == name; ++r) {
        const auto& run = runs.rows[r];  // job, started_at, finished_at, status, ok, failed
        if (durations.empty())
          last = ",\"last_duration_ms\":" + std::to_string(ms(run[1], run[2])) +
                 ",\"last_ok\":" + cell_text(run[4]) + ",\"last_failed\":" + cell_text(run[5]);
        durations.push_back(ms(run[1], run[2]));
      }
      std::string text = last + ",\"durations_ms\":[";
      for (auto d = durations.rbegin(); d != durations.rend(); ++d)
        text += (d == durations.rbegin() ? "" : ",") + std::to_string(*d);
      text += "],\"last_change\":";
      for (; c < changes.rows.size() && std::get<std::string>(changes.rows[c][0]) < name; ++c) {
      }
      text += c < changes.rows.size() && std::get<std::string>(changes.rows[c][0]) == name
                  ? cell_text(changes.rows[c][1])
                  : "null";
      out.push_back(std::move(text));
    }
    return out;
  }

  // {"price": {"URL": [[epoch ms, value], ...], ...}, ...}: compact JSON text written straight
  // from the database's rows as they come (ordered by field, URL, time; no table of every
  // value). A (field, URL) line of more than `points` values is downsampled: its time range cut
  // in points / 2 buckets, the lowest and the highest value of each kept (in time order), so
  // peaks survive. `total` and `shown` count the values stored and written.
  struct Series {
    struct Point {
      std::int64_t ms;
      storage::Cell value;
      double v;
    };
    explicit Series(int points_) : points(points_) {}
    int points;
    std::string out = "{";
    std::string field, url;  // of `line`
    std::vector<Point> line;
    bool field_open = false;
    std::size_t total = 0, shown = 0;

    void add(const storage::FieldValue& fv) {
      double v = 0;
      if (auto* i = std::get_if<std::int64_t>(&fv.value))
        v = static_cast<double>(*i);
      else if (auto* d = std::get_if<double>(&fv.value))
        v = *d;
      else
        return;
      if (fv.field != field || fv.url != url) {
        flush();
        if (fv.field != field) {
          if (field_open) out += '}';
          field_open = false;
        }
        field = fv.field;
        url = fv.url;
      }
      line.push_back({fv.at_ms, fv.value, v});
    }

    void flush() {
      if (line.empty()) return;
      if (field_open) {
        out += ',';
      } else {
        if (out.size() > 1) out += ',';
        out += json_string(field) + ":{";
        field_open = true;
      }
      out += json_string(url) + ":[";
      total += line.size();
      std::vector<const Point*> keep;
      if (line.size() <= static_cast<std::size_t>(points)) {
        for (const auto& p : line) keep.push_back(&p);
      } else {
        const std::int64_t t0 = line.front().ms, span = line.back().ms - t0 + 1;
        const std::int64_t buckets = points / 2;
        std::size_t lo = 0, hi = 0;
        std::int64_t bucket = -1;
        auto close = [&] {
          if (bucket < 0) return;
          keep.push_back(&line[std::min(lo, hi)]);
          if (lo != hi) keep.push_back(&line[std::max(lo, hi)]);
        };
        for (std::size_t i = 0; i < line.size(); ++i) {
          std::int64_t b = (line[i].ms - t0) * buckets /
                           span;  // no overflow: span < 3e14 ms (year 9999), buckets <= 5000
          if (b != bucket) {
            close();
            bucket = b;
            lo = hi = i;
          } else {
            if (line[i].v < line[lo].v) lo = i;
            if (line[i].v > line[hi].v) hi = i;
          }
        }
        close();
      }
      shown += keep.size();
      for (std::size_t i = 0; i < keep.size(); ++i) {
        if (i) out += ',';
        out += '[' + std::to_string(keep[i]->ms) + ',';
        if (auto* n = std::get_if<std::int64_t>(&keep[i]->value))
          out += std::to_string(*n);
        else  // a JSON number, the shortest text that reads back the same (NaN: null)
          out += nlohmann::json(keep[i]->v).dump();
        out += ']';
      }
      out += ']';
      line.clear();
    }

    std::string finish() {
      flush();
      if (field_open) out += '}';
      out += "}\n";
      return std::move(out);
    }
  };

  void define_routes() {
    add("GET", "/", "this list", [this](const auto&, auto& res, const auto&) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& r : routes) {
        std::string path;
        for (const auto& s : r.path) path += "/" + (s == "*" ? std::string("NAME") : s);
        list.push_back(
            {{"method", r.method}, {"path", path.empty() ? "/" : path}, {"about", r.about}});
      }
      reply_json(res, 200, {{"service", "scraperd"}, {"endpoints", list}});
    });
    add("GET", "/healthz",
        "200 ok while the daemon runs; 503 while commits keep failing (no token needed)",
        [this](const auto&, auto& res, const auto&) {
          // Unhealthy while commits keep failing: rows pile up in memory and are lost if the
          // daemon stops before the database takes them again.
          if (int failing = writer.failing(); failing >= kUnhealthyAfterFailures) {
            res.status = 503;
            res.set_content(
                fmt::format("database: {} commits failed in a row, {} rows waiting: {}\n", failing,
                            writer.queued(), writer.last_error()),
                "text/plain");
            return;
          }
          res.set_content("ok\n", "text/plain");
        });
    add("GET", "/metrics", "Prometheus metrics", [this](const auto&, auto& res, const auto&) {
      res.set_content(
          metrics.render({writer.queued(), writer.committed(), writer.commit_failures()}),
          "text/plain; version=0.0.4; charset=utf-8");
    });
    add("GET", "/api/status",
        "the daemon: pid, since, runs going on, the writer's queue, the last reload",
        [this](const auto&, auto& res, const auto&) {
          query(res, [&] {
            DaemonStatus d = hooks.status();
            nlohmann::json body = {
                {"pid", static_cast<long>(::getpid())},
                {"since", d.since},
                {"config", d.config_path},
                {"database", db_path},
                {"api", settings.listen},
                {"jobs", d.jobs},
                {"paused", d.paused},
                {"requests_in_flight", d.requests_in_flight},
                {"running", to_json(storage::query_unfinished_runs(db_path))},
                {"writer",
                 {{"queued", writer.queued()},
                  {"committed", writer.committed()},
                  {"last_error", writer.last_error()}}},
                {"last_reload",
                 {{"ok", d.last_reload_ok},
                  {"at", d.last_reload_at.empty() ? nlohmann::json(nullptr)
                                                  : nlohmann::json(d.last_reload_at)},
                  {"errors", d.last_reload_errors}}}};
            reply_json(res, 200, body);
          });
        });
    add("GET", "/api/jobs",
        "jobs by name: state, schedule, last run, status, next due; ?q=TEXT (name or URL)"
        "&state=S&offset=N&limit=N&recent=N (last N runs' durations); X-Total-Count: all that "
        "match",
        [this](const auto& req, auto& res, const auto&) {
          JobsQuery q;
          auto number = [&](const char* name, std::size_t hi, std::size_t& out) {
            if (!req.has_param(name)) return true;
            std::string text = req.get_param_value(name);
            std::size_t n = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
            if (ec != std::errc() || end != text.data() + text.size() || n > hi) {
              reply_error(res, 400,
                          std::string(name) + " must be a number from 0 to " + std::to_string(hi));
              return false;
            }
            out = n;
            return true;
          };
          std::size_t recent = 0;
          if (!number("offset", 1'000'000'000, q.offset) || !number("recent", 100, recent)) return;
          q.recent = static_cast<int>(recent);
          storage::Filter f;
          f.limit = std::numeric_limits<int>::max();
          if (!read_filter(req, res, f)) return;
          if (req.has_param("limit")) q.limit = static_cast<std::size_t>(f.limit);
          q.job = f.job;
          q.q = req.get_param_value("q");
          q.state = req.get_param_value("state");
          if (!q.state.empty() && q.state != "running" && q.state != "idle" &&
              q.state != "paused" && q.state != "failing" && q.state != "removed" &&
              q.state != "never run")
            return reply_error(
                res, 400,
                "state must be one of: running, idle, paused, failing, never run, removed");
          query(res, [&] {
            std::size_t total = 0;
            std::vector<std::string> extra;
            std::string body = rows_text(jobs_page(q, total, extra), &extra);
            // glibc keeps what a thread of the pool freed in that thread's arena: hand the
            // pages of the list of every job back (a trim: ~1 ms).
            if (total > 1'000) ::malloc_trim(0);
            res.set_header("X-Total-Count", std::to_string(total));
            res.set_content(std::move(body), "application/json");
          });
        });
    add("GET", "/api/jobs/*", "one job and its latest runs",
        [this](const auto&, auto& res, const auto& args) {
          query(res, [&] {
            storage::Filter f;
            f.job = args[0];
            f.limit = 1;
            auto job = jobs(f);
            if (job.empty()) return reply_error(res, 404, "no job '" + args[0] + "'");
            f.limit = 10;
            reply_json(res, 200,
                       {{"job", job[0]}, {"runs", to_json(storage::query_runs(db_path, f))}});
          });
        });
    add("GET", "/api/jobs/*/results",
        "a job's results: ?since=1h&limit=N&changed=1&latest=1 (each URL's last)&previous=1 "
        "(previous_data: the URL's result before)",
        [this](const auto& req, auto& res, const auto& args) {
          storage::Filter f;
          if (!read_filter(req, res, f)) return;
          f.job = args[0];
          query(res, [&] {
            if (!storage::job_known(db_path, f.job))
              return reply_error(res, 404, "no job '" + f.job + "'");
            reply_json(res, 200, results_json(storage::query_results(db_path, f)));
          });
        });
    add("GET", "/api/results",
        "results across jobs: ?job=NAME&since=1h&limit=N&changed=1&latest=1&previous=1",
        [this](const auto& req, auto& res, const auto&) {
          storage::Filter f;
          if (!read_filter(req, res, f)) return;
          query(res,
                [&] { reply_json(res, 200, results_json(storage::query_results(db_path, f))); });
        });
    add("GET", "/api/runs", "runs across jobs: ?job=NAME&since=1h&limit=N",
        [this](const auto& req, auto& res, const auto&) {
          storage::Filter f;
          if (!read_filter(req, res, f)) return;
          query(res, [&] { reply_json(res, 200, to_json(storage::query_runs(db_path, f))); });
        });
    add("GET", "/api/errors", "errors across jobs: ?job=NAME&kind=K&since=1h&limit=N",
        [this](const auto& req, auto& res, const auto&) {
          storage::Filter f;
          if (!read_filter(req, res, f)) return;
          query(res, [&] { reply_json(res, 200, to_json(storage::query_errors(db_path, f))); });
        });
    add("GET", "/api/errors/groups",
        "errors of 24 h grouped by job, kind and host, with counts over 1 h and 24 h: ?job=NAME",
        [this](const auto& req, auto& res, const auto&) {
          storage::Filter f;
          f.limit = 10'000;
          if (!read_filter(req, res, f)) return;
          query(res,
                [&] { reply_json(res, 200, to_json(storage::query_error_groups(db_path, f))); });
        });
    add("GET", "/api/jobs/*/series",
        "a job's numeric field values over time, for charts: ?since=7d&limit=N (newest N "
        "values)&points=P (at most P a field and URL, default 600: min and max per time bucket)",
        [this](const auto& req, auto& res, const auto& args) {
          auto number = [&](const char* name, int lo, int hi, int& out) {
            if (!req.has_param(name)) return true;
            std::string text = req.get_param_value(name);
            int n = 0;
            auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
            if (ec != std::errc() || end != text.data() + text.size() || n < lo || n > hi) {
              reply_error(res, 400,
                          std::string(name) + " must be a number from " + std::to_string(lo) +
                              " to " + std::to_string(hi));
              return false;
            }
            out = n;
            return true;
          };
          storage::Filter f;
          f.limit = kSeriesLimit;  // up to kSeriesLimit, beyond read_filter's 10000
          int points = kSeriesPoints;
          if (!number("limit", 1, kSeriesLimit, f.limit)) return;
          if (!number("points", 2, kSeriesMaxPoints, points)) return;
          if (req.has_param("since")) {
            auto since = parse_since(req.get_param_value("since"));
            if (!since) return reply_error(res, 400, "since must be a duration or a date");
            f.since = since;
          }
          f.job = args[0];
          query(res, [&] {
            if (!storage::job_known(db_path, f.job))
              return reply_error(res, 404, "no job '" + f.job + "'");
            Series series(points);
            storage::for_each_field_value(db_path, f,
                                          [&](const storage::FieldValue& v) { series.add(v); });
            std::string body = series.finish();
            if (series.total > 10'000) ::malloc_trim(0);  // as for /api/jobs
            res.set_header("X-Values-Total", std::to_string(series.total));
            res.set_header("X-Values-Shown", std::to_string(series.shown));
            res.set_content(std::move(body), "application/json");
          });
        });
    add("POST", "/api/reload", "reload the job files", [this](const auto&, auto& res, const auto&) {
      ReloadOutcome outcome = hooks.reload();
      reply_json(res, outcome.ok ? 200 : 422, {{"ok", outcome.ok}, {"errors", outcome.errors}});
    });
    add("POST", "/api/jobs/*/run", "run the job now (202; 409 when running or paused)",
        [this](const auto&, auto& res, const auto& args) {
          const std::string& name = args[0];
          switch (hooks.run_now(name)) {
            case RunNow::kStarted: reply_json(res, 202, {{"started", name}}); break;
            case RunNow::kUnknownJob: reply_error(res, 404, "no job '" + name + "'"); break;
            case RunNow::kAlreadyRunning:
              reply_error(res, 409, "job '" + name + "' is running");
              break;
            case RunNow::kPaused:
              reply_error(res, 409, "job '" + name + "' is paused (resume it first)");
              break;
          }
        });
    for (bool pause : {true, false}) {
      std::string verb = pause ? "pause" : "resume";
      add("POST", "/api/jobs/*/" + verb,
          pause ? "pause the job: no run starts until it is resumed" : "resume a paused job",
          [this, pause](const auto&, auto& res, const auto& args) {
            const std::string& name = args[0];
            query(res, [&] {
              switch (hooks.set_paused(name, pause)) {
                case Pause::kDone:
                case Pause::kAlready:
                  reply_json(res, 200, {{"job", name}, {"paused", pause}});
                  break;
                case Pause::kUnknownJob: reply_error(res, 404, "no job '" + name + "'"); break;
              }
            });
          });
    }
  }

  // Every request comes here, routed by its percent-decoded path segments.
  void dispatch(const httplib::Request& req, httplib::Response& res) {
    auto segments = path_segments(req.target);
    res.set_header("X-Content-Type-Options", "nosniff");
    std::string method = req.method == "HEAD" ? "GET" : req.method;
    if (!segments.empty() && segments[0] == "ui") return dashboard(req, res, segments);
    // A browser at / goes to the dashboard; API clients get the index below.
    if (segments.empty() && method == "GET" && wants_html(req)) return redirect(res, "/ui/");
    bool health = segments.size() == 1 && segments[0] == "healthz";
    bool by_header = !settings.token.empty() && authorized(req, settings.token);
    bool by_cookie =
        !by_header && !settings.token.empty() && cookie_authorized(req, settings.token);
    if (!settings.token.empty() && !health && !by_header && !by_cookie) {
      res.set_header("WWW-Authenticate", "Bearer");
      return reply_error(res, 401, "this API needs 'Authorization: Bearer <api.token>'");
    }
    if (method != "GET" && !csrf_safe(req, res, by_cookie)) return;
    std::vector<std::string> allowed;
    for (const auto& route : routes) {
      if (route.path.size() != segments.size()) continue;
      std::vector<std::string> args;
      bool match = true;
      for (std::size_t i = 0; match && i < segments.size(); ++i) {
        if (route.path[i] == "*")
          args.push_back(segments[i]);
        else
          match = route.path[i] == segments[i];
      }
      if (!match) continue;
      if (route.method == method) return route.handle(req, res, args);
      allowed.push_back(route.method == "GET" ? "GET, HEAD" : route.method);
    }
    if (allowed.empty()) return reply_error(res, 404, "no such endpoint (GET / lists them)");
    std::string allow;
    for (const auto& a : allowed) allow += (allow.empty() ? "" : ", ") + a;
    res.set_header("Allow", allow);
    reply_error(res, 405, req.method + " is not allowed here (allowed: " + allow + ")");
  }

  // Browsers send Origin with every POST. An action from a page must come from the daemon's
  // own pages (another site's form or script cannot use the login cookie), and needs a token:
  // without one, the dashboard is read-only. Clients that send no Origin (curl, scripts)
  // authenticate with the header, which a browser never adds by itself; a request that only
  // has the cookie must carry Origin. False, with the answer sent, when refused.
  bool csrf_safe(const httplib::Request& req, httplib::Response& res, bool by_cookie) {
    const std::string origin = req.get_header_value("Origin");
    if (origin.empty()) {
      if (!by_cookie) return true;
      reply_error(res, 403, "a request authenticated by the dashboard's cookie needs Origin");
      return false;
    }
    if (settings.token.empty()) {
      reply_error(res, 403, "actions from a browser need api.token (the dashboard is read-only)");
      return false;
    }
    if (!same_origin(origin, req.get_header_value("Host"))) {
      reply_error(res, 403, "cross-origin request refused (Origin " + origin + ")");
      return false;
    }
    return true;
  }

  // /ui/...: the dashboard. Its script and stylesheet are public; its pages need the token
  // (the login cookie, or the header), or, with no token configured, a client on loopback.
  void dashboard(const httplib::Request& req, httplib::Response& res,
                 const std::vector<std::string>& segments) {
    ui_headers(res);
    std::string method = req.method == "HEAD" ? "GET" : req.method;
    std::string page = segments.size() == 1 ? "index" : segments[1];
    if (segments.size() > 2) return reply_error(res, 404, "no such page");
    if (page == "login" && method == "POST") return login(req, res);
    if (page == "logout" && method == "POST") {
      res.set_header("Set-Cookie",
                     std::string(kCookie) + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
      return redirect(res, "/ui/login");
    }
    const UiFile* file = ui_file(page.find('.') == std::string::npos ? page + ".html" : page);
    if (!file) return reply_error(res, 404, "no such page");
    if (method != "GET") {
      res.set_header("Allow", "GET, HEAD");
      return reply_error(res, 405, req.method + " is not allowed here (allowed: GET, HEAD)");
    }
    bool page_html = file->name.ends_with(".html") && file->name != "login.html";
    if (page_html && settings.token.empty() && !loopback(req.remote_addr))
      return reply_error(res, 403,
                         "without api.token the dashboard is served to loopback clients only");
    if (page_html && !settings.token.empty() && !authorized(req, settings.token) &&
        !cookie_authorized(req, settings.token))
      return redirect(res, "/ui/login");
    // Pages are read every time; the script and stylesheet may be kept but are checked
    // (the binary changes them on upgrade).
    res.set_header("Cache-Control", file->name.ends_with(".html") ? "no-store" : "no-cache");
    res.set_content(std::string(file->body), content_type(file->name));
  }

  // POST /ui/login, form field `token`: the cookie, and on to the jobs; a wrong token back to
  // the form with ?failed=1.
  void login(const httplib::Request& req, httplib::Response& res) {
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty() && !same_origin(origin, req.get_header_value("Host")))
      return reply_error(res, 403, "cross-origin request refused (Origin " + origin + ")");
    if (settings.token.empty()) return redirect(res, "/ui/");
    std::string given = req.has_param("token") ? req.get_param_value("token") : "";
    if (!same_secret(given, settings.token)) return redirect(res, "/ui/login?failed=1");
    res.set_header("Set-Cookie", std::string(kCookie) + "=" + to_hex(settings.token) +
                                     "; Path=/; HttpOnly; SameSite=Strict");
    redirect(res, "/ui/");
  }

  void serve() {
    define_routes();
    // A request without Content-Length or Transfer-Encoding has no body (RFC 9112 6.3), but
    // cpp-httplib would wait for one on a POST until the connection closes: such requests are
    // answered here, before it reads. The others reach the catch-all handlers below.
    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      bool body_expected = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
                           req.method == "DELETE";
      if (body_expected && !req.has_header("Content-Length") &&
          !req.has_header("Transfer-Encoding")) {
        dispatch(req, res);
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    const std::string any = R"([\s\S]*)";
    auto handler = [this](const httplib::Request& req, httplib::Response& res) {
      dispatch(req, res);
    };
    server.Get(any, handler);
    server.Post(any, handler);
    server.Put(any, handler);
    server.Patch(any, handler);
    server.Delete(any, handler);
    server.Options(any, handler);
    server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      reply_error(res, res.status, "HTTP " + std::to_string(res.status));
    });
    server.set_exception_handler(
        [](const httplib::Request&, httplib::Response& res, std::exception_ptr e) {
          std::string what = "internal error";
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& ex) {
            what = ex.what();
          } catch (...) {
          }
          spdlog::error("api: {}", what);
          reply_error(res, 500, what);
        });
  }
};

Api::Api(config::Api settings, std::string db_path, Metrics& metrics, const storage::Writer& writer,
         ApiHooks hooks)
    : impl_(std::make_unique<Impl>(std::move(settings), std::move(db_path), metrics, writer,
                                   std::move(hooks))) {
  // No api.token in the file: the systemd credential, if the unit passes one.
  if (impl_->settings.token.empty()) impl_->settings.token = credential_token();
}

Api::~Api() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool Api::start(std::string* error) {
  // glibc raises its mmap and trim thresholds (up to 32 MB) each time a large block is freed:
  // after a few big answers, each arena of cpp-httplib's pool threads keeps megabytes it no
  // longer uses (+13 MB over the dashboard's bench). Fixed at glibc's own starting values,
  // large blocks are mapped and unmapped and freed tops go back to the system (+2 MB).
  // Process-wide: the daemon's other large blocks are mapped the same way.
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  ::mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  impl_->serve();
  auto [host, port] = split_listen(impl_->settings.listen);
  // cpp-httplib's default sets SO_REUSEPORT, with which a second daemon binds the same port
  // and the kernel splits the connections between them. SO_REUSEADDR alone still lets a
  // restart bind over connections in TIME_WAIT, and fails on a port another socket listens on.
  impl_->server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (port == 0)
    port_ = impl_->server.bind_to_any_port(host);
  else
    port_ = impl_->server.bind_to_port(host, port) ? port : -1;
  if (port_ <= 0) {
    *error = "api: cannot listen on " + impl_->settings.listen + ": " + std::strerror(errno);
    return false;
  }
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  while (!impl_->server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  spdlog::info("api: listening on http://{}:{}{}",
               host.find(':') != std::string::npos ? "[" + host + "]" : host, port_,
               impl_->settings.token.empty() ? "" : " (token required)");
  return true;
}

}  // namespace scraperd::daemon
