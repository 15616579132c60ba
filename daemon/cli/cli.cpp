#include "daemon/cli/cli.h"

#include <fmt/format.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/duration.h"
#include "config/schema.h"
#include "config/text.h"
#include "config/url.h"
#include "daemon/cli/commands.h"
#include "daemon/render/render.h"
#include "daemon/schedule/schedule.h"
#include "daemon/service/json_log.h"
#include "daemon/service/service.h"
#include "daemon/service/systemd.h"

namespace scraperd::daemon {
namespace {

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
    {"--from", "--from FILE        the SQLite database to copy"},
    {"--to", "--to URL           the PostgreSQL database (postgresql://user@host/db), empty"},
    {"--once", "--once             run every job once, then exit"},
    {"--node-id",
     "--node-id NAME     this daemon's id among the nodes on one PostgreSQL (default: host name)"},
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
       "reloads the file. With --once, runs every job once, commits and exits. On PostgreSQL\n"
       "(storage.url) the daemon is a node of a cluster: several share the jobs (--node-id).",
       {"--config", "--db", "--log-level", "--node-id"},
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
      {"migrate",
       "copy a SQLite history into PostgreSQL (for storage.url)",
       "migrate --from FILE --to URL",
       "Copies every job, run, result, error, URL state and pause of the SQLite database into\n"
       "the PostgreSQL database (created tables and all, in one transaction; it must hold no\n"
       "history yet), ids and times kept. Then set storage.url to the URL. Stop the daemon\n"
       "first: rows it writes meanwhile are not copied.",
       {"--from", "--to", "--log-level"},
       {},
       "scraperd migrate --from /var/lib/scraperd/scraperd.db --to "
       "postgresql://scraperd@/scraperd"},
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

}  // namespace

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

namespace {

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

}  // namespace

// Loads the config, printing its errors; null when it has any. Its warnings (which never stop
// a load) are printed before the errors, as "FILE:LINE:COL: warning: ...", when `warnings` is
// null; otherwise they are handed back there, for the caller to log or drop.
std::shared_ptr<const config::Config> load_config(const std::string& path,
                                                  std::vector<config::Diagnostic>* warnings,
                                                  const config::LoadOptions& options) {
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
  if (name == "migrate") return cmd_migrate(args);
  return cmd_query(name, args);
}

}  // namespace scraperd::daemon
