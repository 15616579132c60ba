#include "daemon/core/task_group.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <vector>

using scraperd::daemon::TaskGroup;

namespace {

asio::awaitable<void> sleep_then_record(int ms, int id, std::vector<int>& done) {
  asio::steady_timer t(co_await asio::this_coro::executor, std::chrono::milliseconds(ms));
  co_await t.async_wait(asio::use_awaitable);
  done.push_back(id);
}

asio::awaitable<void> fail() {
  co_await asio::post(co_await asio::this_coro::executor, asio::use_awaitable);
  throw std::runtime_error("child failed");
}

asio::awaitable<void> parent(std::vector<int>& done, bool& waited) {
  TaskGroup group(co_await asio::this_coro::executor, "test");
  group.spawn(sleep_then_record(30, 1, done));
  group.spawn(fail());
  group.spawn(sleep_then_record(10, 2, done));
  group.spawn(sleep_then_record(0, 3, done));
  co_await group.wait();
  waited = true;
  CHECK(group.active() == 0);
}

asio::awaitable<void> empty_group(bool& waited) {
  TaskGroup group(co_await asio::this_coro::executor, "empty");
  co_await group.wait();
  waited = true;
}

}  // namespace

TEST_CASE("wait returns after every child, and a failing child does not stop the others",
          "[task_group]") {
  asio::io_context io;
  std::vector<int> done;
  bool waited = false;
  asio::co_spawn(io, parent(done, waited), asio::detached);
  io.run();
  CHECK(waited);
  CHECK(done == std::vector<int>{3, 2, 1});
}

TEST_CASE("waiting on an empty group returns at once", "[task_group]") {
  asio::io_context io;
  bool waited = false;
  asio::co_spawn(io, empty_group(waited), asio::detached);
  io.run();
  CHECK(waited);
}
