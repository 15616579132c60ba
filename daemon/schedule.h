// When a job is due: pure functions of its schedule and the time, so they test without
// sleeping.
#pragma once

#include <chrono>
#include <string>

#include "config/config.h"

namespace scraperd::daemon {

using TimePoint = std::chrono::system_clock::time_point;

// The first run after the daemon starts at `now`: at once for `every`, the next firing for
// `cron`. TimePoint::max() when a cron schedule never fires.
TimePoint first_due(const config::Schedule& schedule, TimePoint now);

// The run after one that was due at `due`, when it is `now`. Deadline-based: `every` runs are
// due at due + n × every (not "finished + every", so they do not drift); points missed while
// a run overran are skipped, never run in a burst.
TimePoint next_due(const config::Schedule& schedule, TimePoint due, TimePoint now);

// For people: "every 15m", "cron '0 3 * * *' Europe/Paris".
std::string describe(const config::Schedule& schedule);

}  // namespace scraperd::daemon
