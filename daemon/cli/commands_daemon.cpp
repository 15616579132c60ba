#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
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
#include "daemon/cli/commands.h"
#include "daemon/cli/format.h"
#include "daemon/crawl/fetch.h"
#include "daemon/extract/extract.h"
#include "daemon/render/render.h"
#include "daemon/schedule/schedule.h"
#include "daemon/service/json_log.h"
#include "daemon/service/service.h"
#include "daemon/service/systemd.h"
#include "storage/store.h"

namespace scraperd::daemon {

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
  options.db_path = args.get("--db").value_or(config->storage.locator());
  options.node_id = args.get("--node-id").value_or("");
  if (args.get("--node-id") && options.node_id.empty())
    return usage_error("--node-id must not be empty");
  return run(config, options);
}

namespace {

// "every 15m" or "cron '0 3 * * *' Europe/Paris, next 2026-11-25 02:00 UTC".
std::string describe_schedule(const config::Schedule& s) {
  if (!s.cron) return describe(s);
  auto next = first_due(s, "", std::chrono::system_clock::now());
  if (next == TimePoint::max()) return describe(s) + ", never fires";
  return describe(s) + ", next " + storage::format_time(next).substr(0, 16) + " UTC";
}

}  // namespace

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

}  // namespace scraperd::daemon
