// When to try a failed request again, and how long to wait first. Pure functions.
//
//   if (retryable(job.retries, result) && attempt <= job.retries.max)
//     sleep(backoff(job.retries, attempt, uniform01));
//   if (auto pause = retry_after(value, now)) frontier.pause(host, now + *pause);
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace scraperd::daemon {

// True for errors worth another try: the network failed in a way that may pass (connect,
// timeout, read) or the status is one of `retries.on_status`. DNS, TLS, size and redirect
// failures are not: they fail the same way again.
bool retryable(const config::Retries& retries, const std::string& error_kind, int status);

// The wait before attempt `attempt + 1` after attempt `attempt` (1-based) failed: exponential
// backoff with full jitter, `u` * min(max_backoff, backoff * 2^(attempt-1)), `u` in [0, 1).
std::chrono::milliseconds backoff(const config::Retries& retries, int attempt, double u);

// A Retry-After header value (RFC 9110 10.2.3): delay-seconds, or an HTTP-date (IMF-fixdate,
// and the obsolete RFC 850 and asctime forms), as a wait from `now`; a date in the past is
// zero. Nullopt for anything else, so a garbage value is ignored rather than obeyed.
std::optional<std::chrono::seconds> retry_after(std::string_view value,
                                                std::chrono::system_clock::time_point now);

}  // namespace scraperd::daemon
