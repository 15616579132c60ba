// --debug-loop: finds the steps that hold the event loop too long (asyncio's debug mode).
//
//   loop_watch::watch_this_thread(std::chrono::milliseconds(100));  // on the loop thread
//   io.run();  // every handler that runs longer than 100 ms there is logged, with the place
//              // in our code where its coroutine was suspended
//
// It works through Asio's handler-tracking hooks: this header is named by
// ASIO_CUSTOM_HANDLER_TRACKING (set for every target that sees Asio, see daemon/CMakeLists.txt),
// so Asio includes it and calls the functions below around each handler it runs. Off (the
// default), the cost per handler is one copied pointer triple and one test of a flag.
// Deliberately free of Asio includes: Asio includes it.
#pragma once

#include <chrono>
#include <cstdint>

namespace scraperd::loop_watch {

// A place in the source: where a coroutine awaited the operation whose handler this is.
struct Where {
  const char* file = nullptr;
  int line = 0;
  const char* function = nullptr;
};

// Every Asio handler carries where it was created.
struct TrackedHandler {
  Where where;
};

// Starts timing the handlers that run on the calling thread; `threshold` 0 stops.
void watch_this_thread(std::chrono::nanoseconds threshold);

// How many handlers on a watched thread ran over the threshold so far (for tests).
std::uint64_t slow_steps();

// Steps resumed through asio::use_awaitable carry no place (Asio's constant records none);
// daemon::here() (blocking.h) is the token that does.

namespace detail {

// Where handlers being created on this thread come from (set while a handler runs, and by
// ASIO_HANDLER_LOCATION when an operation starts).
inline thread_local Where current;
// Nonzero on a watched thread.
inline thread_local std::int64_t threshold_ns = 0;

void report(std::int64_t ns, const Where& where);

inline std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Location {
  Location(const char* file, int line, const char* function) : saved(current) {
    if (file) current = {file, line, function};
  }
  ~Location() { current = saved; }
  Where saved;
};

template <typename Context, typename... Rest>
void creation(Context&, TrackedHandler& handler, Rest&&...) {
  handler.where = current;
}

class Completion {
 public:
  explicit Completion(const TrackedHandler& handler) : where_(handler.where) {}
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;
  ~Completion() { invocation_end(); }

  template <typename... Args>
  void invocation_begin(const Args&...) {
    saved_ = current;
    current = where_;
    active_ = true;
    if (threshold_ns) start_ = now_ns();
  }
  void invocation_end() {
    if (!active_) return;
    active_ = false;
    current = saved_;
    if (start_) {
      auto took = now_ns() - start_;
      start_ = 0;
      if (threshold_ns && took > threshold_ns) report(took, where_);
    }
  }

 private:
  Where where_;
  Where saved_;
  std::int64_t start_ = 0;
  bool active_ = false;
};

}  // namespace detail
}  // namespace scraperd::loop_watch

#define ASIO_INHERIT_TRACKED_HANDLER : public ::scraperd::loop_watch::TrackedHandler
#define ASIO_ALSO_INHERIT_TRACKED_HANDLER , public ::scraperd::loop_watch::TrackedHandler
#define ASIO_HANDLER_TRACKING_INIT (void)0
#define ASIO_HANDLER_LOCATION(args) ::scraperd::loop_watch::detail::Location tracked_location args
#define ASIO_HANDLER_CREATION(args) ::scraperd::loop_watch::detail::creation args
#define ASIO_HANDLER_COMPLETION(args) \
  ::scraperd::loop_watch::detail::Completion tracked_completion args
#define ASIO_HANDLER_INVOCATION_BEGIN(args) tracked_completion.invocation_begin args
#define ASIO_HANDLER_INVOCATION_END tracked_completion.invocation_end()
#define ASIO_HANDLER_OPERATION(args) (void)0
#define ASIO_HANDLER_REACTOR_REGISTRATION(args) (void)0
#define ASIO_HANDLER_REACTOR_DEREGISTRATION(args) (void)0
#define ASIO_HANDLER_REACTOR_READ_EVENT 1
#define ASIO_HANDLER_REACTOR_WRITE_EVENT 2
#define ASIO_HANDLER_REACTOR_ERROR_EVENT 4
#define ASIO_HANDLER_REACTOR_EVENTS(args) (void)0
#define ASIO_HANDLER_REACTOR_OPERATION(args) (void)0
