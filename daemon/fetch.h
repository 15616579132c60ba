// Fetching one URL with cpp-httplib, bounded in time and size, every failure classified.
//
// fetch_blocking() is the blocking call and must run off the event loop; coroutines use
// fetch(), which runs it on the fetch pool. Each pool thread keeps one keep-alive client per
// origin, so consecutive requests to a host reuse their connection.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <source_location>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"

namespace scraperd::daemon {

struct FetchRequest {
  std::string url;  // absolute http(s) URL
  std::string method = "GET";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds timeout{30'000};  // the whole exchange, connect to last byte
  std::string user_agent;
  std::uint64_t max_body = 10 * 1024 * 1024;
  std::string proxy;      // http://host:port, or empty
  int max_redirects = 5;  // more, or a loop, is an error of kind redirect_loop
};

struct FetchResult {
  // Empty when a response arrived (whatever its status); otherwise one of dns, connect, tls,
  // timeout, read, too_large, redirect_loop, parse, or http (a redirect that cannot be
  // followed; `status` holds it), and a message for people.
  std::string error_kind;
  std::string error_message;
  int status = 0;         // HTTP status, 0 when no response arrived
  std::string final_url;  // where redirects led; empty when there were none
  std::string body;
  // Headers of the final response that the engine acts on; empty when absent.
  std::string retry_after;  // a pause asked for by a 429 or 503
  std::string etag;         // validators for the next conditional GET
  std::string last_modified;
  std::string content_type;  // of the body, e.g. "text/html; charset=utf-8"
  std::chrono::steady_clock::duration elapsed{};

  bool ok() const { return error_kind.empty(); }
};

// The request `job` makes for `url`: its method, headers, body, timeouts, limits, proxy.
FetchRequest request_for(const config::Job& job, const std::string& url);

// Blocking: performs the request on the calling thread. Never throws for network failures.
FetchResult fetch_blocking(const FetchRequest& request);

// Runs fetch_blocking on `pool` and resumes the caller on its own executor. `at` names the
// caller for --debug-loop.
asio::awaitable<FetchResult> fetch(asio::thread_pool& pool, FetchRequest request,
                                   std::source_location at = std::source_location::current());

}  // namespace scraperd::daemon
