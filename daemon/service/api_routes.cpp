#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include <malloc.h>

#include "config/text.h"
#include "daemon/cli/format.h"
#include "daemon/service/api_impl.h"
#include "storage/store.h"

namespace scraperd::daemon {
namespace {

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

// Every job as `scraperd jobs` shows it: the database's, completed with the job file.
storage::Table Api::Impl::jobs_table(const storage::Filter& f) {
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

nlohmann::json Api::Impl::jobs(const storage::Filter& f) {
  return to_json(jobs_table(f));
}

// A job's state as the dashboard shows it: paused, removed, never run, running as the rows
// say; failing when its last run failed; idle otherwise.
std::string Api::Impl::shown_state(const std::string& state, const storage::Cell& last_status) {
  if (state == "paused" || state == "removed" || state == "never run" || state == "running")
    return state;
  if (last_status == storage::Cell(std::string("failed"))) return "failing";
  return "idle";
}

// The jobs the query selects, by name (filtered on every job, the database's and the job
// file's, before the page is cut), one page of them as `scraperd jobs` shows them, and
// `total`: how many matched.
storage::Table Api::Impl::jobs_page(const JobsQuery& q, std::size_t& total,
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
std::vector<std::string> Api::Impl::recent_runs(const storage::Table& jobs, int n) {
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
struct Api::Impl::Series {
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

void Api::Impl::define_routes() {
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
          res.set_content(fmt::format("database: {} commits failed in a row, {} rows waiting: {}\n",
                                      failing, writer.queued(), writer.last_error()),
                          "text/plain");
          return;
        }
        res.set_content("ok\n", "text/plain");
      });
  add("GET", "/metrics", "Prometheus metrics", [this](const auto&, auto& res, const auto&) {
    res.set_content(metrics.render({writer.queued(), writer.committed(), writer.commit_failures()}),
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
              {"database", storage::redacted(db_path)},
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
        if (!q.state.empty() && q.state != "running" && q.state != "idle" && q.state != "paused" &&
            q.state != "failing" && q.state != "removed" && q.state != "never run")
          return reply_error(
              res, 400, "state must be one of: running, idle, paused, failing, never run, removed");
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
        query(res, [&] { reply_json(res, 200, results_json(storage::query_results(db_path, f))); });
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
        query(res, [&] { reply_json(res, 200, to_json(storage::query_error_groups(db_path, f))); });
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
  add("GET", "/api/cluster",
      "the nodes sharing this PostgreSQL database, what each owns, `warnings` when their job "
      "files differ",
      [this](const auto&, auto& res, const auto&) {
        if (!hooks.cluster)
          return reply_error(res, 404, "not a cluster: the database is SQLite (storage.path)");
        query(res, [&] { res.set_content(hooks.cluster(), "application/json"); });
      });
  add("POST", "/api/reload", "reload the job files", [this](const auto&, auto& res, const auto&) {
    ReloadOutcome outcome = hooks.reload();
    reply_json(res, outcome.ok ? 200 : 422, {{"ok", outcome.ok}, {"errors", outcome.errors}});
  });
  add("POST", "/api/jobs/*/run", "run the job now (202; 409 when running or paused)",
      [this](const auto&, auto& res, const auto& args) {
        const std::string& name = args[0];
        if (hooks.owner_elsewhere)
          if (std::string owner = hooks.owner_elsewhere(name); !owner.empty())
            return reply_error(res, 409,
                               "job '" + name + "' runs on node '" + owner +
                                   "' (it owns the job's hosts): ask that node");
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
              case Pause::kAlready: reply_json(res, 200, {{"job", name}, {"paused", pause}}); break;
              case Pause::kUnknownJob: reply_error(res, 404, "no job '" + name + "'"); break;
            }
          });
        });
  }
}

}  // namespace scraperd::daemon
