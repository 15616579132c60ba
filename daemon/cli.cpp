#include "daemon/cli.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <charconv>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/duration.h"
#include "config/url.h"
#include "daemon/engine.h"
#include "daemon/schedule.h"
#include "daemon/table.h"
#include "storage/store.h"

namespace scraperd::daemon {
namespace {

constexpr const char* kDefaultConfig = "/etc/scraperd/jobs.yaml";

constexpr const char* kUsage = R"(usage: scraperd COMMAND [options]

commands:
  run      run the jobs until SIGTERM/SIGINT
             --config FILE   job file (default /etc/scraperd/jobs.yaml)
             --db FILE       database (default: storage.path from the config)
             --once          run every job once, commit, exit
  check    validate a job file; prints one line per job, exit 1 on errors
             --config FILE
  results  show the newest stored results
  errors   show the newest stored errors
             --db FILE | --config FILE
             --limit N       rows to show (default 20)

common options:
  --log-level LEVEL  trace, debug, info, warn, error (default info)
  -h, --help         this text
  --version          print the version
)";

// Options after the command: "--name value" pairs and bare "--flag"s.
struct Args {
  std::map<std::string, std::string> values;
  std::vector<std::string> flags;
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
    } else if (!inline_value && std::find(flags.begin(), flags.end(), a) != flags.end()) {
      args.flags.push_back(a);
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

void setup_logging(const Args& args) {
  auto logger = spdlog::stderr_color_mt("scraperd");
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");
  spdlog::set_default_logger(logger);
  auto level = spdlog::level::from_str(args.get("--log-level").value_or("info"));
  spdlog::set_level(level);
}

// Loads the config, printing its errors; null when it has any.
std::shared_ptr<const config::Config> load_config(const std::string& path) {
  auto loaded = config::load_file(path);
  for (const auto& d : loaded.errors) std::cerr << d.str() << '\n';
  if (!loaded.ok())
    std::cerr << path << ": " << loaded.errors.size()
              << (loaded.errors.size() == 1 ? " error" : " errors") << '\n';
  return loaded.config;
}

int cmd_run(const Args& args) {
  auto config = load_config(args.get("--config").value_or(kDefaultConfig));
  if (!config) return 1;
  if (!args.get("--log-level")) spdlog::set_level(spdlog::level::from_str(config->log.level));
  RunOptions options;
  options.db_path = args.get("--db").value_or(config->storage.path);
  options.once = args.has("--once");
  return run(config, options);
}

// "every 15m" or "cron '0 3 * * *' Europe/Paris, next 2026-11-25 03:00 UTC".
std::string describe_schedule(const config::Schedule& s) {
  if (!s.cron) return "every " + config::format_duration(s.every);
  std::string text = "cron '" + s.cron->text + "'";
  if (s.timezone.name() != "UTC") text += " " + s.timezone.name();
  auto next = first_due(s, std::chrono::system_clock::now());
  if (next == TimePoint::max()) return text + ", never fires";
  return text + ", next " + storage::format_time(next).substr(0, 16) + " UTC";
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
  auto config = load_config(path);
  if (!config) return std::nullopt;
  return config->storage.path;
}

std::optional<int> parse_limit(const Args& args) {
  std::string text = args.get("--limit").value_or("20");
  int n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < 1 || n > 1'000'000)
    return std::nullopt;
  return n;
}

int cmd_query(const std::string& what, const Args& args) {
  auto limit = parse_limit(args);
  if (!limit) return usage_error("--limit must be a number from 1 to 1000000");
  auto db = query_db(args);
  if (!db) return 1;
  std::vector<std::vector<std::string>> rows;
  try {
    if (what == "results") {
      for (const auto& r : storage::recent_results(*db, *limit))
        rows.push_back({storage::format_time(r.fetched_at), r.job, std::to_string(r.status),
                        std::to_string(r.bytes), fmt::format("{:.0f}", r.elapsed_ms), r.url});
      print_table(std::cout, {"FETCHED_AT (UTC)", "JOB", "STATUS", "BYTES", "MS", "URL"}, rows,
                  terminal_width());
    } else {
      for (const auto& e : storage::recent_errors(*db, *limit))
        rows.push_back({storage::format_time(e.fetched_at), e.job, e.kind,
                        e.status ? std::to_string(*e.status) : "-", e.url, e.message});
      print_table(std::cout, {"FETCHED_AT (UTC)", "JOB", "KIND", "STATUS", "URL", "MESSAGE"}, rows,
                  terminal_width());
    }
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

  Args args;
  if (command == "run") {
    args = parse_args(argc, argv, 2, {"--config", "--db", "--log-level"}, {"--once"});
  } else if (command == "check") {
    args = parse_args(argc, argv, 2, {"--config", "--log-level"}, {});
  } else if (command == "results" || command == "errors") {
    args = parse_args(argc, argv, 2, {"--config", "--db", "--limit", "--log-level"}, {});
  } else {
    return usage_error("unknown command '" + command + "'");
  }
  if (!args.error.empty()) return usage_error(args.error);
  setup_logging(args);

  if (command == "run") return cmd_run(args);
  if (command == "check") return cmd_check(args);
  return cmd_query(command, args);
}

}  // namespace scraperd::daemon
