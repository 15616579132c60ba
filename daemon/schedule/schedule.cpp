#include "daemon/schedule/schedule.h"

#include <algorithm>
#include <cstdint>

#include "config/duration.h"
#include "config/text.h"

namespace scraperd::daemon {

std::chrono::milliseconds start_offset(std::string_view job_name, const config::Schedule& s) {
  auto spread = std::min<std::chrono::milliseconds>(s.every, std::chrono::minutes(1));
  if (spread.count() <= 0) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(config::fnv1a(job_name) %
                                   static_cast<std::uint64_t>(spread.count()));
}

TimePoint first_due(const config::Schedule& s, std::string_view job_name, TimePoint now,
                    std::optional<TimePoint> persisted) {
  if (persisted && *persisted <= now) return *persisted;  // missed while down: runs at once
  if (s.cron)  // the expression decides; it may have been edited since
    return s.cron->next(now - std::chrono::seconds(1), s.timezone).value_or(TimePoint::max());
  if (persisted) return std::min(*persisted, now + s.every);  // `every` may have been shortened
  return now + start_offset(job_name, s);
}

Next next_due(const config::Schedule& s, TimePoint due, TimePoint now) {
  Next next{due, 0};
  if (s.cron) {
    auto at = s.cron->next(due, s.timezone);
    while (at && *at <= now && next.skipped < 1'000'000) {
      ++next.skipped;
      at = s.cron->next(*at, s.timezone);
    }
    next.due = at.value_or(TimePoint::max());
    return next;
  }
  next.due = due + s.every;
  if (next.due <= now) {
    auto missed = (now - next.due) / s.every + 1;
    next.skipped = static_cast<int>(std::min<decltype(missed)>(missed, 1'000'000));
    next.due += missed * s.every;
  }
  return next;
}

std::string describe(const config::Schedule& s) {
  if (!s.cron) return "every " + config::format_duration(s.every);
  std::string text = "cron '" + s.cron->text + "'";
  if (s.timezone.name() != "UTC") text += " " + s.timezone.name();
  return text;
}

}  // namespace scraperd::daemon
