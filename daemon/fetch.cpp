#include "daemon/fetch.h"

#include <fmt/format.h>
#include <httplib.h>
#include <netdb.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/url.h"
#include "daemon/blocking.h"
#include "daemon/tcp_bytes.h"

namespace scraperd::daemon {
namespace {

using Clock = std::chrono::steady_clock;

// One client per origin per pool thread: connections are kept alive and never shared.
struct Kept {
  std::unique_ptr<httplib::Client> client;
  bool alive = false;  // its last exchange succeeded: the next one may reuse its connection
};
Kept& client_for(const std::string& origin) {
  thread_local std::unordered_map<std::string, Kept> clients;
  if (clients.size() > 256 && !clients.contains(origin)) clients.clear();  // bound idle state
  auto& kept = clients[origin];
  if (!kept.client) {
    kept.client = std::make_unique<httplib::Client>(origin);
    kept.client->set_keep_alive(true);
    kept.client->set_follow_location(false);  // redirects are followed by fetch_blocking
    kept.client->set_decompress(true);
  }
  return kept;
}

bool idempotent(const std::string& method) {
  return method == "GET" || method == "HEAD" || method == "PUT" || method == "DELETE" ||
         method == "OPTIONS";
}

bool resolves(const std::string& host) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
  if (res) freeaddrinfo(res);
  return rc == 0;
}

// Response headers larger than this end a request as `too_large`. cpp-httplib bounds each
// header line (8 KB) but not their number, and keeps every header in memory: a server sending
// header lines for the whole timeout would otherwise cost the daemon gigabytes. curl's
// limit is of the same order.
constexpr std::uint64_t kMaxHeaderBytes = 256 * 1024;
// A body's buffer is reserved for its Content-Length up to this; beyond, it grows as it comes.
constexpr std::uint64_t kReserve = 1024 * 1024;

// How far a request's response headers have come, for the watchdog. Written by the fetch
// thread without the watchdog's lock: cpp-httplib calls its socket hook holding its own
// lock, and the watchdog calls Client::stop(), which takes that one, holding its lock.
struct HeaderProgress {
  std::atomic<int> fd{-1};             // the connection being read; -1: none yet, or done
  std::atomic<int> port{-1};           // fd's local port (fd may be closed and reused): -1
                                       // until known
  std::atomic<std::uint64_t> base{0};  // tcp_bytes_read(fd) when the headers started

  // The request goes out on the kept connection `fd` (`connected`), or on a new socket that
  // is about to connect: every byte that one reads is this response's. fd last: the
  // watchdog reads it first.
  void on(int socket, bool connected) {
    base.store(connected ? tcp_bytes_read(socket) : 0);
    port.store(connected ? tcp_local_port(socket) : -1);
    fd.store(socket);
  }
  void done() { fd.store(-1); }

  // What the connection has read since the headers started; 0 when there is no connection
  // or fd is no longer it.
  std::uint64_t bytes() {
    int f = fd.load();
    if (f < 0) return 0;
    int now = tcp_local_port(f);
    if (now <= 0) return 0;  // not connected yet
    int expected = -1;
    port.compare_exchange_strong(expected, now);  // a new connection, now connected
    if (port.load() != now) return 0;
    auto read = tcp_bytes_read(f);
    return read > base.load() ? read - base.load() : 0;
  }
};

// Stops requests that overrun: at their deadline, and when their headers exceed
// kMaxHeaderBytes. cpp-httplib's timeouts apply to each read and write, so a server sending a
// header byte a second would otherwise hold a request (and a pool thread) for hours. One
// thread for the process; Client::stop() is the thread-safe way to abort a request in flight
// (it shuts its socket down, the request fails).
class Watchdog {
 public:
  enum class Stop { kNone, kDeadline, kHeaders };

  static Watchdog& instance() {
    static Watchdog watchdog;
    return watchdog;
  }

  // `headers` must outlive unwatch(id).
  std::uint64_t watch(httplib::Client* client, Clock::time_point deadline,
                      HeaderProgress* headers) {
    std::lock_guard lock(mu_);
    if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
    auto id = ++next_id_;
    watched_.emplace(id, Entry{client, deadline, headers});
    // Woken only when it sleeps longer than a new request needs (no request in flight):
    // thousands of requests per second need no wake-up at all.
    if (deadline < asleep_until_) wake_.notify_one();
    return id;
  }

  // After this returns, the client is not touched any more for this request. Says why the
  // watchdog stopped it, if it did.
  Stop unwatch(std::uint64_t id) {
    std::lock_guard lock(mu_);
    auto it = watched_.find(id);
    if (it == watched_.end()) return Stop::kNone;
    auto why = it->second.stopped;
    watched_.erase(it);
    return why;
  }

  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Entry {
    httplib::Client* client;
    Clock::time_point deadline;
    HeaderProgress* headers;
    Stop stopped = Stop::kNone;
  };

