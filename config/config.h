// YAML job files → one immutable, validated Config snapshot.
//
// Loading never throws and never stops at the first mistake: every problem found is returned
// as a Diagnostic pointing at its file, line and column. A Config is only produced when there
// are no errors, so code downstream can trust every field. Every key: docs/configuration.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/cron.h"
#include "config/timezone.h"

namespace scraperd::config {

using Duration = std::chrono::milliseconds;

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem is the file as a whole
  int column = 0;  // 1-based
  std::string message;

  // "file:line:col: message", the form compilers use and editors jump to.
  std::string str() const;
};

struct Schedule {
  Duration every{0};                    // set for `every:` jobs
  std::optional<Cron> cron;             // set for `cron:` jobs
  TimeZone timezone = TimeZone::utc();  // for cron
  Duration jitter{0};                   // each run starts up to this much later, at random

  bool operator==(const Schedule&) const = default;
};

struct Retries {
  int max = 2;  // attempts after the first
  Duration backoff = std::chrono::seconds(1);
  Duration max_backoff = std::chrono::minutes(1);
  std::vector<int> on_status = {408, 429, 500, 502, 503, 504};
  // How long one request may wait in all on servers' Retry-After before it fails instead.
  Duration max_stall = std::chrono::minutes(10);

  bool operator==(const Retries&) const = default;
};

struct PerHost {
  double rate = 2.0;  // requests per second, long-run average
  int burst = 4;      // requests that may go at once after an idle spell
  int concurrency = 2;
  Duration delay{0};  // minimum gap between the starts of two requests

  bool operator==(const PerHost&) const = default;
};

struct Follow {
  std::string selector;  // as written
  std::string xpath;     // what is evaluated (the CSS translated, or the XPath as written)
  bool same_host = true;
  int max_depth = 1;
  int max_pages = 100;
  std::vector<std::string> allow;  // PCRE2 patterns on the absolute URL; empty: all
  std::vector<std::string> deny;

  bool operator==(const Follow&) const = default;
};

struct Field {
  enum class Type { kString, kInt, kNumber, kBool };
  std::string name;
  std::string css;    // as written, when given
  std::string xpath;  // what is evaluated (from css or xpath); empty for json / body regex
  std::string json;   // a JSON Pointer ("/items/0/price"), when given
  std::string regex;  // PCRE2; applied to what the selector found, or to the body
  std::string attr;   // take this attribute of the selected elements instead of their text
  bool all = false;   // a list of every match instead of the first
  Type type = Type::kString;
  // (prefix, URI) for the selector's names (`atom:entry`, CSS `atom|entry`): the field's own
  // `namespaces`, then the job's for the prefixes the field does not set.
  std::vector<std::pair<std::string, std::string>> namespaces;
  bool required = false;  // matching nothing is a failure of `scraperd try` (exit 3)

  bool operator==(const Field&) const = default;
};

struct Notify {
  std::string webhook;     // http(s) URL receiving POSTs
  bool on_change = true;   // a page's fields changed
  int failing_streak = 0;  // notify after this many consecutive failed runs (0: never)

  bool operator==(const Notify&) const = default;
};

struct Tls {
  std::string ca_file;  // PEM file of CAs to trust instead of the system's; empty: system's
  bool verify = true;   // false: accept any certificate and any name (lab hosts only)

  bool operator==(const Tls&) const = default;
};

// How a job's pages are loaded: `render: http` (the default: libcurl, no scripts run) or
// `render: chromium` / `render: {browser: chromium, ...}` (a headless Chromium runs the page's
// scripts; extraction reads document.documentElement.outerHTML once `wait_for` holds).
struct Render {
  bool chromium = false;
  // "load" (the load event), "network_idle" (no request in flight for 500 ms after load), or
  // a CSS selector that must match an element (polled).
  std::string wait_for = "load";
  std::optional<Duration> timeout;  // the whole page; unset: the job's timeout
  std::vector<std::string> block;   // resource types not loaded: image, font, media, stylesheet
  int width = 1280, height = 800;   // viewport
  std::string user_agent;           // empty: the job's user_agent
  bool javascript = true;
  bool screenshot = false;  // `scraperd try --save DIR` also writes a PNG

  bool operator==(const Render&) const = default;
};

// The daemon's browser (top-level `render:`), shared by every render job.
struct RenderPool {
  int concurrency = 0;      // pages at once; 0: 2 per core
  int restart_after = 200;  // pages, then a fresh browser
  // A browser whose processes hold more than this (RSS summed over its process group) is
  // replaced before its next page; 0: no bound.
  std::uint64_t restart_memory = 2ull * 1024 * 1024 * 1024;
  Duration idle_shutdown = std::chrono::seconds(60);  // an unused browser is stopped after this
  std::string executable = "/usr/bin/chromium";

  bool operator==(const RenderPool&) const = default;
};

