// When a job is due: pure functions of its schedule, its name and the time, so they test
// without sleeping.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace scraperd::daemon {

using TimePoint = std::chrono::system_clock::time_point;

// A stable offset for an `every` job's first run after a start, derived from its name: spreads
// jobs over min(every, 1 minute), so a thousand jobs do not fire in the same millisecond.
std::chrono::milliseconds start_offset(std::string_view job_name, const config::Schedule& s);

// The first run after the daemon starts at `now`. A due time persisted by an earlier process
// that has passed means runs were missed while down: it is returned as is, so the job runs at
// once, once (not N times), its lag shows, and next_due() stays on the old grid. A
// persisted time still ahead is kept (capped at now + every, in case `every` was shortened;
// cron recomputes from its expression). Without one: now + start_offset for `every`, the next
// firing for `cron`. TimePoint::max() when a cron schedule never fires.
TimePoint first_due(const config::Schedule& s, std::string_view job_name, TimePoint now,
                    std::optional<TimePoint> persisted = std::nullopt);

struct Next {
  TimePoint due;
  int skipped = 0;  // due points that passed while the previous run was still going
};

// The run after one that was due at `due`, when it is `now`. Deadline-based: `every` runs are
// due at due + n × every (not "finished + every", so they do not drift); points missed while a
// run overran are skipped and counted, never run in a burst.
Next next_due(const config::Schedule& s, TimePoint due, TimePoint now);

// For people: "every 15m", "cron '0 3 * * *' Europe/Paris".
std::string describe(const config::Schedule& s);

}  // namespace scraperd::daemon
