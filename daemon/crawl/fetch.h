// Fetching URLs on the event loop with libcurl's multi_socket interface, bounded in time and
// size, every failure classified.
//
//   Fetcher fetcher(io);                       // one per event loop
//   FetchResult r = co_await fetcher.fetch(request_for(job, url));
//
// There is no fetch thread: curl says which sockets to watch and when its timer is due, the
// loop waits on them (asio) and hands the events back to curl; a finished transfer resumes
// the coroutine that awaits it. Connections (HTTP/1.1 keep-alive and HTTP/2), TLS sessions
// and DNS answers are cached in the Fetcher and shared by every request on its loop.
// Every bound is kept by curl or by curl's callbacks: the total deadline, the connect
// timeout, max_body (announced or counted, after decoding), 256 KB of response headers.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <source_location>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace scraperd::daemon {

// Cookies kept between the requests that share it: one per job run (`cookies: true`), so a
// cookie set by one response (a redirect's too) goes with the next request to its site. Starts
// empty; loop-thread only. Movable, not copyable.
class CookieJar {
 public:
  CookieJar();
  ~CookieJar();
  CookieJar(CookieJar&& other) noexcept;
  CookieJar& operator=(CookieJar&& other) noexcept;
  CookieJar(const CookieJar&) = delete;
  CookieJar& operator=(const CookieJar&) = delete;

  void* handle() const { return share_; }  // the CURLSH*

 private:
  void* share_ = nullptr;
};

struct FetchRequest {
  std::string url;  // absolute http(s) URL
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;  // a User-Agent here wins
  std::string body;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{30'000};  // the whole exchange, connect to last byte
  std::string user_agent;
  std::uint64_t max_body = 10 * 1024 * 1024;
  bool cut_body = false;   // true: a longer body is cut at max_body and kept, not too_large
  std::string proxy;       // http://, https://, socks5:// or socks5h://host:port; empty: none
  int max_redirects = 5;   // more, or a loop, is an error of kind redirect_loop
  std::string ca_file;     // PEM file of the CAs to trust instead of the system's; empty: system
  bool verify_tls = true;  // false: any certificate, any name
  bool http2 = true;       // offered through ALPN over TLS; false: HTTP/1.1 only
  CookieJar* cookies = nullptr;  // null: no cookies kept (a Cookie in `headers` is still sent)
  std::uint64_t group = 0;       // for Fetcher::cancel(group): the run it belongs to
};

struct FetchResult {
  // Empty when a response arrived (whatever its status); otherwise one of dns, connect, tls,
  // timeout, read, too_large, redirect_loop, parse, cancelled, or http (a redirect that cannot
  // be followed; `status` holds it), and a message for people.
  std::string error_kind;
  std::string error_message;
  int status = 0;         // HTTP status, 0 when no response arrived
  std::string final_url;  // where redirects led; empty when there were none
  std::string body;       // decoded (gzip, deflate, brotli, zstd)
  // Headers of the final response that the engine acts on; empty when absent.
  std::string retry_after;  // a pause asked for by a 429 or 503
  std::string etag;         // validators for the next conditional GET
  std::string last_modified;
  std::string content_type;  // of the body, e.g. "text/html; charset=utf-8"
  std::string http_version;  // of the final response: "1.0", "1.1" or "2"
  std::chrono::steady_clock::duration elapsed{};

  bool ok() const { return error_kind.empty(); }
};

// The request `job` makes for `url`: its method, headers, body, timeouts, limits, proxy, TLS.
FetchRequest request_for(const config::Job& job, const std::string& url);

// Response headers larger than this in all end a request as `too_large`.
inline constexpr std::uint64_t kMaxHeaderBytes = 256 * 1024;

// All the fetches of one event loop. Loop-thread only: construct, call and destroy it on the
// thread that runs `io`.
class Fetcher {
 public:
  // `max_connections`: connections curl keeps (busy and idle, every host); beyond it the
  // oldest idle one is closed. At least the requests in flight, or keep-alive is lost.
  explicit Fetcher(asio::io_context& io, std::size_t max_connections = 64);
  ~Fetcher();  // ends whatever is still in flight as `cancelled`
  Fetcher(const Fetcher&) = delete;
  Fetcher& operator=(const Fetcher&) = delete;

  // Performs `request`, following redirects. Never throws for network failures. `at` names
  // the caller for --debug-loop.
  asio::awaitable<FetchResult> fetch(FetchRequest request,
                                     std::source_location at = std::source_location::current());

  // Every transfer of `group` in flight ends now as `cancelled` (its connection is dropped).
  void cancel(std::uint64_t group);

  // Every transfer in flight ends now as `cancelled`, and so does every later fetch().
  void close();

  // Transfers in flight.
  std::size_t in_flight() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// How many connections a Fetcher should keep (its max_connections), busy and idle: one for
// every request in flight (`concurrency`), and room for an idle one to each of up to 1,024
// hosts met lately, so that a job per site, each site held to a few requests a second, reuses
// its connection instead of dialling each time (500 sites at 4/s took 1.4x as long with 64
// kept); within half of `open_files` (the process's limit; 0: none).
std::size_t connections_to_keep(int concurrency, std::uint64_t open_files);

// Blocking: performs `request` on a loop of its own on the calling thread (`scraperd try`,
// tests). Never throws for network failures.
FetchResult fetch_blocking(const FetchRequest& request);

}  // namespace scraperd::daemon
