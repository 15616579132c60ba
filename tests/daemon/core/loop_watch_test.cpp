#include "daemon/core/loop_watch.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <catch2/catch.hpp>
#include <sstream>
#include <thread>

#include "daemon/core/blocking.h"

using namespace scraperd;
using namespace std::chrono_literals;

namespace {

int blocking_line = 0;

asio::awaitable<void> polite(int steps) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  for (int i = 0; i < steps; ++i) {
    t.expires_after(1ms);
    co_await t.async_wait(daemon::here());
  }
}

asio::awaitable<void> rude() {
  asio::steady_timer t(co_await asio::this_coro::executor, 1ms);
  blocking_line = __LINE__ + 1;
  co_await t.async_wait(daemon::here());
  std::this_thread::sleep_for(80ms);  // what a loop must never do: blocks it
}

}  // namespace

TEST_CASE("debug-loop reports the steps that hold the loop, and where they resumed",
          "[loop_watch]") {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));

  asio::io_context io;
  loop_watch::watch_this_thread(30ms);
  auto before = loop_watch::slow_steps();
  asio::co_spawn(io, polite(20), asio::detached);
  io.run();
  CHECK(loop_watch::slow_steps() == before);  // twenty quick steps: nothing reported
  CHECK(log.str().empty());

  io.restart();
  asio::co_spawn(io, rude(), asio::detached);
  io.run();
  loop_watch::watch_this_thread(0ns);
  spdlog::set_default_logger(previous);

  CHECK(loop_watch::slow_steps() == before + 1);
  CHECK_THAT(log.str(),
             Catch::Contains("event loop: a step held the loop for") &&
                 Catch::Contains("core/loop_watch_test.cpp:" + std::to_string(blocking_line)) &&
                 Catch::Contains("rude"));

  // Off, nothing is timed.
  io.restart();
  asio::co_spawn(io, rude(), asio::detached);
  io.run();
  CHECK(loop_watch::slow_steps() == before + 1);
}
