// Our Chrome DevTools Protocol client over --remote-debugging-pipe, on the event loop.
//
//   Cdp cdp(io, to_browser_fd, from_browser_fd);     // takes both fds
//   cdp.on_event(session, [](const std::string& method, const json& params) { ... });
//   CdpReply r = co_await cdp.call("Target.createTarget", {{"url", "about:blank"}}, "",
//                                  Steady::now() + 5s);
//
// Framing: one JSON object per message, each followed by a NUL byte, both ways (Chromium reads
// commands from its fd 3 and writes replies and events to its fd 4). Writes are queued and
// written one after the other; the reader splits at NUL and matches a reply to its call by
// `id`, events go to the handler of their `sessionId` ("" for the browser's own). A call waits
// on a steady_timer that expires at its deadline and is cancelled by its reply. When the pipe
// closes (the browser exited or crashed) every waiting call ends with error "closed".
// Loop-thread only.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace scraperd::daemon::render {

using json = nlohmann::json;
using Steady = std::chrono::steady_clock;

struct CdpReply {
  json result;        // the reply's "result" when error is empty
  std::string error;  // "timeout", "closed", or the browser's error message
  bool ok() const { return error.empty(); }
};

// The largest message read from the browser; a longer one closes the connection.
inline constexpr std::size_t kMaxCdpMessage = 256 * 1024 * 1024;

class Cdp {
 public:
  using EventHandler = std::function<void(const std::string& method, const json& params)>;

  Cdp(asio::io_context& io, int to_browser, int from_browser);
  ~Cdp();  // closes the pipe; waiting calls end with "closed"
  Cdp(const Cdp&) = delete;
  Cdp& operator=(const Cdp&) = delete;

  // Sends `method` (to `session`, or to the browser when empty) and waits for its reply until
  // `deadline`.
  // (`method` and `session` are read before the first suspension; callers name their json.)
  asio::awaitable<CdpReply> call(const char* method, json params, const std::string& session,
                                 Steady::time_point deadline);
  // Sends every call of `calls` at once (to `session`) and waits for all their replies, in
  // that order: one round trip instead of one per call.
  asio::awaitable<std::vector<CdpReply>> call_all(std::vector<std::pair<std::string, json>> calls,
                                                  const std::string& session,
                                                  Steady::time_point deadline);
  // Sends without waiting; the reply is dropped (from event handlers, which cannot wait).
  void send(const std::string& method, json params, const std::string& session);

  // Events of `session` ("" for the browser's); replaces the previous handler of that session.
  void on_event(const std::string& session, EventHandler handler);
  void forget(const std::string& session);
  // Ends the calls waiting on `session` now, with `error` (its target crashed: no reply will
  // come).
  void fail_session(const std::string& session, const std::string& error);
  // Called once when the pipe closes.
  void on_closed(std::function<void()> handler);

  bool closed() const;
  void close();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace scraperd::daemon::render
