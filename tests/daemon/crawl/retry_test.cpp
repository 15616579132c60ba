#include "daemon/crawl/retry.h"

#include <catch2/catch.hpp>

using namespace scraperd;
using namespace std::chrono_literals;

TEST_CASE("retryable: transient network errors and the configured statuses", "[retry]") {
  config::Retries r;
  r.on_status = {429, 503};
  CHECK(daemon::retryable(r, "connect", 0));
  CHECK(daemon::retryable(r, "timeout", 0));
  CHECK(daemon::retryable(r, "read", 0));
  for (auto kind : {"dns", "tls", "too_large", "redirect_loop", "parse", "robots"})
    CHECK_FALSE(daemon::retryable(r, kind, 0));
  CHECK(daemon::retryable(r, "", 429));
  CHECK(daemon::retryable(r, "", 503));
  CHECK_FALSE(daemon::retryable(r, "", 500));
  CHECK_FALSE(daemon::retryable(r, "", 404));
  r.on_status.clear();
  CHECK_FALSE(daemon::retryable(r, "", 503));
}

TEST_CASE("backoff doubles from `backoff`, is capped by `max_backoff`, full jitter", "[retry]") {
  config::Retries r;
  r.backoff = 1s;
  r.max_backoff = 10s;
  // u close to 1 gives the ceiling of each attempt's range, u = 0 gives zero.
  CHECK(daemon::backoff(r, 1, 0.999999) == 999ms);
  CHECK(daemon::backoff(r, 2, 0.999999) == 1999ms);
  CHECK(daemon::backoff(r, 3, 0.999999) == 3999ms);
  CHECK(daemon::backoff(r, 4, 0.999999) == 7999ms);
  CHECK(daemon::backoff(r, 5, 0.999999) == 9999ms);   // capped
  CHECK(daemon::backoff(r, 60, 0.999999) == 9999ms);  // 2^59 s would overflow; still capped
  CHECK(daemon::backoff(r, 3, 0.5) == 2s);
  CHECK(daemon::backoff(r, 3, 0.0) == 0ms);
  for (int attempt = 1; attempt <= 30; ++attempt)
    for (double u : {0.0, 0.1, 0.5, 0.9, 0.999})
      CHECK(daemon::backoff(r, attempt, u) <= r.max_backoff);
}

TEST_CASE("Retry-After: seconds, the three HTTP-date forms, and garbage ignored", "[retry]") {
  // Sun, 06 Nov 1994 08:49:37 GMT, the example date of RFC 9110.
  auto date = std::chrono::system_clock::from_time_t(784111777);
  auto before = date - 90s;
  CHECK(daemon::retry_after("120", before) == 120s);
  CHECK(daemon::retry_after(" 0 ", before) == 0s);
  CHECK(daemon::retry_after("Sun, 06 Nov 1994 08:49:37 GMT", before) == 90s);
  CHECK(daemon::retry_after("Sunday, 06-Nov-94 08:49:37 GMT", before) == 90s);
  CHECK(daemon::retry_after("Sun Nov  6 08:49:37 1994", before) == 90s);
  CHECK(daemon::retry_after("Sun, 06 Nov 1994 08:49:37 GMT", date + 1h) == 0s);  // past
  CHECK(daemon::retry_after("Sun, 06 Nov 1994 08:49:37 GMT", before - 500ms) == 91s);
  for (auto garbage : {"", "soon", "-5", "1.5", "12abc", "Sun, 06 Nov 1994", "0x10",
                       "Sun, 06 Nov 1994 08:49:37 GMT trailing"})
    CHECK_FALSE(daemon::retry_after(garbage, before).has_value());
  CHECK(daemon::retry_after("99999999999999999999", before) == 999'999'999s);
}