struct Job {
  std::string name;
  std::vector<std::string> urls;  // absolute http(s) URLs, ranges expanded
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  Schedule schedule;
  Duration connect_timeout = std::chrono::seconds(10);
  Duration timeout = std::chrono::seconds(30);  // whole request, connect to last byte
  Retries retries;
  PerHost per_host;
  bool robots = true;  // obey robots.txt
  std::uint64_t max_body = 10 * 1024 * 1024;
  int max_redirects = 5;
  std::string user_agent = "scraperd/0.1 (+https://github.com/scraperd/scraperd)";
  // "scheme://[userinfo@]host:port" with scheme http, https, socks5 or socks5h and the port
  // always written out (80, 443, 1080 when the file leaves it out); empty for none.
  std::string proxy;
  // ca_file is absolute: a relative path in the file is resolved against that file's directory.
  Tls tls;
  bool cookies = true;  // one cookie jar per job run, shared by its requests, empty at its start
  // Send the last response's validators back (If-None-Match / If-Modified-Since); false for
  // servers whose validators lie (a 304 for content that changed).
  bool conditional = true;
  bool http2 = true;  // offered through ALPN over TLS; false: HTTP/1.1 only
  std::optional<Follow> follow;
  std::vector<std::pair<std::string, std::string>> namespaces;  // (prefix, URI) for every field
  std::vector<Field> extract;
  bool store_on_change = false;  // store: on_change (default: always)
  std::optional<Notify> notify;
  bool paused = false;
  Render render;
  std::string file;  // where the job is defined, for messages
  int line = 0;

  bool operator==(const Job&) const = default;
};

struct Storage {
  std::string path = "scraperd.db";  // relative paths are relative to the working directory
  std::string url;                   // postgresql://...: PostgreSQL instead (exclusive with path)
  Duration keep{0};                  // prune rows older than this; 0 keeps everything

  // What storage:: functions take: the PostgreSQL URL when there is one, else the path.
  const std::string& locator() const { return url.empty() ? path : url; }
};

// Several daemons on one PostgreSQL database (`cluster:`; docs/operations.md). With
// storage.url every daemon is a node of a cluster (one alone is a cluster of one).
struct Cluster {
  Duration lease = std::chrono::seconds(30);     // a run's lease; renewed every lease / 3
  Duration heartbeat = std::chrono::seconds(5);  // a node is live while its beat is < 3 × this old
};

struct Api {
  std::string listen = "127.0.0.1:9184";  // empty string disables the API
  std::string token;                      // when set, required as "Authorization: Bearer"
};

struct Log {
  std::string level = "info";   // trace, debug, info, warn, error
  std::string format = "text";  // text, or json: one JSON object per line (read at start)
};

struct Config {
  std::string source;    // the main file
  int concurrency = 32;  // fetches in flight at once, across all jobs
  // On SIGTERM, how long requests already sent may take to finish before they are recorded
  // as cancelled and the daemon exits anyway.
  Duration shutdown_timeout = std::chrono::seconds(30);
  Storage storage;
  Cluster cluster;
  Api api;
  Log log;
  RenderPool render;
  std::vector<Job> jobs;
  // Values substituted for ${VAR} (4 characters or longer), with the name written in the file:
  // redact() puts the name back wherever a value would reach a log line or the database.
  std::vector<std::pair<std::string, std::string>> secrets;  // (value, "${NAME}")

  // `text` with every substituted value replaced by its ${NAME}.
  std::string redact(std::string text) const;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is non-empty
  std::vector<Diagnostic> errors;
  // Things that load but deserve a look (tls.verify: false); they never stop a load. Sorted
  // like errors: by file, then line and column.
  std::vector<Diagnostic> warnings;

  bool ok() const { return config != nullptr; }
};

// `text` with every value of `secrets` (value, "${NAME}") replaced by its name.
std::string redact(std::string text,
                   const std::vector<std::pair<std::string, std::string>>& secrets);

// True when `a` and `b` describe the same work: equal in everything but where they are written.
bool same_job(const Job& a, const Job& b);

struct LoadOptions {
  // false: an unset ${VAR} is a warning and reads as "" (for commands that only query the
  // database, which a missing API token must not stop), except in `storage.path`, where it
  // stays an error: the database would be another file.
  bool env_required = true;
  // true (scraperd check): a warning, with the system's reason, when `storage.path` cannot be
  // opened for writing (or created) by this user.
  bool probe_storage = false;
};

// Reads and validates `path` and the files it includes.
LoadResult load_file(const std::string& path, const LoadOptions& options = {});

// Validates YAML text; `name` is used as the file name in diagnostics and `include:` paths
// are relative to the working directory.
LoadResult load_string(std::string_view yaml, const std::string& name,
                       const LoadOptions& options = {});

// The keys the loader accepts in each place of a job file ("top", "included", "defaults",
// "job", "storage", "api", "log", "timeout", "retries", "per_host", "follow", "field",
// "notify", "tls"), from the tables it checks keys against: config/schema.cpp builds the JSON
// Schema of job files from them.
struct KeyTable {
  std::string_view where;
  std::span<const std::string_view> keys;
};
std::span<const KeyTable> key_tables();
// The HTTP methods 'method' accepts (in any case).
std::span<const std::string_view> http_methods();

// Limits on input, so a hostile or broken file cannot exhaust memory or stack.
inline constexpr std::size_t kMaxFileBytes = 8 * 1024 * 1024;
inline constexpr int kMaxNesting = 64;
inline constexpr std::size_t kMaxNodes = 2'000'000;  // after alias expansion
inline constexpr std::size_t kMaxUrlsPerJob = 100'000;

}  // namespace scraperd::config
