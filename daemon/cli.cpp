#include "daemon/cli.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/duration.h"
#include "config/schema.h"
#include "config/url.h"
#include "daemon/engine.h"
#include "daemon/extract.h"
#include "daemon/fetch.h"
#include "daemon/format.h"
#include "daemon/json_log.h"
#include "daemon/schedule.h"
#include "daemon/systemd.h"
#include "storage/store.h"

namespace scraperd::daemon {
namespace {

constexpr const char* kDefaultConfig = "/etc/scraperd/jobs.yaml";

constexpr const char* kUsage = R"(usage: scraperd COMMAND [options]

commands:
  run [--once]            run the jobs until SIGTERM/SIGINT (--once: every job once, then exit)
      [--debug-loop[=MS]] log every event-loop step that holds the loop over MS (default 100)
  check                   validate the job file: one line per job, or every error; exit 1 on errors
  try JOB [--url URL]     fetch one page with the job's settings and print its fields as JSON
      [--html FILE]       (or read a saved page instead); writes nothing to the database
  results [JOB]           stored results, newest first   [--since T] [--changed] [--limit N]
  errors [JOB]            stored errors, newest first    [--since T] [--kind K] [--limit N]
  runs [JOB]              job runs, newest first          [--since T] [--limit N]
  jobs                    every job: schedule, last run, last status, success over 24 h
  schema                  print the JSON Schema of job files (for editors and validators)

options:
  --config FILE      job file (default /etc/scraperd/jobs.yaml)
  --db FILE          database (default: storage.path of the job file)
  --since T          a duration back from now (1h, 30m, 2d) or a UTC time (2026-11-24 08:00)
  --limit N          rows to show, 1 to 1000000 (default 20)
  --kind K           dns, connect, timeout, tls, http, too_large, read, redirect_loop,
                     robots, cancelled, parse
  --format F         table (default), json, ndjson, csv
  --log-level LEVEL  trace, debug, info, warn, error (default: log.level of the job file)
  -h, --help         this text
  --version          print the version

exit status:
  0  success
  1  an operational error: a bad job file, the database in use by another `run` or unusable,
     the API address taken, rows that could not be committed; try: the fetch failed
  2  bad usage
  3  run --once: some URLs failed (`scraperd errors` says which); try: a field with
     `required: true` matched nothing
)";

// Options after the command: "--name value" pairs and bare "--flag"s.
struct Args {
  std::map<std::string, std::string> values;
  std::vector<std::string> flags;
  std::vector<std::string> positional;
  std::string error;

  bool has(const std::string& flag) const {
    return std::find(flags.begin(), flags.end(), flag) != flags.end();
  }
  std::optional<std::string> get(const std::string& name) const {
    auto it = values.find(name);
    if (it == values.end()) return std::nullopt;
    return it->second;
  }
};

// `flags` may carry an inline value ("--debug-loop=50"), stored in `values`.
Args parse_args(int argc, char** argv, int first, const std::vector<std::string>& with_value,
                const std::vector<std::string>& flags) {
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool inline_value = false;
    if (auto eq = a.find('='); a.starts_with("--") && eq != std::string::npos) {
      value = a.substr(eq + 1);
      a = a.substr(0, eq);
      inline_value = true;
    }
    if (std::find(with_value.begin(), with_value.end(), a) != with_value.end()) {
      if (!inline_value) {
        if (i + 1 >= argc) {
          args.error = a + " needs a value";
          return args;
        }
        value = argv[++i];
      }
      args.values[a] = value;
    } else if (std::find(flags.begin(), flags.end(), a) != flags.end()) {
      args.flags.push_back(a);
      if (inline_value) args.values[a] = value;
    } else if (!a.starts_with("-") || a == "-") {
      args.positional.push_back(a);
    } else {
      args.error = "unknown option '" + a + "'";
      return args;
    }
  }
  return args;
}

int usage_error(const std::string& message) {
  std::cerr << "scraperd: " << message << "\n\n" << kUsage;
  return 2;
}

// "<N>", the syslog priority of a message, which journald reads off the start of each line.
class JournalPriority : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    // trace, debug, info, warn, err, critical, off
    static constexpr std::string_view kPriority[] = {"<7>", "<7>", "<6>", "<4>",
                                                     "<3>", "<2>", "<6>"};
    auto p = kPriority[static_cast<int>(msg.level)];
    dest.append(p.data(), p.data() + p.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JournalPriority>();
  }
};

// Under systemd (stderr is the journal) one line per event, "<N>" priority, no timestamp:
// journald adds its own. Elsewhere a readable, coloured console format.
void setup_logging(const Args& args) {
  std::shared_ptr<spdlog::logger> logger;
  if (systemd::logging_to_journal()) {
    logger = spdlog::stderr_logger_mt("scraperd");
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JournalPriority>('*').set_pattern("%*%v");
    logger->set_formatter(std::move(formatter));
  } else {
    logger = spdlog::stderr_color_mt("scraperd");
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  }
  spdlog::set_default_logger(logger);
  auto level = spdlog::level::from_str(args.get("--log-level").value_or("info"));
  spdlog::set_level(level);
}

