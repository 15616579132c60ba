#include "daemon/cli/cli.h"

#include <fmt/format.h>
#include <httplib.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
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
#include "config/text.h"
#include "config/url.h"
#include "daemon/service/service.h"
#include "daemon/extract/extract.h"
#include "daemon/crawl/fetch.h"
#include "daemon/cli/format.h"
#include "daemon/service/json_log.h"
#include "daemon/render/render.h"
#include "daemon/schedule/schedule.h"
#include "daemon/service/systemd.h"
#include "storage/db_lock.h"
#include "storage/store.h"

namespace scraperd::daemon {
namespace {

constexpr const char* kDefaultConfig = "/etc/scraperd/jobs.yaml";

// One command of the command line. Its help (`scraperd help NAME`, `scraperd NAME --help`) is
// built from `usage`, `about`, the options it takes (described in kOptions) and `example`.
struct Command {
  std::string_view name;
  std::string_view summary;             // one line in `scraperd --help`
  std::string_view usage;               // after "scraperd "
  std::string_view about;               // what it does, a few lines
  std::vector<std::string> with_value;  // options taking a value
  std::vector<std::string> flags;       // options without one (a few take "=VALUE")
  std::string_view example;
};

// Options as `scraperd help COMMAND` describes them.
constexpr std::pair<std::string_view, std::string_view> kOptions[] = {
    {"--config", "--config FILE      job file (default /etc/scraperd/jobs.yaml)"},
    {"--db", "--db FILE          database (default: storage.path of the job file)"},
    {"--once", "--once             run every job once, then exit"},
    {"--debug-loop",
     "--debug-loop[=MS]  log every event-loop step that holds the loop over MS (default 100)"},
    {"--url", "--url URL          fetch this URL instead of the job's first"},
    {"--html", "--html FILE        read a saved page instead of fetching"},
    {"--save", "--save DIR         write the page read to DIR/page.html (and page.png)"},
    {"--since",
     "--since T          a duration back from now (1h, 30m, 2d) or a UTC time (2026-11-24 08:00)"},
    {"--limit", "--limit N          rows to show, 1 to 1000000 (default 20)"},
    {"--changed", "--changed          only results whose content changed"},
    {"--kind",
     "--kind K           dns, connect, timeout, tls, http, too_large, read, redirect_loop,\n"
     "                     robots, cancelled, parse"},
    {"--format", "--format F         table (default), json, ndjson, csv"},
    {"--log-level",
     "--log-level LEVEL  trace, debug, info, warn, error (default: log.level of the job file)"},
};

const std::vector<Command>& commands() {
  static const std::vector<Command> table = {
      {"run",
       "run the jobs until SIGTERM/SIGINT (--once: every job once, then exit)",
       "run [--once] [options]",
       "Runs the jobs of the job file on their schedules until SIGTERM or SIGINT; SIGHUP\n"
       "reloads the file. With --once, runs every job once, commits and exits.",
       {"--config", "--db", "--log-level"},
       {"--once", "--debug-loop"},
       "scraperd run --config jobs.yaml --once"},
      {"check",
       "validate the job file: one line per job, or every error; exit 1 on errors",
       "check [options]",
       "Reads the job file and what it includes and reports every error at once as\n"
       "FILE:LINE:COL: message, then warnings; exit 1 when there is an error.",
       {"--config", "--log-level"},
       {},
       "scraperd check --config /etc/scraperd/jobs.yaml"},
      {"try",
       "fetch one page with a job's settings and print its fields as JSON",
       "try JOB [--url URL | --html FILE] [--save DIR] [options]",
       "Fetches the job's first URL (or --url, or reads --html) exactly as the job would and\n"
       "prints the status, timings, extracted fields and followed links as JSON. Writes\n"
       "nothing to the database. --save DIR writes the page read (the rendered DOM for\n"
       "render: chromium jobs) to DIR/page.html, and with render.screenshot a PNG to DIR/page.png.",
       {"--config", "--url", "--html", "--save", "--log-level"},
       {},
       "scraperd try prices --url https://shop.example/p/7"},
      {"results",
       "stored results, newest first",
       "results [JOB] [options]",
       "Stored results (one row per page fetched), newest first.",
       {"--config", "--db", "--since", "--limit", "--format", "--log-level"},
       {"--changed"},
       "scraperd results prices --since 1h --changed --format csv"},
      {"errors",
       "stored errors, newest first",
       "errors [JOB] [options]",
       "Stored errors (one row per failed attempt), newest first.",
       {"--config", "--db", "--since", "--kind", "--limit", "--format", "--log-level"},
       {},
       "scraperd errors --kind timeout --since 2d"},
      {"runs",
       "job runs, newest first",
       "runs [JOB] [options]",
       "Job runs, newest first: when each was due and started, its lag, URLs, ok and failed.",
       {"--config", "--db", "--since", "--limit", "--format", "--log-level"},
       {},
       "scraperd runs prices --limit 5"},
      {"jobs",
       "every job: state, schedule, last run, last status, success over 24 h",
       "jobs [options]",
       "Every job of the database and of the job file: its state (active, running, paused,\n"
       "never run, removed: in the database, no longer in the file), schedule, last run and\n"
       "its status, success over 24 h, next due time. The first line says whether a daemon\n"
       "runs on the database (on stderr with --format json, ndjson or csv).",
       {"--config", "--db", "--limit", "--format", "--log-level"},
       {},
       "scraperd jobs --format json"},
      {"status",
       "is a daemon running on the database; its runs going on, writer, last reload",
       "status [options]",
       "Whether a daemon runs on the database (from DATABASE.lock: pid, since, job file, API\n"
       "address), the runs going on with their progress (URLs done of total, ok, failed),\n"
       "and, from the daemon's API when it has one, its writer's queue and last error and\n"
       "the outcome of its last reload.",
       {"--config", "--db", "--format", "--log-level"},
       {},
       "scraperd status --db /var/lib/scraperd/results.db"},
      {"pause",
       "pause a job: no run of it starts until it is resumed",
       "pause JOB [options]",
       "Pauses the job, in the database: the scheduler starts no run of it (a run going on\n"
       "finishes), through reloads and restarts, until `scraperd resume JOB`. The job stays\n"
       "in `scraperd jobs` as paused.",
       {"--config", "--db", "--log-level"},
       {},
       "scraperd pause prices"},
      {"resume",
       "resume a paused job",
       "resume JOB [options]",
       "Resumes a job paused by `scraperd pause`: it runs again from its next due time.",
       {"--config", "--db", "--log-level"},
       {},
       "scraperd resume prices"},
      {"schema",
       "print the JSON Schema of job files (for editors and validators)",
       "schema",
       "Prints the JSON Schema (draft 2020-12) of job files, made from the loader's own key\n"
       "tables; /usr/share/scraperd/jobs.schema.json holds the same text.",
       {},
       {},
       "scraperd schema > jobs.schema.json"},
  };
  return table;
}

const Command* find_command(std::string_view name) {
  for (const auto& c : commands())
    if (c.name == name) return &c;
  return nullptr;
}

// " (did you mean 'results'?)" for a word close to a command's name.
std::string suggest_command(const std::string& word) {
  std::vector<std::string_view> names = {"help", "version"};
  for (const auto& c : commands()) names.push_back(c.name);
  return config::did_you_mean(word, names);
}

std::string usage_text() {
  std::string out = "usage: scraperd COMMAND [options]\n\ncommands:\n";
  for (const auto& c : commands()) out += fmt::format("  {:<9}{}\n", c.name, c.summary);
  out += fmt::format("  {:<9}{}\n  {:<9}{}\n", "help",
                     "help COMMAND: a command's options and an example", "version",
                     "print the version");
  out +=
      "\nscraperd COMMAND --help (or scraperd help COMMAND) says more about each.\n"
      "\nexit status:\n"
      "  0  done (run --once: every URL succeeded; check: no error)\n"
      "  1  an operational error: a bad job file, the database in use by another `run` or\n"
      "     unusable, the API address taken, rows that could not be committed; try: the\n"
      "     fetch failed\n"
      "  2  bad usage: an unknown command or option, a bad option value\n"
      "  3  run --once: some URLs failed (`scraperd errors` says which); try: a field with\n"
      "     `required: true` matched nothing\n";
  return out;
}

std::string command_help(const Command& c) {
  std::string out = fmt::format("usage: scraperd {}\n\n{}\n\noptions:\n", c.usage, c.about);
  std::vector<std::string> names = c.with_value;
  names.insert(names.end(), c.flags.begin(), c.flags.end());
  for (const auto& [name, text] : kOptions)
    if (std::find(names.begin(), names.end(), name) != names.end())
      out += fmt::format("  {}\n", text);
  out += "  -h, --help         this text\n";
  out += fmt::format("\nexample:\n  {}\n", c.example);
  return out;
}

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

// " (did you mean '--limit'?)" for an option close to one `command` takes.
std::string suggest_option(const std::string& word, const Command& command) {
  std::vector<std::string_view> names(command.with_value.begin(), command.with_value.end());
  names.insert(names.end(), command.flags.begin(), command.flags.end());
  return config::did_you_mean(word, names);
}

// `flags` may carry an inline value ("--debug-loop=50"), stored in `values`.
Args parse_args(int argc, char** argv, int first, const Command& command) {
  const auto& with_value = command.with_value;
  const auto& flags = command.flags;
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    bool inline_value = false;
    if (a == "-h" || a == "--help") {
      args.flags.push_back("--help");
      continue;
    }
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
      args.error = "unknown option '" + a + "' for " + std::string(command.name) +
                   suggest_option(a, command);
      std::string others;  // the commands it is an option of, if any
      for (const auto& c : commands())
        if (std::find(c.with_value.begin(), c.with_value.end(), a) != c.with_value.end() ||
            std::find(c.flags.begin(), c.flags.end(), a) != c.flags.end())
          others += (others.empty() ? "" : ", ") + std::string(c.name);
      if (!others.empty())
        args.error = "option '" + a + "' does not apply to " + std::string(command.name) +
                     " (it is an option of " + others + ")";
      return args;
    }
  }
  return args;
}

