// Internal to config/: NOT a public API. The pieces the loader's files share (the Yaml tree,
// the key tables, the Loader class); code outside config/ includes config/config.h instead.
//
// The Loader's members are defined by concern:
//   config/yaml_reader.cpp    the Yaml tree, parse, the error/warn helpers and generic readers
//   config/load.cpp           the top level, jobs lists and includes, files a job file names
//   config/job.cpp            a job and `defaults` (read_common, read_job, notify), warnings
//   config/extract_rules.cpp  `extract`, `follow` and their selectors, regexes, namespaces
#pragma once

#include <cstddef>
#include <initializer_list>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace scraperd::config::detail {

using Keys = std::span<const std::string_view>;

inline constexpr std::string_view kTopKeys[] = {
    "defaults", "jobs",        "storage",          "api",    "log", "include",
    "render",   "concurrency", "shutdown_timeout", "cluster"};
inline constexpr std::string_view kIncludedKeys[] = {"jobs", "include"};
// Keys a job and `defaults` share; a job also has name, url, urls.
#define SCRAPERD_COMMON_KEYS                                                                      \
  "method", "headers", "body", "every", "cron", "timezone", "jitter", "timeout", "retries",       \
      "per_host", "robots", "max_body", "max_redirects", "user_agent", "proxy", "tls", "cookies", \
      "conditional", "http2", "follow", "namespaces", "extract", "store", "notify", "paused",     \
      "render"
inline constexpr std::string_view kDefaultKeys[] = {SCRAPERD_COMMON_KEYS};
inline constexpr std::string_view kJobKeys[] = {"name", "url", "urls", SCRAPERD_COMMON_KEYS};
#undef SCRAPERD_COMMON_KEYS
inline constexpr std::string_view kStorageKeys[] = {"path", "url", "keep"};
inline constexpr std::string_view kClusterKeys[] = {"lease", "heartbeat"};
inline constexpr std::string_view kApiKeys[] = {"listen", "token", "token_file"};
inline constexpr std::string_view kLogKeys[] = {"level", "format"};
inline constexpr std::string_view kTimeoutKeys[] = {"connect", "total"};
inline constexpr std::string_view kRetryKeys[] = {"max", "backoff", "max_backoff", "max_stall",
                                                  "on_status"};
inline constexpr std::string_view kPerHostKeys[] = {"rate", "burst", "concurrency", "delay"};
inline constexpr std::string_view kFollowKeys[] = {"css",       "xpath", "same_host", "max_depth",
                                                   "max_pages", "allow", "deny"};
inline constexpr std::string_view kFieldKeys[] = {"css", "xpath", "json",       "regex",   "attr",
                                                  "all", "type",  "namespaces", "required"};
inline constexpr std::string_view kNotifyKeys[] = {"webhook", "on_change", "failing_streak"};
inline constexpr std::string_view kTlsKeys[] = {"ca_file", "verify"};
inline constexpr std::string_view kRenderKeys[] = {"browser",    "wait_for",  "timeout",
                                                   "block",      "viewport",  "user_agent",
                                                   "javascript", "screenshot"};
inline constexpr std::string_view kRenderPoolKeys[] = {
    "concurrency", "restart_after", "restart_memory", "idle_shutdown", "executable"};
inline constexpr std::string_view kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};

// A parsed YAML document detached from yaml-cpp: converted in one pass right after parsing,
// because yaml-cpp's node lookups convert and allocate per entry compared and dominated
// loading. Validation then works on these plain values.
struct Yaml {
  enum class Kind { kUndefined, kNull, kScalar, kSequence, kMap };
  struct Entry;

  Kind kind = Kind::kUndefined;
  std::string scalar;
  int line = -1, column = -1;  // 0-based, -1 when unknown
  std::vector<Yaml> items;     // a sequence's items
  std::vector<Entry> entries;  // a mapping's entries, in file order

  explicit operator bool() const { return kind != Kind::kUndefined; }
  bool IsDefined() const { return kind != Kind::kUndefined; }
  bool IsNull() const { return kind == Kind::kNull; }
  bool IsScalar() const { return kind == Kind::kScalar; }
  bool IsSequence() const { return kind == Kind::kSequence; }
  bool IsMap() const { return kind == Kind::kMap; }
  const std::string& Scalar() const { return scalar; }
  std::size_t size() const;

  // The value of the first entry whose key is `key`; an undefined node when there is none.
  const Yaml& operator[](std::string_view key) const;
};

// A whole decimal integer ("+" allowed); nullopt for anything else (config/yaml_reader.cpp).
std::optional<long long> to_integer(const std::string& s);

