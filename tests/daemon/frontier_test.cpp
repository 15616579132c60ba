#include "daemon/frontier.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <catch2/catch.hpp>

using namespace scraperd;
using namespace std::chrono_literals;
using daemon::Steady;
using daemon::TokenBucket;

TEST_CASE("a token bucket allows a burst, then the rate", "[frontier]") {
  Steady::time_point t0{};
  TokenBucket b(2.0, 3, t0);  // 2/s, burst 3
  CHECK(b.take(t0) == 0s);
  CHECK(b.take(t0) == 0s);
  CHECK(b.take(t0) == 0s);
  CHECK(b.take(t0) == 500ms);  // empty: the next token in half a second
  CHECK(b.take(t0 + 499ms) > 0s);
  CHECK(b.take(t0 + 500ms) == 0s);
  CHECK(b.take(t0 + 750ms) == 250ms);
  // An idle spell refills only up to the burst.
  CHECK(b.full(t0 + 1h));
  for (int i = 0; i < 3; ++i) CHECK(b.take(t0 + 1h) == 0s);
  CHECK(b.take(t0 + 1h) > 0s);
}

TEST_CASE("a token bucket tightens to the strictest limits", "[frontier]") {
  Steady::time_point t0{};
  TokenBucket b(10.0, 10, t0);
  b.restrict(1.0, 2);
  CHECK(b.take(t0) == 0s);
  CHECK(b.take(t0) == 0s);
  CHECK(b.take(t0) == 1s);
  b.restrict(100.0, 50);  // looser: ignored
  CHECK(b.take(t0) == 1s);
}

namespace {

asio::awaitable<void> hold(daemon::Frontier& f, std::string host, config::PerHost limits,
                           Steady::duration for_how_long, int& peak_host, int& peak_all,
                           std::map<std::string, int>& now_per_host) {
  auto permit = co_await f.acquire(host, limits);
  peak_host = std::max(peak_host, ++now_per_host[host]);
  peak_all = std::max(peak_all, f.in_flight());
  asio::steady_timer t(co_await asio::this_coro::executor, for_how_long);
  co_await t.async_wait(asio::use_awaitable);
  --now_per_host[host];
}

}  // namespace

TEST_CASE("per-host and global caps hold, and idle hosts are forgotten", "[frontier]") {
  asio::io_context io;
  daemon::Frontier f(io.get_executor(), 3);
  config::PerHost limits;
  limits.rate = 1000;
  limits.burst = 1000;
  limits.concurrency = 2;
  int peak_host = 0, peak_all = 0;
  std::map<std::string, int> now;
  for (int i = 0; i < 12; ++i)
    asio::co_spawn(io, hold(f, "h" + std::to_string(i % 3), limits, 20ms, peak_host, peak_all, now),
                   asio::detached);
  io.run();
  CHECK(peak_host <= 2);
  CHECK(peak_all == 3);
  CHECK(f.in_flight() == 0);
  CHECK(f.hosts() == 0);
}
