#include "daemon/core/blocking.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <stdexcept>
#include <thread>

using scraperd::daemon::run_blocking;

namespace {

asio::awaitable<void> probe(asio::thread_pool& pool, std::thread::id& ran_on,
                            std::thread::id& resumed_on, int& value) {
  value = co_await run_blocking(pool, [&ran_on] {
    ran_on = std::this_thread::get_id();
    return 42;
  });
  resumed_on = std::this_thread::get_id();
}

asio::awaitable<void> throws(asio::thread_pool& pool, std::string& caught) {
  try {
    co_await run_blocking(pool, []() -> void { throw std::runtime_error("boom"); });
  } catch (const std::exception& e) {
    caught = e.what();
  }
}

}  // namespace

TEST_CASE("run_blocking runs the call on the pool and resumes on the loop", "[blocking]") {
  asio::io_context io;
  asio::thread_pool pool(2);
  std::thread::id ran_on, resumed_on;
  int value = 0;
  asio::co_spawn(io, probe(pool, ran_on, resumed_on, value), asio::detached);
  io.run();
  CHECK(value == 42);
  CHECK(ran_on != std::this_thread::get_id());
  CHECK(resumed_on == std::this_thread::get_id());
  pool.join();
}

TEST_CASE("an exception in the blocking call reaches the awaiting coroutine", "[blocking]") {
  asio::io_context io;
  asio::thread_pool pool(1);
  std::string caught;
  asio::co_spawn(io, throws(pool, caught), asio::detached);
  io.run();
  CHECK(caught == "boom");
  pool.join();
}
