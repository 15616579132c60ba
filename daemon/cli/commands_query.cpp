#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/duration.h"
#include "config/text.h"
#include "daemon/cli/commands.h"
#include "daemon/cli/format.h"
#include "daemon/schedule/schedule.h"
#include "storage/cluster.h"
#include "storage/db_lock.h"
#include "storage/store.h"

namespace scraperd::daemon {
namespace {

// What a query command reads: the database (--db, else storage.path of the job file) and the
// job file itself when there is one (null otherwise). The file is read without its ${VAR}s:
// a variable unset in this shell (an API token) does not stop a query, unless storage.path
// needs it. Null, with the errors printed, when the database cannot be known.
struct QueryTarget {
  std::string db;
  std::shared_ptr<const config::Config> config;
};

std::optional<QueryTarget> query_target(const Args& args) {
  QueryTarget target;
  std::string path = args.get("--config").value_or(kDefaultConfig);
  if (args.get("--config") || std::filesystem::exists(path)) {
    if (args.get("--db")) {  // the file only completes the answer: its errors stop nothing
      target.config = config::load_file(path, {.env_required = false}).config;
    } else {
      auto loaded = config::load_file(path, {.env_required = false});
      for (const auto& d : loaded.errors) std::cerr << d.str() << '\n';
      if (!loaded.ok()) {
        std::cerr << path << ": " << loaded.errors.size()
                  << (loaded.errors.size() == 1 ? " error" : " errors")
                  << " (--db FILE queries a database without it)\n";
        return std::nullopt;
      }
      target.config = loaded.config;
    }
  }
  target.db = args.get("--db").value_or(target.config ? target.config->storage.locator()
                                                      : std::string("scraperd.db"));
  return target;
}

// The daemon holding the database's lock, if one does.
std::optional<storage::LockInfo> daemon_on(const std::string& db) {
  return storage::db_lock_holder(db);
}

std::string describe_daemon(const std::string& db, const std::optional<storage::LockInfo>& d) {
  if (!d) return "daemon: none runs on " + db;
  std::string s = "daemon: pid " + std::to_string(d->pid) + " since " + d->since + " runs on " + db;
  if (!d->config.empty()) s += ", jobs from " + d->config;
  if (!d->api.empty()) s += ", API http://" + d->api;
  return s;
}

}  // namespace

int cmd_query(const std::string& command, const Args& args) {
  auto format = parse_format(args.get("--format").value_or("table"));
  if (!format) return usage_error("--format must be table, json, ndjson or csv");
  storage::Filter filter;
  auto limit = parse_count(args.get("--limit").value_or("20"), 1, 1'000'000);
  if (!limit) return usage_error("--limit must be a number from 1 to 1000000");
  filter.limit = *limit;
  if (args.positional.size() > (command == "jobs" ? 0u : 1u))
    return usage_error("too many arguments: '" + args.positional.back() + "'");
  if (!args.positional.empty()) filter.job = args.positional[0];
  if (auto since = args.get("--since")) {
    filter.since = parse_since(*since);
    if (!filter.since)
      return usage_error("--since '" + *since +
                         "' is neither a duration (1h, 30m, 2d) nor a date (2026-11-24 08:00)");
  }
  if (auto kind = args.get("--kind")) {
    if (!is_error_kind(*kind))
      return usage_error("--kind '" + *kind + "' is not a kind: " + error_kinds());
    filter.kind = *kind;
  }
  filter.changed_only = args.has("--changed");

  auto target = query_target(args);
  if (!target) return 1;
  const std::string& db = target->db;
  try {
    storage::Table table;
    if (command == "results") {
      table = storage::query_results(db, filter);
    } else if (command == "errors") {
      table = storage::query_errors(db, filter);
    } else if (command == "runs") {
      table = storage::query_runs(db, filter);
    } else {
      storage::Filter all = filter;
      all.limit = std::numeric_limits<int>::max();
      table = storage::query_jobs(db, all);
      merge_job_file(table, target->config.get(), filter.limit);
      auto daemon = daemon_on(db);
      if (!daemon) {  // a run left unfinished by a daemon that was killed is not running
        auto state = std::find(table.columns.begin(), table.columns.end(), "state");
        for (auto& row : table.rows) {
          auto& cell = row[static_cast<std::size_t>(state - table.columns.begin())];
          if (cell == storage::Cell(std::string("running"))) cell = std::string("active");
        }
      }
      // Above the table; beside machine-readable output, on stderr.
      (*format == Format::kTable ? std::cout : std::cerr) << describe_daemon(db, daemon) << '\n';
    }
    print(std::cout, table, *format, terminal_width());
  } catch (const storage::Error& e) {
    std::cerr << "scraperd: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

namespace {

// A request to the API of the daemon holding the lock (its address from the lock file, the
// token from the job file when this shell has it). Null when it cannot be reached.
httplib::Result call_daemon(const storage::LockInfo& daemon, const config::Config* config,
                            const std::string& method, const std::string& path) {
  auto colon = daemon.api.rfind(':');
  std::string host = daemon.api.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
  if (host == "::") host = "::1";
  httplib::Client client(host, std::atoi(daemon.api.c_str() + colon + 1));
  client.set_connection_timeout(std::chrono::seconds(5));
  client.set_read_timeout(std::chrono::seconds(30));
  if (config && !config->api.token.empty()) client.set_bearer_token_auth(config->api.token);
  return method == "POST" ? client.Post(path) : client.Get(path);
}

// A job name as one path segment of the API.
std::string path_segment(const std::string& name) {
  std::string out;
  for (unsigned char c : name) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else
      out += fmt::format("%{:02X}", c);
  }
  return out;
}

}  // namespace

// `scraperd status`: the daemon from the lock, its runs from the database, the rest from its
// API.
namespace {

// `scraperd status` on PostgreSQL: the nodes sharing the database (storage/cluster.h) and
// the runs going on; a warning when the live nodes' job files differ.
int cluster_status(const std::string& db, Format format) {
  std::vector<storage::cluster::Node> nodes;
  storage::Table running;
  try {
    nodes = storage::cluster::read_nodes(db);
    running = storage::query_unfinished_runs(db);
  } catch (const storage::Error& e) {
    std::cerr << "scraperd: " << e.what() << '\n';
    return 1;
  }
  std::vector<std::string> hashes;
  storage::Table table;
  table.columns = {"node",     "live", "heartbeat_age_s", "leases", "hosts", "file_hash",
                   "hostname", "pid",  "started_at"};
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const auto& n : nodes) {
    if (n.live && std::find(hashes.begin(), hashes.end(), n.file_hash) == hashes.end())
      hashes.push_back(n.file_hash);
    double age = std::round(n.age_s * 10) / 10;
    table.rows.push_back({n.id, std::string(n.live ? "yes" : "NO"), age, std::int64_t{n.leases},
                          std::int64_t{n.hosts}, n.file_hash, n.hostname, n.pid, n.started_at});
    list.push_back({{"id", n.id},
                    {"live", n.live},
                    {"heartbeat_age_s", age},
                    {"leases", n.leases},
                    {"hosts", n.hosts},
                    {"file_hash", n.file_hash},
                    {"hostname", n.hostname},
                    {"pid", n.pid},
                    {"started_at", n.started_at}});
  }
  std::vector<std::string> warnings;
  if (hashes.size() > 1) {
    std::string w = "the live nodes' job files differ:";
    for (const auto& n : nodes)
      if (n.live) w += " " + n.id + " " + n.file_hash;
    warnings.push_back(w + " (they may disagree on which node runs which job)");
  }
  if (format == Format::kJson) {
    nlohmann::ordered_json out = {{"database", storage::redacted(db)},
                                  {"nodes", list},
                                  {"warnings", warnings},
                                  {"running", to_json(running)}};
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    return 0;
  }
  int live = 0;
  for (const auto& n : nodes) live += n.live ? 1 : 0;
  std::cout << "cluster: " << live << " live node(s) on " << storage::redacted(db) << '\n';
  if (!nodes.empty()) print(std::cout, table, Format::kTable, terminal_width());
  for (const auto& w : warnings) std::cout << "warning: " << w << '\n';
  if (running.rows.empty()) {
    std::cout << "running now: no run\n";
  } else {
    std::cout << "running now:\n";
    print(std::cout, running, Format::kTable, terminal_width());
  }
  return 0;
}

}  // namespace

int cmd_status(const Args& args) {
  auto format = parse_format(args.get("--format").value_or("table"));
  if (!format) return usage_error("--format must be table, json, ndjson or csv");
  if (*format != Format::kTable && *format != Format::kJson)
    return usage_error("status prints --format table or json");
  auto target = query_target(args);
  if (!target) return 1;
  const std::string& db = target->db;
  if (storage::is_postgres(db)) return cluster_status(db, *format);
  auto daemon = daemon_on(db);
  nlohmann::ordered_json out;
  out["database"] = db;
  out["daemon"] = nullptr;
  storage::Table running;
  try {
    if (daemon) running = storage::query_unfinished_runs(db);
  } catch (const storage::Error& e) {
    std::cerr << "scraperd: " << e.what() << '\n';
    return 1;
  }
  nlohmann::json live;  // the daemon's /api/status
  std::string api_problem;
  if (daemon) {
    out["daemon"] = {{"pid", daemon->pid},
                     {"since", daemon->since},
                     {"config", daemon->config},
                     {"api", daemon->api}};
    if (daemon->api.empty()) {
      api_problem = "it has no API (api.listen is \"\"): no writer or reload figures";
    } else if (auto r = call_daemon(*daemon, target->config.get(), "GET", "/api/status"); !r) {
      api_problem =
          "its API at " + daemon->api + " does not answer (" + httplib::to_string(r.error()) + ")";
    } else if (r->status == 401) {
      api_problem =
          "its API needs api.token, which this job file does not give here (its "
          "${VAR} unset in this shell?)";
    } else if (r->status != 200) {
      api_problem = "its API answered " + std::to_string(r->status);
    } else {
      live = nlohmann::json::parse(r->body, nullptr, false);
      if (live.is_discarded()) api_problem = "its API answered something that is not JSON";
    }
  }
  out["running"] = to_json(running);
  if (live.is_object()) {
    for (auto key : {"jobs", "paused", "requests_in_flight", "writer", "last_reload"})
      if (live.contains(key)) out[key] = live[key];
  } else if (!api_problem.empty()) {
    out["api_problem"] = api_problem;
  }
  if (*format == Format::kJson) {
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
    return 0;
  }
  std::cout << describe_daemon(db, daemon) << '\n';
  if (!daemon) return 0;
  if (running.rows.empty()) {
    std::cout << "running now: no run\n";
  } else {
    std::cout << "running now:\n";
    print(std::cout, running, Format::kTable, terminal_width());
  }
  if (live.is_object()) {
    const auto& w = live["writer"];
    std::cout << "jobs: " << live.value("jobs", 0) << " scheduled, " << live.value("paused", 0)
              << " paused; " << live.value("requests_in_flight", 0) << " requests in flight\n";
    std::cout << "writer: " << w.value("queued", 0) << " rows queued, " << w.value("committed", 0)
              << " committed since start";
    if (!w.value("last_error", std::string()).empty())
      std::cout << "; failing: " << w.value("last_error", std::string());
    std::cout << '\n';
    const auto& reload = live["last_reload"];
    if (reload["at"].is_null()) {
      std::cout << "last reload: none since the start\n";
    } else {
      std::cout << "last reload: " << (reload.value("ok", false) ? "ok" : "FAILED") << " at "
                << reload["at"].get<std::string>() << '\n';
      for (const auto& e : reload["errors"]) std::cout << "  " << e.get<std::string>() << '\n';
    }
  } else {
    std::cout << "(" << api_problem << ")\n";
  }
  return 0;
}

// `scraperd pause JOB` / `resume JOB`: a row in the database's `paused` table (or none).
int cmd_pause(const Args& args, bool pause) {
  const char* verb = pause ? "pause" : "resume";
  if (args.positional.size() != 1) return usage_error(std::string(verb) + " needs one job name");
  const std::string& name = args.positional[0];
  auto target = query_target(args);
  if (!target) return 1;
  bool in_file = false;
  if (target->config)
    for (const auto& j : target->config->jobs) in_file = in_file || j.name == name;
  try {
    bool in_db = std::filesystem::exists(target->db) && storage::job_known(target->db, name);
    if (!in_file && !in_db) {
      std::cerr << "scraperd: no job '" << name << "' in "
                << (target->config ? target->config->source + " or " : std::string()) << target->db
                << '\n';
      return 1;
    }
    // A daemon with an API on this database acts on it at once (and writes the row itself).
    if (auto daemon = daemon_on(target->db); daemon && !daemon->api.empty()) {
      auto r = call_daemon(*daemon, target->config.get(), "POST",
                           "/api/jobs/" + path_segment(name) + "/" + verb);
      if (r && r->status == 200) {
        std::cout << "job '" << name << "' " << (pause ? "paused" : "resumed")
                  << " by the daemon (pid " << daemon->pid << ")"
                  << (pause ? ": no run of it starts until `scraperd resume " + name + "`"
                            : ": it runs at its next due time")
                  << '\n';
        return 0;
      }
      std::cerr << "scraperd: the daemon's API at " << daemon->api << " did not take it ("
                << (r ? "HTTP " + std::to_string(r->status) + ": " + r->body
                      : httplib::to_string(r.error()))
                << "); writing the database: the daemon sees it at its next reload\n";
    }
    bool changed = storage::set_paused(target->db, name, pause, storage::Clock::now());
    if (!changed)
      std::cout << "job '" << name << "' was " << (pause ? "paused" : "not paused") << " already\n";
    else if (pause)
      std::cout << "job '" << name << "' paused: no run of it starts until `scraperd resume "
                << name << "` (a running daemon sees it at its next reload)\n";
    else
      std::cout << "job '" << name << "' resumed: it runs at its next due time (a running "
                << "daemon sees it at its next reload)\n";
  } catch (const storage::Error& e) {
    std::cerr << "scraperd: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

}  // namespace scraperd::daemon