  void loop() {
    std::unique_lock lock(mu_);
    while (!stopping_) {
      auto next = Clock::time_point::max();
      auto now = Clock::now();
      for (auto& [id, e] : watched_) {
        if (e.stopped != Stop::kNone) continue;
        if (e.deadline <= now || e.headers->bytes() > kMaxHeaderBytes) {
          e.client->stop();
          e.stopped = e.deadline <= now ? Stop::kDeadline : Stop::kHeaders;
        } else {
          next = std::min(next, e.deadline);
        }
      }
      // While requests are in flight their headers are looked at ten times a second: one
      // with endless headers ends within ~100 ms having cost ~10 MB (cpp-httplib's header
      // map), not gigabytes.
      if (next != Clock::time_point::max())
        next = std::min(next, now + std::chrono::milliseconds(100));
      asleep_until_ = next;
      if (next == Clock::time_point::max())
        wake_.wait(lock);
      else
        wake_.wait_until(lock, next);
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  std::unordered_map<std::uint64_t, Entry> watched_;           // GUARDED_BY(mu_)
  std::uint64_t next_id_ = 0;                                  // GUARDED_BY(mu_)
  bool stopping_ = false;                                      // GUARDED_BY(mu_)
  Clock::time_point asleep_until_ = Clock::time_point::min();  // GUARDED_BY(mu_)
  std::thread thread_;
};

std::string seconds(std::chrono::milliseconds ms) {
  return fmt::format("{:.3g}s", static_cast<double>(ms.count()) / 1000.0);
}

}  // namespace

namespace {

// One request, no redirect following. Fills `result` (status, body, or an error); returns
// the Location header of a redirect response, empty otherwise.
std::string exchange(const FetchRequest& request, const config::Url& url, const std::string& method,
                     const std::string& body, Clock::time_point start, Clock::time_point deadline,
                     FetchResult& result) {
  Kept& kept = client_for(url.origin());
  httplib::Client& client = *kept.client;
  auto split = [](Clock::duration d) {
    auto secs = std::chrono::duration_cast<std::chrono::seconds>(d);
    return std::pair<time_t, time_t>(
        secs.count(), std::chrono::duration_cast<std::chrono::microseconds>(d - secs).count());
  };
  auto remaining = std::max<Clock::duration>(deadline - Clock::now(), std::chrono::milliseconds(1));
  auto [connect_s, connect_us] =
      split(std::min<Clock::duration>(request.connect_timeout, remaining));
  auto [total_s, total_us] = split(remaining);
  client.set_connection_timeout(connect_s, connect_us);
  client.set_read_timeout(total_s, total_us);
  client.set_write_timeout(total_s, total_us);
  if (auto proxy = config::parse_url(request.proxy))
    client.set_proxy(proxy->host, proxy->port);
  else
    client.set_proxy("", -1);

  bool too_large = false;
  bool too_slow = false;
  httplib::Request req;
  req.method = method;
  req.path = url.target;
  req.headers = {{"User-Agent", request.user_agent}};
  for (const auto& [name, value] : request.headers) req.headers.emplace(name, value);
  req.body = body;
  bool got_response = false;
  HeaderProgress headers;  // before `watched`: outlives its watch
  req.response_handler = [&](const httplib::Response& r) {
    got_response = true;
    headers.done();
    if (auto len = r.get_header_value("Content-Length"); !len.empty()) {
      const std::uint64_t announced = std::strtoull(len.c_str(), nullptr, 10);
      if (announced > request.max_body) {
        too_large = true;
        return false;
      }
      // One allocation for the body instead of doublings; up to a bound, as the length is
      // only the server's word until the bytes come.
      result.body.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(announced, kReserve)));
    }
    return true;
  };
  result.body.clear();
  req.content_receiver = [&](const char* data, size_t n, std::uint64_t, std::uint64_t) {
    if (result.body.size() + n > request.max_body) {
      too_large = true;
      return false;
    }
    if (Clock::now() > deadline) {
      too_slow = true;
      return false;
    }
    result.body.append(data, n);
    return true;
  };
  auto& watchdog = Watchdog::instance();
  struct Unwatch {
    Watchdog& watchdog;
    std::uint64_t id;
    Watchdog::Stop done() { return watchdog.unwatch(std::exchange(id, 0)); }
    ~Unwatch() {
      if (id) watchdog.unwatch(id);
    }
  } watched{watchdog, watchdog.watch(&client, deadline, &headers)};
  // The headers are counted on the connection the request goes out on: a kept one now, a
  // new one when cpp-httplib connects (it calls the socket options with the new socket).
  client.set_socket_options([&headers](socket_t fd) { headers.on(fd, false); });
  if (client.is_socket_open()) headers.on(client.socket(), true);
  auto res = client.send(req);
  // A server may close a kept-alive connection just as the next request goes out on it. Like
  // curl and browsers, an idempotent request that got no response on a reused connection is
  // sent once more, on a new one (RFC 9112, 9.3.1).
  if (!res && kept.alive && !got_response && idempotent(method) &&
      (res.error() == httplib::Error::Read || res.error() == httplib::Error::Write) && !too_slow &&
      Clock::now() < deadline)
    res = client.send(req);
  kept.alive = static_cast<bool>(res);
  result.elapsed = Clock::now() - start;
  const auto stopped = watched.done();

