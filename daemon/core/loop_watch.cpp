#include "daemon/core/loop_watch.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <string_view>

namespace scraperd::loop_watch {
namespace {
std::atomic<std::uint64_t> slow{0};
}

void watch_this_thread(std::chrono::nanoseconds threshold) {
  detail::threshold_ns = threshold.count();
}

std::uint64_t slow_steps() {
  return slow.load(std::memory_order_relaxed);
}

namespace detail {

void report(std::int64_t ns, const Where& where) {
  slow.fetch_add(1, std::memory_order_relaxed);
  if (!where.file) {
    spdlog::warn("event loop: a step held the loop for {:.1f} ms (resumed from an unknown place)",
                 ns / 1e6);
    return;
  }
  std::string_view file = where.file;
  if (auto slash = file.rfind('/'); slash != std::string_view::npos) {
    // Keep "daemon/engine.cpp" of "/work/main/daemon/engine.cpp".
    if (auto prev = file.rfind('/', slash - 1); prev != std::string_view::npos)
      file.remove_prefix(prev + 1);
  }
  spdlog::warn(
      "event loop: a step held the loop for {:.1f} ms, resumed after the co_await at "
      "{}:{} in {}",
      ns / 1e6, file, where.line, where.function ? where.function : "?");
}

}  // namespace detail
}  // namespace scraperd::loop_watch
