#include "daemon/core/naps.h"

#include <asio/experimental/as_tuple.hpp>

#include "daemon/core/blocking.h"

namespace scraperd::daemon {

asio::awaitable<bool> Naps::nap(std::chrono::milliseconds d) {
  if (stopping_) co_return false;
  asio::steady_timer timer(executor_, d);
  auto napping = napping_.insert(napping_.end(), &timer);
  co_await timer.async_wait(asio::experimental::as_tuple(here()));
  napping_.erase(napping);
  co_return !stopping_;
}

void Naps::stop() {
  stopping_ = true;
  for (auto* timer : napping_) timer->cancel();
}

}  // namespace scraperd::daemon
