// One headless Chromium, started with --remote-debugging-pipe and spoken to over Cdp.
//
//   std::string error;
//   auto browser = Browser::start(io, "/usr/bin/chromium", &error);  // null on failure
//   co_await browser->cdp().call("Target.createBrowserContext", ...);
//
// The browser runs in a session (and process group) of its own, with a throwaway profile in
// a temporary directory, fds 3 and 4 as its pipe ends and nothing else of ours open; its
// stderr goes to a file in that profile. Destroying the Browser kills the whole group (the
// browser and every helper it started), reaps the browser and removes the profile: no
// Chromium process outlives it.
#pragma once

#include <sys/types.h>

#include <asio/io_context.hpp>
#include <memory>
#include <string>
#include <vector>

#include "daemon/render/cdp.h"

namespace scraperd::daemon::render {

class Browser {
 public:
  static std::unique_ptr<Browser> start(asio::io_context& io, const std::string& executable,
                                        std::string* error);
  ~Browser();
  Browser(const Browser&) = delete;
  Browser& operator=(const Browser&) = delete;

  Cdp& cdp() { return *cdp_; }
  pid_t pid() const { return pid_; }
  bool unresponsive = false;  // a call to the browser itself timed out: replace it
  // The flags the browser is started with (without the profile directory).
  static std::vector<std::string> flags();

 private:
  Browser() = default;
  pid_t pid_ = -1;
  std::string profile_;
  std::unique_ptr<Cdp> cdp_;
};

}  // namespace scraperd::daemon::render
