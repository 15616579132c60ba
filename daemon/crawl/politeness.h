// Politeness: everything that keeps the daemon a good guest of each host, behind one face.
//   - clear(): may the job fetch this URL at all? robots.txt of its origin (fetched once,
//     cached a day; RFC 9309 with Google's leniencies, robots.h), and the host's limits with
//     its Crawl-delay applied.
//   - send(): every request (page, robots.txt, webhook) waits for its host in the Frontier
//     (rate, burst, per-host and global caps, delay, pauses) and is retried by the one
//     RetryLoop, which pauses a host that answers Retry-After.
// Loop-thread only.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>

#include "config/config.h"
#include "config/url.h"
#include "daemon/crawl/frontier.h"
#include "daemon/crawl/retry_loop.h"
#include "daemon/crawl/robots.h"

namespace scraperd::daemon {

// "host:port": the Frontier's key for a URL.
std::string host_key(const config::Url& url);

// What clear() decided for one URL.
struct Clearance {
  enum class Verdict { kGo, kRefused, kStopping };
  Verdict verdict = Verdict::kGo;
  config::PerHost limits;  // kGo: the job's per_host, Crawl-delay applied
  std::string kind;        // kRefused: robots, or the network failure that hid robots.txt
  std::string message;     // kRefused: why, for the error row
};

class Politeness {
 public:
  // `renderer`: for render: chromium jobs (may be null when there are none).
  Politeness(asio::any_io_executor executor, int concurrency, Fetcher& fetcher,
             render::Renderer* renderer, Naps& naps, RowSink& rows, Metrics& metrics);

  asio::awaitable<Clearance> clear(const config::Job& job, const config::Url& target);
  asio::awaitable<Sent> send(const RetryPlan& plan) { return retry_.send(plan); }

  // Stopping: every request waiting for its host ends as not sent.
  void close() { frontier_.close(); }

 private:
  // robots.txt of one origin: fetched once (concurrent askers wait for the first), kept for
  // a day, or for a few minutes when it could not be read.
  struct RobotsEntry {
    std::optional<Robots> rules;  // nullopt: unreachable (5xx, 429, network): nothing allowed
    std::string problem;          // why it is unreachable
    std::string problem_kind;     // robots (a status), or the network failure's kind
    Steady::time_point expires{};
    bool loading = false;
  };

  // Null when the daemon is stopping.
  asio::awaitable<const RobotsEntry*> robots_for(const config::Job& job, const config::Url& target);

  Frontier frontier_;
  RetryLoop retry_;
  Naps& naps_;
  std::unordered_map<std::string, RobotsEntry> robots_;  // by origin
};

}  // namespace scraperd::daemon
