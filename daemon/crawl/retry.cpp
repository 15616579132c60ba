#include "daemon/crawl/retry.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <ctime>

namespace scraperd::daemon {

bool retryable(const config::Retries& retries, const std::string& error_kind, int status) {
  if (!error_kind.empty())
    return error_kind == "connect" || error_kind == "timeout" || error_kind == "read";
  return std::find(retries.on_status.begin(), retries.on_status.end(), status) !=
         retries.on_status.end();
}

std::chrono::milliseconds backoff(const config::Retries& retries, int attempt, double u) {
  // Doubling in floating point cannot overflow; the cap applies before the jitter.
  double base = static_cast<double>(retries.backoff.count());
  double cap = std::min(static_cast<double>(retries.max_backoff.count()),
                        base * std::pow(2.0, std::max(attempt, 1) - 1));
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::clamp(u, 0.0, 1.0) * cap));
}

std::optional<std::chrono::seconds> retry_after(std::string_view value,
                                                std::chrono::system_clock::time_point now) {
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.front())))
    value.remove_prefix(1);
  while (!value.empty() && std::isspace(static_cast<unsigned char>(value.back())))
    value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (value.size() > 9) return std::chrono::seconds(999'999'999);  // absurd, but a number
    return std::chrono::seconds(std::stoll(std::string(value)));
  }
  // strptime reads English day and month names in the C locale, which a daemon runs in.
  const std::string text(value);
  for (const char* format : {"%a, %d %b %Y %H:%M:%S GMT",  // IMF-fixdate
                             "%A, %d-%b-%y %H:%M:%S GMT",  // RFC 850
                             "%a %b %e %H:%M:%S %Y"}) {    // asctime
    std::tm tm{};
    const char* end = ::strptime(text.c_str(), format, &tm);
    if (!end || *end != '\0') continue;
    auto at = std::chrono::system_clock::from_time_t(::timegm(&tm));
    if (at <= now) return std::chrono::seconds(0);
    return std::chrono::ceil<std::chrono::seconds>(at - now);
  }
  return std::nullopt;
}

}  // namespace scraperd::daemon
