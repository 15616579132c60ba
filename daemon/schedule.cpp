#include "daemon/schedule.h"

#include <algorithm>

#include "config/duration.h"

namespace scraperd::daemon {

TimePoint first_due(const config::Schedule& schedule, TimePoint now) {
  if (!schedule.cron) return now;
  return schedule.cron->next(now - std::chrono::seconds(1), schedule.timezone)
      .value_or(TimePoint::max());
}

TimePoint next_due(const config::Schedule& schedule, TimePoint due, TimePoint now) {
  if (schedule.cron)
    return schedule.cron->next(std::max(due, now), schedule.timezone).value_or(TimePoint::max());
  auto next = due + schedule.every;
  if (next <= now) next += ((now - next) / schedule.every + 1) * schedule.every;
  return next;
}

std::string describe(const config::Schedule& schedule) {
  if (!schedule.cron) return "every " + config::format_duration(schedule.every);
  std::string text = "cron '" + schedule.cron->text + "'";
  if (schedule.timezone.name() != "UTC") text += " " + schedule.timezone.name();
  return text;
}

}  // namespace scraperd::daemon
