#include "daemon/schedule.h"

#include <algorithm>

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

}  // namespace scraperd::daemon