// Loads the config, printing its errors; null when it has any. Its warnings (which never stop
// a load) are printed before the errors, as "FILE:LINE:COL: warning: ...", when `warnings` is
// null; otherwise they are handed back there, for the caller to log or drop.
std::shared_ptr<const config::Config> load_config(
    const std::string& path, std::vector<config::Diagnostic>* warnings = nullptr) {
  auto loaded = config::load_file(path);
  if (warnings) {
    *warnings = std::move(loaded.warnings);
  } else {
    for (auto d : loaded.warnings) {
      d.message = "warning: " + d.message;
      std::cerr << d.str() << '\n';
    }
  }
  for (const auto& d : loaded.errors) std::cerr << d.str() << '\n';
  if (!loaded.ok())
    std::cerr << path << ": " << loaded.errors.size()
              << (loaded.errors.size() == 1 ? " error" : " errors") << '\n';
  return loaded.config;
}

// A whole decimal number in [min, max], or nullopt.
std::optional<int> parse_count(const std::string& text, int min, int max) {
  int n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < min || n > max)
    return std::nullopt;
  return n;
}

// `scraperd try`: the loop of editing a job. Fetch (or read) one page exactly as the job
// would, print the extracted fields, links and timings as JSON; store nothing.
int cmd_try(const Args& args) {
  if (args.positional.size() != 1) return usage_error("try needs one job name");
  auto config = load_config(args.get("--config").value_or(kDefaultConfig));
  if (!config) return 1;
  const std::string& name = args.positional[0];
  auto job = std::find_if(config->jobs.begin(), config->jobs.end(),
                          [&](const config::Job& j) { return j.name == name; });
  if (job == config->jobs.end()) {
    std::string names;
    for (const auto& j : config->jobs) names += (names.empty() ? "" : ", ") + j.name;
    std::cerr << "scraperd: no job '" << name << "' in " << config->source << " (jobs: " << names
              << ")\n";
    return 1;
  }
  nlohmann::ordered_json out;
  FetchResult page;
  std::string url = args.get("--url").value_or(job->urls.front());
  if (auto file = args.get("--html")) {
    std::ifstream in(*file, std::ios::binary);
    if (!in) {
      std::cerr << "scraperd: cannot read " << *file << '\n';
      return 1;
    }
    std::stringstream body;
    body << in.rdbuf();
    page.body = body.str();
    page.status = 200;
    page.content_type = file->ends_with(".json") ? "application/json" : "text/html";
    out["file"] = *file;
  } else {
    if (!config::parse_url(url)) return usage_error("--url must be an absolute http(s) URL");
    page = fetch_blocking(request_for(*job, url));
    out["url"] = url;
    if (!page.final_url.empty()) out["final_url"] = page.final_url;
    out["status"] = page.status;
    out["elapsed_ms"] = std::round(std::chrono::duration<double, std::milli>(page.elapsed).count());
    out["bytes"] = page.body.size();
    out["content_type"] = page.content_type;
    if (!page.ok()) {
      out["error"] = {{"kind", page.error_kind}, {"message", page.error_message}};
      std::cout << out.dump(2) << '\n';
      return 1;
    }
  }
  auto start = std::chrono::steady_clock::now();
  if (!job->extract.empty()) {
    FieldExtractor extractor(job->extract);
    Extracted e = extractor.extract(page.body, page.content_type);
    if (!e.problem.empty()) out["problem"] = e.problem;
    out["fields"] = nlohmann::ordered_json::parse(e.data);
    out["missing"] = e.missing;
  }
  if (job->follow && is_html(page.content_type)) {
    LinkFinder finder(*job->follow);
    out["links"] =
        finder.find(page.body, page.content_type, page.final_url.empty() ? url : page.final_url,
                    static_cast<std::size_t>(job->follow->max_pages));
  }
  out["extract_ms"] =
      std::round(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
                     .count() *
                 1000) /
      1000;
  std::vector<std::string> required_missing;
  if (out.contains("missing"))
    for (const auto& f : job->extract)
      if (f.required &&
          std::find(out["missing"].begin(), out["missing"].end(), f.name) != out["missing"].end())
        required_missing.push_back(f.name);
  if (!required_missing.empty()) out["required_missing"] = required_missing;
  std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << '\n';
  if (out.contains("problem") || page.status >= 400) return 1;
  return required_missing.empty() ? 0 : 3;
}