// The command being run, for usage_error.
const Command* current_command = nullptr;

// The message, then how the command being run (or scraperd, before one) is used; exit status 2.
int usage_error(const std::string& message) {
  const Command* command = current_command;
  std::cerr << "scraperd: " << message << "\n";
  if (command)
    std::cerr << "usage: scraperd " << command->usage << "  (scraperd help " << command->name
              << " says more)\n";
  else
    std::cerr << '\n' << usage_text();
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
    const std::string& path, std::vector<config::Diagnostic>* warnings = nullptr,
    const config::LoadOptions& options = {}) {
  auto loaded = config::load_file(path, options);
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
    std::string png;
    const bool save = args.get("--save").has_value();
    page = job->render.chromium  // render: chromium loads it in the browser, as the daemon does
               ? render::render_blocking(request_for(*job, url), job->render, config->render,
                                         save && job->render.screenshot ? &png : nullptr)
               : fetch_blocking(request_for(*job, url));
    if (save) {
      std::filesystem::path dir = *args.get("--save");
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      std::ofstream html(dir / "page.html", std::ios::binary);
      html << page.body;
      if (!png.empty()) std::ofstream(dir / "page.png", std::ios::binary) << png;
      if (!html) {
        std::cerr << "scraperd: cannot write " << (dir / "page.html").string() << '\n';
        return 1;
      }
      out["saved"] = (dir / "page.html").string();
      if (!png.empty()) out["screenshot"] = (dir / "page.png").string();
    }
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
  auto config =
      load_config(args.get("--config").value_or(kDefaultConfig), nullptr, {.probe_storage = true});
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
  target.db = args.get("--db").value_or(target.config ? target.config->storage.path
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

// `scraperd status`: the daemon from the lock, its runs from the database, the rest from its
// API.
int cmd_status(const Args& args) {
  auto format = parse_format(args.get("--format").value_or("table"));
  if (!format) return usage_error("--format must be table, json, ndjson or csv");
  if (*format != Format::kTable && *format != Format::kJson)
    return usage_error("status prints --format table or json");
  auto target = query_target(args);
  if (!target) return 1;
  const std::string& db = target->db;
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

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage_error("no command given");
  std::string name = argv[1];
  if (name == "-h" || name == "--help") {
    std::cout << usage_text();
    return 0;
  }
  if (name == "version" || name == "--version") {
    std::cout << "scraperd " << SCRAPERD_VERSION << '\n';
    return 0;
  }
  if (name == "help") {
    if (argc == 2) {
      std::cout << usage_text();
      return 0;
    }
    const Command* about = find_command(argv[2]);
    if (!about || argc > 3)
      return usage_error(argc > 3 ? "help takes one command"
                                  : "no command '" + std::string(argv[2]) + "'" +
                                        suggest_command(argv[2]));
    std::cout << command_help(*about);
    return 0;
  }
  const Command* command = find_command(name);
  if (!command) return usage_error("unknown command '" + name + "'" + suggest_command(name));
  current_command = command;
  Args args = parse_args(argc, argv, 2, *command);
  if (args.has("--help")) {
    std::cout << command_help(*command);
    return 0;
  }
  if (!args.error.empty()) return usage_error(args.error);
  setup_logging(args);

  if (!args.positional.empty() && (name == "run" || name == "check"))
    return usage_error("unexpected argument '" + args.positional[0] + "'");
  if (name == "schema") {
    if (!args.positional.empty()) return usage_error("schema takes no arguments");
    std::cout << config::job_schema();
    return 0;
  }
  if (name == "run") return cmd_run(args);
  if (name == "check") return cmd_check(args);
  if (name == "try") return cmd_try(args);
  if (name == "pause" || name == "resume") return cmd_pause(args, name == "pause");
  if (name == "status") return cmd_status(args);
  return cmd_query(name, args);
}

}  // namespace scraperd::daemon
