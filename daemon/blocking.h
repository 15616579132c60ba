// run_blocking: the one way a coroutine on the event loop calls blocking code.
//
//   int n = co_await run_blocking(pool, [&] { return slow_call(); });
//
// The callable runs on a thread of `pool`; the awaiting coroutine suspends and resumes on its
// own executor (the loop) with the result, or with the exception the callable threw.
// (`co_await asio::post(pool, use_awaitable)` would NOT do this: it resumes on the loop.)
#pragma once

#include <asio/co_spawn.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <type_traits>
#include <utility>

namespace scraperd::daemon {

namespace detail {
// A free coroutine, so `fn` is copied into the coroutine frame (a lambda coroutine's captures
// would die with the closure before the coroutine ends).
template <typename F>
asio::awaitable<std::invoke_result_t<F&>> call(F fn) {
  co_return fn();
}
}  // namespace detail

template <typename F>
asio::awaitable<std::invoke_result_t<F&>> run_blocking(asio::thread_pool& pool, F fn) {
  return asio::co_spawn(pool, detail::call(std::move(fn)), asio::use_awaitable);
}

}  // namespace scraperd::daemon