int cmd_run(const Args& args) {
  // A stop or reload signal that comes while the jobs load and the database opens is held
  // until the event loop can act on it (run() unblocks them on the loop thread) instead of
  // killing the process. Threads started from here on keep them blocked.
  hold_signals();
  RunOptions options;
  options.once = args.has("--once");
  if (args.get("--once")) return usage_error("--once takes no value");
  if (args.has("--debug-loop")) {
    auto ms = parse_count(args.get("--debug-loop").value_or("100"), 1, 60'000);
    if (!ms) return usage_error("--debug-loop=MS: MS must be a number of milliseconds, 1 to 60000");
    options.debug_loop = std::chrono::milliseconds(*ms);
  }
  options.config_path = args.get("--config").value_or(kDefaultConfig);
  std::vector<config::Diagnostic> warnings;
  auto config = load_config(options.config_path, &warnings);
  if (!config) return 1;
  options.log_level_fixed = args.get("--log-level").has_value();
  if (!options.log_level_fixed) spdlog::set_level(spdlog::level::from_str(config->log.level));
  if (config->log.format == "json") use_json_log_format(systemd::logging_to_journal());
  for (const auto& w : warnings) spdlog::warn("{}", w.str());
  options.db_path = args.get("--db").value_or(config->storage.path);
  return run(config, options);
}

// "every 15m" or "cron '0 3 * * *' Europe/Paris, next 2026-11-25 02:00 UTC".
std::string describe_schedule(const config::Schedule& s) {
  if (!s.cron) return describe(s);
  auto next = first_due(s, "", std::chrono::system_clock::now());
  if (next == TimePoint::max()) return describe(s) + ", never fires";
  return describe(s) + ", next " + storage::format_time(next).substr(0, 16) + " UTC";
}

int cmd_check(const Args& args) {
  auto config = load_config(args.get("--config").value_or(kDefaultConfig));
  if (!config) return 1;
  for (const auto& job : config->jobs) {
    std::vector<std::string> hosts;
    for (const auto& u : job.urls) {
      auto host = config::parse_url(u)->host;
      if (std::find(hosts.begin(), hosts.end(), host) == hosts.end()) hosts.push_back(host);
    }
    std::string host_list = hosts[0];
    if (hosts.size() > 1) host_list += " and " + std::to_string(hosts.size() - 1) + " more";
    std::cout << job.name << ": " << describe_schedule(job.schedule) << ", " << job.urls.size()
              << (job.urls.size() == 1 ? " url" : " urls") << " on " << host_list
              << (job.paused ? " (paused)" : "") << '\n';
  }
  std::cout << config->source << ": ok, " << config->jobs.size()
            << (config->jobs.size() == 1 ? " job" : " jobs") << '\n';
  return 0;
}

// The database a query command reads: --db, else storage.path of --config.
std::optional<std::string> query_db(const Args& args) {
  if (auto db = args.get("--db")) return db;
  std::string path = args.get("--config").value_or(kDefaultConfig);
  if (!args.get("--config") && !std::filesystem::exists(path)) return std::string("scraperd.db");
  std::vector<config::Diagnostic> warnings;  // not for a query: `check` and `run` show them
  auto config = load_config(path, &warnings);
  if (!config) return std::nullopt;
  return config->storage.path;
}

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

  auto db = query_db(args);
  if (!db) return 1;
  try {
    storage::Table table = command == "results"  ? storage::query_results(*db, filter)
                           : command == "errors" ? storage::query_errors(*db, filter)
                           : command == "runs"   ? storage::query_runs(*db, filter)
                                                 : storage::query_jobs(*db);
    print(std::cout, table, *format, terminal_width());
  } catch (const storage::Error& e) {
    std::cerr << "scraperd: " << e.what() << '\n';
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("no command given");
  std::string command = argv[1];
  if (command == "-h" || command == "--help" || command == "help") {
    std::cout << kUsage;
    return 0;
  }
  if (command == "--version") {
    std::cout << "scraperd " << SCRAPERD_VERSION << '\n';
    return 0;
  }

  if (command == "schema") {
    if (argc > 2) return usage_error("schema takes no arguments");
    std::cout << config::job_schema();
    return 0;
  }

  Args args;
  if (command == "run") {
    args =
        parse_args(argc, argv, 2, {"--config", "--db", "--log-level"}, {"--once", "--debug-loop"});
  } else if (command == "try") {
    args = parse_args(argc, argv, 2, {"--config", "--url", "--html", "--log-level"}, {});
  } else if (command == "check") {
    args = parse_args(argc, argv, 2, {"--config", "--log-level"}, {});
  } else if (command == "results") {
    args = parse_args(argc, argv, 2,
                      {"--config", "--db", "--limit", "--since", "--format", "--log-level"},
                      {"--changed"});
  } else if (command == "errors") {
    args = parse_args(
        argc, argv, 2,
        {"--config", "--db", "--limit", "--since", "--kind", "--format", "--log-level"}, {});
  } else if (command == "runs" || command == "jobs") {
    args = parse_args(argc, argv, 2,
                      {"--config", "--db", "--limit", "--since", "--format", "--log-level"}, {});
  } else {
    return usage_error("unknown command '" + command + "'");
  }
  if (!args.error.empty()) return usage_error(args.error);
  setup_logging(args);

  if (!args.positional.empty() && (command == "run" || command == "check"))
    return usage_error("unexpected argument '" + args.positional[0] + "'");
  if (command == "run") return cmd_run(args);
  if (command == "check") return cmd_check(args);
  if (command == "try") return cmd_try(args);
  return cmd_query(command, args);
}

}  // namespace scraperd::daemon
