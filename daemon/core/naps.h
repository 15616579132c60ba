// Naps: sleeps on the loop that end early when the daemon stops.
//
//   if (!co_await naps.nap(wait)) co_return;  // stopping: give up
//
// A run waiting to retry, a robots.txt reader waiting for another's fetch, a reload waiting
// for the one before it: each naps here, and stop() wakes them all at once. Loop-thread only.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <list>

namespace scraperd::daemon {

class Naps {
 public:
  explicit Naps(asio::any_io_executor executor) : executor_(std::move(executor)) {}
  Naps(const Naps&) = delete;
  Naps& operator=(const Naps&) = delete;

  // Sleeps `d`; false when stop() came first (or had come already).
  asio::awaitable<bool> nap(std::chrono::milliseconds d);

  // Wakes every nap; later ones return false at once.
  void stop();
  bool stopping() const { return stopping_; }

 private:
  asio::any_io_executor executor_;
  bool stopping_ = false;
  std::list<asio::steady_timer*> napping_;
};

}  // namespace scraperd::daemon
