// run_blocking: the one way a coroutine on the event loop calls blocking code.
//
//   int n = co_await run_blocking(pool, [&] { return slow_call(); });
//
// The callable runs on a thread of `pool`; the awaiting coroutine suspends and resumes on its
// own executor (the loop) with the result, or with the exception the callable threw.
// (`co_await asio::post(pool, use_awaitable)` would NOT do this: it resumes on the loop.)
//
// here() is asio::use_awaitable that also remembers where the co_await is, so --debug-loop
// (loop_watch.h) can name the place a slow step resumed from:
//
//   co_await timer.async_wait(here());
#pragma once

#include <asio/co_spawn.hpp>
#include <asio/thread_pool.hpp>
#include <asio/use_awaitable.hpp>
#include <source_location>
#include <type_traits>
#include <utility>

namespace scraperd::daemon {

inline asio::use_awaitable_t<> here(std::source_location at = std::source_location::current()) {
  return {at.file_name(), static_cast<int>(at.line()), at.function_name()};
}

namespace detail {
// A free coroutine, so `fn` is copied into the coroutine frame (a lambda coroutine's captures
// would die with the closure before the coroutine ends).
template <typename F>
asio::awaitable<std::invoke_result_t<F&>> call(F fn) {
  co_return fn();
}
}  // namespace detail

// `at`: the caller's place, reported by --debug-loop when the step after it is slow.
template <typename F>
asio::awaitable<std::invoke_result_t<F&>> run_blocking(
    asio::thread_pool& pool, F fn, std::source_location at = std::source_location::current()) {
  return asio::co_spawn(pool, detail::call(std::move(fn)), here(at));
}

}  // namespace scraperd::daemon
