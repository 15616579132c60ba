#include "daemon/schedule/schedule.h"

#include <catch2/catch.hpp>
#include <set>

using namespace scraperd;
using namespace std::chrono_literals;

namespace {
daemon::TimePoint t0 = std::chrono::system_clock::from_time_t(1'800'000'000);  // on the hour
}

TEST_CASE("every: due times are deadlines and never drift", "[schedule]") {
  config::Schedule s;
  s.every = 10min;
  // A run that took 3 minutes: the next is still due 10 minutes after the previous was due.
  auto n = daemon::next_due(s, t0, t0 + 3min);
  CHECK(n.due == t0 + 10min);
  CHECK(n.skipped == 0);
  // A run that overran two intervals: the missed points are skipped (and counted), not run.
  n = daemon::next_due(s, t0, t0 + 25min);
  CHECK(n.due == t0 + 30min);
  CHECK(n.skipped == 2);
  CHECK(daemon::next_due(s, t0, t0 + 30min).due == t0 + 40min);
  // A thousand deadline steps stay exactly on the grid.
  auto due = t0;
  for (int i = 0; i < 1000; ++i) due = daemon::next_due(s, due, due + 7min).due;
  CHECK(due == t0 + 1000 * 10min);
}

TEST_CASE("every: start offsets are stable per name and spread jobs out", "[schedule]") {
  config::Schedule s;
  s.every = 1min;
  std::set<long> offsets;
  for (int i = 0; i < 1000; ++i) {
    auto name = "job-" + std::to_string(i);
    auto off = daemon::start_offset(name, s);
    CHECK(off >= 0ms);
    CHECK(off < 1min);
    CHECK(daemon::start_offset(name, s) == off);  // stable
    CHECK(daemon::first_due(s, name, t0) == t0 + off);
    offsets.insert(off.count() / 100);  // 100 ms buckets
  }
  CHECK(offsets.size() > 400);  // not all in the same instant: spread over the minute
  s.every = 5s;
  CHECK(daemon::start_offset("x", s) < 5s);
}

TEST_CASE("a persisted due time resumes the schedule, and one missed while down runs once",
          "[schedule]") {
  config::Schedule s;
  s.every = 1h;
  CHECK(daemon::first_due(s, "j", t0, t0 + 20min) == t0 + 20min);
  CHECK(daemon::first_due(s, "j", t0, t0 + 5h) == t0 + 1h);  // `every` was shortened since
  CHECK(daemon::first_due(s, "j", t0, t0 - 5h) == t0 - 5h);  // in the past: runs at once
  // ... and the next one is back on the old grid, the missed points counted as skipped.
  auto n = daemon::next_due(s, t0 - 5h, t0 + 1s);
  CHECK(n.due == t0 + 1h);
  CHECK(n.skipped == 5);
}

TEST_CASE("cron: due times follow the expression", "[schedule]") {
  config::Schedule s;
  s.cron = config::parse_cron("0 * * * *").cron;
  CHECK(daemon::first_due(s, "j", t0) == t0);  // exactly on a firing time: due now
  CHECK(daemon::next_due(s, t0, t0 + 5min).due == t0 + 1h);
  auto n = daemon::next_due(s, t0, t0 + 2h + 5min);
  CHECK(n.due == t0 + 3h);
  CHECK(n.skipped == 2);

  s.cron = config::parse_cron("0 0 31 2 *").cron;
  CHECK(daemon::first_due(s, "j", t0) == daemon::TimePoint::max());
}
