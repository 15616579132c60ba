#include "daemon/crawl/politeness.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace scraperd::daemon {
namespace {

// A robots.txt Crawl-delay raises the host's delay up to this; more would let one file stall
// a job for hours.
constexpr std::chrono::milliseconds kMaxCrawlDelay = std::chrono::minutes(1);
// Redirects followed to a robots.txt; more make it unavailable (RFC 9309 2.3.1.2).
constexpr int kMaxRobotsRedirects = 5;

std::string status_or_error(const FetchResult& r) {
  return r.ok() ? "HTTP status " + std::to_string(r.status) : r.error_message;
}

}  // namespace

std::string host_key(const config::Url& url) {
  return url.host + ":" + std::to_string(url.port);
}

Politeness::Politeness(asio::any_io_executor executor, int concurrency, Fetcher& fetcher,
                       render::Renderer* renderer, Naps& naps, RowSink& rows, Metrics& metrics)
    : frontier_(std::move(executor), concurrency),
      retry_(frontier_, fetcher, renderer, naps, rows, metrics),
      naps_(naps) {}

asio::awaitable<Clearance> Politeness::clear(const config::Job& job, const config::Url& target) {
  Clearance c;
  c.limits = job.per_host;
  if (!job.robots) co_return c;
  const RobotsEntry* robots = co_await robots_for(job, target);
  if (!robots) {
    c.verdict = Clearance::Verdict::kStopping;
    co_return c;
  }
  if (!robots->rules) {
    c.verdict = Clearance::Verdict::kRefused;
    c.kind = robots->problem_kind;
    c.message = c.kind == "robots" ? "robots.txt of " + target.origin() + " answered " +
                                         robots->problem + ": the whole host counts as disallowed"
                                   : robots->problem + " (reading robots.txt)";
  } else if (!robots->rules->allowed(job.user_agent, target.target)) {
    c.verdict = Clearance::Verdict::kRefused;
    c.kind = "robots";
    c.message = "disallowed by " + target.origin() + "/robots.txt for '" +
                Robots::product_token(job.user_agent) + "'";
  } else if (auto delay = robots->rules->crawl_delay(job.user_agent)) {
    c.limits.delay = std::max(c.limits.delay, std::min(*delay, kMaxCrawlDelay));
  }
  co_return c;
}

asio::awaitable<const Politeness::RobotsEntry*> Politeness::robots_for(const config::Job& job,
                                                                       const config::Url& target) {
  const std::string origin = target.origin();
  // References into an unordered_map stay valid while other keys come and go.
  RobotsEntry& entry = robots_[origin];
  while (entry.loading) {  // another fetch of this origin is reading it
    if (!co_await naps_.nap(std::chrono::milliseconds(20))) co_return nullptr;
  }
  if (Steady::now() < entry.expires) co_return &entry;
  entry.loading = true;
  struct Done {
    RobotsEntry& e;
    ~Done() { e.loading = false; }
  } done{entry};
  // The job's way to the site (timeouts, proxy, TLS, retries), none of its headers or
  // cookies. One byte over Robots::kMaxBytes tells the parser that the body was cut.
  RetryPlan plan;
  plan.host = host_key(target);
  plan.limits = job.per_host;
  plan.retries = job.retries;
  plan.request = [&job, &origin] {
    FetchRequest request = request_for(job, origin + "/robots.txt");
    request.method = "GET";
    request.headers.clear();
    request.body.clear();
    request.max_body = Robots::kMaxBytes + 1;
    request.cut_body = true;
    request.max_redirects = kMaxRobotsRedirects;
    return request;
  };
  plan.done = [](const FetchResult& r) { return r.ok() && r.status < 400; };
  plan.failed = [&origin](const Attempt& a) -> std::optional<storage::Row> {
    if (!a.last) spdlog::debug("{}/robots.txt: {}{}", origin, status_or_error(a.result), a.next);
    return std::nullopt;
  };
  Sent sent = co_await retry_.send(plan);
  if (sent.end != Sent::End::kDone && sent.end != Sent::End::kFailed)
    co_return nullptr;  // stopping: nothing learnt
  const FetchResult& r = sent.result;
  auto now = Steady::now();
  // RFC 9309 2.3.1: a 2xx is the rules; "unavailable" (a 4xx, or a redirect chain longer
  // than kMaxRobotsRedirects or that cannot be followed) allows everything; "unreachable"
  // (a 5xx, the network) disallows everything for a while. A 429 is unreachable, as Google
  // reads it: a site that asks to slow down is not inviting a full crawl.
  const bool redirects = r.error_kind == "redirect_loop" || r.error_kind == "http" ||
                         (r.ok() && r.status >= 300 && r.status < 400);
  if (r.ok() && r.status >= 200 && r.status < 300) {
    entry.rules = Robots::parse(r.body);
    entry.expires = now + std::chrono::hours(24);
    const Robots::Summary& s = entry.rules->summary();
    spdlog::debug("{}/robots.txt: {} bytes{}, {} directives, {} unknown lines", origin, s.bytes,
                  s.cut ? fmt::format(" (cut at {} KiB)", Robots::kMaxBytes / 1024) : "",
                  s.directives, s.unknown);
  } else if (redirects || (r.ok() && r.status >= 400 && r.status < 500 && r.status != 429)) {
    entry.rules = Robots::allow_all();
    entry.expires = now + std::chrono::hours(24);
    spdlog::debug("{}/robots.txt: unavailable ({}): everything allowed", origin,
                  status_or_error(r));
  } else {
    entry.rules.reset();
    entry.problem = status_or_error(r);
    entry.problem_kind = r.ok() ? "robots" : r.error_kind;
    entry.expires = now + std::chrono::minutes(5);
    // Once per origin and 5 minutes; each refused URL is an error row and a debug line.
    spdlog::warn("{}/robots.txt is unreachable ({}): its URLs count as disallowed for 5 min",
                 origin, entry.problem);
  }
  if (robots_.size() > 10'000)  // origins met once, long ago: bounded memory
    std::erase_if(robots_, [&](const auto& kv) {
      return !kv.second.loading && kv.second.expires < now && &kv.second != &entry;
    });
  co_return &entry;
}

}  // namespace scraperd::daemon