struct Yaml::Entry {
  Yaml first, second;
};

// Reads one main file and the files it includes into a Config, collecting every error and
// warning on the way (see load_text in config/load.cpp).
class Loader {
 public:
  Loader(std::vector<Diagnostic>& errors, std::vector<Diagnostic>& warnings,
         const LoadOptions& options)
      : errors_(errors),
        warnings_(warnings),
        env_required_(options.env_required),
        probe_storage_(options.probe_storage) {}

  // The values ${VAR} references were replaced with, for Config::redact.
  const std::vector<std::pair<std::string, std::string>>& secrets() const { return cfg_secrets_; }

  void load_main(const std::string& text, const std::string& file, Config& cfg);

 private:
  // config/yaml_reader.cpp
  std::optional<Yaml> parse(const std::string& text, const std::string& file);
  void error(const Yaml& node, std::string message);
  void warn(const Yaml& node, std::string message);
  bool map(const Yaml& node, const std::string& what);
  void check_keys(const Yaml& node, Keys allowed, const std::string& where);
  void note_secret(std::string value, std::string name);
  std::optional<std::string> string(const Yaml& node, const std::string& what);
  std::optional<long long> integer(const Yaml& node, const std::string& what, long long lo,
                                   long long hi);
  std::optional<bool> boolean(const Yaml& node, const std::string& what);
  std::optional<std::string> one_of(const Yaml& node, const std::string& what,
                                    std::initializer_list<std::string_view> choices);
  std::optional<Duration> duration(const Yaml& node, const std::string& what);
  std::optional<std::string> url(const Yaml& node, const std::string& what);

  // config/load.cpp
  static std::string canonical(const std::string& path);
  void read_jobs_and_includes(const Yaml& root, const std::string& file, Config& cfg, bool main);
  void include(const Yaml& at, const std::string& pattern, const std::string& from, Config& cfg);
  std::optional<std::string> ca_file(const Yaml& node);
  std::pair<std::string, std::string> resolve_path(const std::string& text) const;
  std::optional<std::string> token_file(const Yaml& node);
  void read_storage_url(const Yaml& u, const Yaml& path, Storage& storage);
  static std::string storage_problem(const std::string& path);
  static std::string check_ca_file(const std::string& path);

  // config/job.cpp
  void warn_insecure(const Yaml& node, const Job& job);
  void warn_slow(const Yaml& node, const Job& job);
  static std::string format_duration(double seconds);
  static std::string fmt_rate(double rate);
  void warn_insecure_defaults();
  void read_common(const Yaml& node, Job& job);
  void read_notify(const Yaml& node, Job& job);
  bool read_job(const Yaml& node, Job& job);

  // config/extract_rules.cpp
  std::optional<std::string> regex(const Yaml& node, const std::string& what);
  std::optional<std::pair<std::string, std::string>> css(const Yaml& node, const std::string& what);
  std::optional<std::vector<std::pair<std::string, std::string>>> namespaces(
      const Yaml& node, const std::string& what);
  std::optional<std::pair<std::string, std::string>> selector(const Yaml& node,
                                                              const std::string& what);
  void read_follow(const Yaml& node, Job& job);
  void read_extract(const Yaml& node, Job& job);
  void resolve_namespaces(const Yaml& node, Job& job);

  // config/render.cpp
  void read_render_pool(const Yaml& node, Config& cfg);
  void read_render(const Yaml& node, Job& job);
  void check_render(const Yaml& node, Job& job);

  std::vector<Diagnostic>& errors_;
  std::vector<Diagnostic>& warnings_;
  bool env_required_;   // LoadOptions::env_required
  bool probe_storage_;  // LoadOptions::probe_storage
  std::string file_;
  std::string job_;  // the job being read, for messages
  Job defaults_;
  std::map<std::string, std::string> names_;  // job name → where it was first defined
  std::vector<std::pair<std::string, std::string>> cfg_secrets_;  // ${VAR} values, names
  std::vector<std::string> include_stack_;
  std::set<std::string, std::less<>> valid_regexes_, valid_xpaths_;  // checked already
  std::map<std::string, TimeZone> zones_;          // read already: jobs in one zone share its data
  std::map<std::string, std::string> ca_files_;    // checked already: path → what is wrong, or ""
  std::optional<Diagnostic> defaults_verify_;      // where `defaults` sets tls.verify: false
  std::vector<std::string> insecure_by_default_;   // jobs that take tls.verify: false from it
  std::string browser_ = RenderPool{}.executable;  // render.executable, for check_render
};

}  // namespace scraperd::config::detail
