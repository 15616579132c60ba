#include "daemon/core/task_group.h"

#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

#include "daemon/core/blocking.h"

namespace scraperd::daemon {

TaskGroup::TaskGroup(asio::any_io_executor executor, std::string name)
    : executor_(executor), name_(std::move(name)), idle_(executor) {}

void TaskGroup::spawn(asio::awaitable<void> task) {
  ++active_;
  asio::co_spawn(executor_, std::move(task), [this](std::exception_ptr e) {
    if (e) {
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        spdlog::error("{}: a task failed: {}", name_, ex.what());
      } catch (...) {
        spdlog::error("{}: a task failed with an unknown exception", name_);
      }
    }
    if (--active_ == 0) idle_.cancel();
  });
}

asio::awaitable<void> TaskGroup::wait() {
  while (active_ > 0) {
    idle_.expires_at(asio::steady_timer::time_point::max());
    co_await idle_.async_wait(asio::experimental::as_tuple(here()));
  }
}

}  // namespace scraperd::daemon
