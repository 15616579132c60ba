// Internal to daemon/cli/ (cli.cpp, commands_*.cpp): what the
// command table and dispatch (cli.cpp) share with the commands. Not for other modules.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"

namespace scraperd::daemon {

constexpr const char* kDefaultConfig = "/etc/scraperd/jobs.yaml";

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

// cli.cpp: the usage error (exit status 2), the job file loaded with its diagnostics printed,
// a whole number in [min, max]. Each is described at its definition.
int usage_error(const std::string& message);
std::shared_ptr<const config::Config> load_config(
    const std::string& path, std::vector<config::Diagnostic>* warnings = nullptr,
    const config::LoadOptions& options = {});
std::optional<int> parse_count(const std::string& text, int min, int max);

// commands_daemon.cpp: try, run, check.
int cmd_try(const Args& args);
int cmd_run(const Args& args);
int cmd_check(const Args& args);

// commands_query.cpp: results, errors, runs, jobs (cmd_query), status, pause and resume.
int cmd_query(const std::string& command, const Args& args);
int cmd_status(const Args& args);
int cmd_pause(const Args& args, bool pause);

// commands_migrate.cpp: migrate (a SQLite history into PostgreSQL).
int cmd_migrate(const Args& args);

}  // namespace scraperd::daemon
