#include "daemon/schedule.h"

#include <catch2/catch.hpp>

using namespace scraperd;
using namespace std::chrono_literals;

TEST_CASE("every: due times are deadlines and never drift", "[schedule]") {
  config::Schedule s;
  s.every = 10min;
  daemon::TimePoint t0 = std::chrono::system_clock::from_time_t(1'800'000'000);
  CHECK(daemon::first_due(s, t0) == t0);
  // A run that took 3 minutes: the next is still due 10 minutes after the previous was due.
  CHECK(daemon::next_due(s, t0, t0 + 3min) == t0 + 10min);
  // A run that overran two intervals: missed points are skipped, not run in a burst.
  CHECK(daemon::next_due(s, t0, t0 + 25min) == t0 + 30min);
  CHECK(daemon::next_due(s, t0, t0 + 30min) == t0 + 40min);
}

TEST_CASE("cron: due times follow the expression", "[schedule]") {
  config::Schedule s;
  s.cron = config::parse_cron("0 * * * *").cron;
  auto t0 = std::chrono::system_clock::from_time_t(1'800'000'000);  // 2027-01-15 08:00:00 UTC
  CHECK(daemon::first_due(s, t0) == t0);  // exactly on a firing time: due now
  CHECK(daemon::next_due(s, t0, t0 + 5min) == t0 + 1h);
  CHECK(daemon::next_due(s, t0, t0 + 2h + 5min) == t0 + 3h);

  s.cron = config::parse_cron("0 0 31 2 *").cron;
  CHECK(daemon::first_due(s, t0) == daemon::TimePoint::max());
}
