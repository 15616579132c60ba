// TaskGroup: structured concurrency on the event loop (asyncio's gather / TaskGroup).
//
//   TaskGroup group(co_await asio::this_coro::executor);
//   for (auto& url : urls) group.spawn(fetch_one(url));
//   co_await group.wait();  // every child has finished
//
// A child's exception is logged and does not stop its siblings (gather with
// return_exceptions=True). Loop-thread only: no locking.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <cstddef>
#include <string>

namespace scraperd::daemon {

class TaskGroup {
 public:
  // `name` appears in the log when a child fails with an exception.
  TaskGroup(asio::any_io_executor executor, std::string name);
  // REQUIRES: wait() has returned (children refer to the group).
  ~TaskGroup() = default;
  TaskGroup(const TaskGroup&) = delete;
  TaskGroup& operator=(const TaskGroup&) = delete;

  void spawn(asio::awaitable<void> task);

  // Completes when no child is running.
  asio::awaitable<void> wait();

  std::size_t active() const { return active_; }

 private:
  asio::any_io_executor executor_;
  std::string name_;
  std::size_t active_ = 0;
  asio::steady_timer idle_;  // cancelled when active_ drops to zero
};

}  // namespace scraperd::daemon