  if (stopped == Watchdog::Stop::kHeaders) {
    result.error_kind = "too_large";
    result.error_message =
        fmt::format("response headers larger than {} KB", kMaxHeaderBytes / 1024);
  } else if (too_large) {
    result.error_kind = "too_large";
    result.error_message = fmt::format("body larger than max_body ({} bytes)", request.max_body);
  } else if (too_slow) {
    result.error_kind = "timeout";
    result.error_message = "response not complete within " + seconds(request.timeout);
  } else if (!res && Clock::now() + std::chrono::milliseconds(50) >= deadline) {
    // Stopped by the watchdog, or a read timeout (set to the time left, which poll() may end a
    // hair early): a failure at the deadline is the deadline's.
    result.error_kind = "timeout";
    result.error_message = "response not complete within " + seconds(request.timeout);
  } else if (res) {
    result.status = res->status;
    result.retry_after = res->get_header_value("Retry-After");
    result.etag = res->get_header_value("ETag");
    result.last_modified = res->get_header_value("Last-Modified");
    result.content_type = res->get_header_value("Content-Type");
    bool redirect = res->status == 301 || res->status == 302 || res->status == 303 ||
                    res->status == 307 || res->status == 308;
    return redirect ? res->get_header_value("Location") : std::string();
  } else {
    using E = httplib::Error;
    switch (res.error()) {
      case E::Connection:
        if (!resolves(url.host)) {
          result.error_kind = "dns";
          result.error_message = "cannot resolve host '" + url.host + "'";
        } else {
          result.error_kind = "connect";
          result.error_message = "cannot connect to " + url.origin();
        }
        break;
      case E::ConnectionTimeout:
        result.error_kind = "timeout";
        result.error_message =
            "connect to " + url.origin() + " timed out after " + seconds(request.connect_timeout);
        break;
      case E::SSLConnection:
      case E::SSLLoadingCerts:
      case E::SSLServerVerification:
        result.error_kind = "tls";
        result.error_message = "TLS: " + httplib::to_string(res.error());
        break;
      case E::Compression:
        result.error_kind = "parse";
        result.error_message = "cannot decompress the body";
        break;
      default:
        result.error_kind = "read";
        result.error_message =
            "the connection failed during the exchange (" + httplib::to_string(res.error()) + ")";
        break;
    }
  }
  result.body.clear();
  return {};
}

}  // namespace

FetchRequest request_for(const config::Job& job, const std::string& url) {
  return {url,         job.method,     job.headers,  job.body,  job.connect_timeout,
          job.timeout, job.user_agent, job.max_body, job.proxy, job.max_redirects};
}

FetchResult fetch_blocking(const FetchRequest& request) {
  FetchResult result;
  auto start = Clock::now();
  auto deadline = start + request.timeout;
  std::string current = request.url;
  std::string method = request.method;
  std::string body = request.body;
  std::vector<std::string> visited{current};
  for (int hop = 0;; ++hop) {
    auto url = config::parse_url(current);
    if (!url) {
      result.error_kind = "parse";
      result.error_message = "not an absolute http(s) URL: " + current;
      return result;
    }
    std::string location = exchange(request, *url, method, body, start, deadline, result);
    if (!result.ok() || location.empty()) {
      if (hop > 0 && result.ok()) result.final_url = current;
      return result;
    }
    // A redirect: follow it, within bounds, never in circles.
    auto next = config::resolve_url(current, location);
    if (!next || !config::parse_url(*next)) {
      result.error_kind = "http";
      result.error_message = "redirect to a URL that is not http(s): '" + location + "'";
      result.body.clear();
      return result;
    }
    if (std::find(visited.begin(), visited.end(), *next) != visited.end()) {
      std::string chain;
      for (const auto& v : visited) chain += v + " -> ";
      result.error_kind = "redirect_loop";
      result.error_message = "redirect loop: " + chain + *next;
      result.body.clear();
      return result;
    }
    if (hop >= request.max_redirects) {
      result.error_kind = "redirect_loop";
      result.error_message =
          fmt::format("more than {} redirects (the last to {})", request.max_redirects, *next);
      result.body.clear();
      return result;
    }
    // 303, and 301/302 after a POST, continue as a GET without the body (what browsers do).
    if (result.status == 303 ||
        ((result.status == 301 || result.status == 302) && method == "POST")) {
      method = method == "HEAD" ? "HEAD" : "GET";
      body.clear();
    }
    visited.push_back(*next);
    current = *next;
  }
}

asio::awaitable<FetchResult> fetch(asio::thread_pool& pool, FetchRequest request,
                                   std::source_location at) {
  // A named callable, not a temporary: GCC 12 destroys temporaries with non-trivial
  // destructors inside a co_await expression twice.
  auto call = [request = std::move(request)] { return fetch_blocking(request); };
  co_return co_await run_blocking(pool, std::move(call), at);
}

}  // namespace scraperd::daemon
