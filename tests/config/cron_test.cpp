#include "config/cron.h"

#include <catch2/catch.hpp>
#include <ctime>

using namespace scraperd::config;
using Clock = std::chrono::system_clock;

namespace {

Clock::time_point utc(int y, int mo, int d, int h, int mi) {
  std::tm tm{};
  tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d, tm.tm_hour = h, tm.tm_min = mi;
  return Clock::from_time_t(timegm(&tm));
}

Clock::time_point next(const char* spec, Clock::time_point after,
                       const TimeZone& tz = TimeZone::utc()) {
  auto p = parse_cron(spec);
  INFO(spec << ": " << p.error);
  REQUIRE(p.cron);
  auto n = p.cron->next(after, tz);
  REQUIRE(n);
  return *n;
}

}  // namespace

TEST_CASE("cron fields: lists, ranges, steps and names", "[config][cron]") {
  auto t = utc(2026, 11, 24, 10, 7);  // a Tuesday
  CHECK(next("* * * * *", t) == utc(2026, 11, 24, 10, 8));
  CHECK(next("*/15 * * * *", t) == utc(2026, 11, 24, 10, 15));
  CHECK(next("0 3 * * *", t) == utc(2026, 11, 25, 3, 0));
  CHECK(next("30 8 1,15 * *", t) == utc(2026, 12, 1, 8, 30));
  CHECK(next("0 9 * * mon-fri", utc(2026, 11, 27, 10, 0)) == utc(2026, 11, 30, 9, 0));  // Fri → Mon
  CHECK(next("0 0 * jan,jul sun", t) == utc(2027, 1, 3, 0, 0));
  CHECK(next("0 0 * * 7", t) == utc(2026, 11, 29, 0, 0));  // 7 is Sunday too
  CHECK(next("5-10/5 * * * *", t) == utc(2026, 11, 24, 10, 10));
  CHECK(next("0 12 29 feb *", t) == utc(2028, 2, 29, 12, 0));
}

TEST_CASE("cron: day-of-month and day-of-week both set means either", "[config][cron]") {
  // Vixie cron: "1st of the month, or any Friday".
  CHECK(next("0 0 1 * fri", utc(2026, 11, 24, 0, 0)) == utc(2026, 11, 27, 0, 0));
}

TEST_CASE("cron: a schedule that never fires has no next time", "[config][cron]") {
  auto p = parse_cron("0 0 31 2 *");
  REQUIRE(p.cron);
  CHECK_FALSE(p.cron->next(utc(2026, 1, 1, 0, 0), TimeZone::utc()));
}

TEST_CASE("cron errors name the field", "[config][cron]") {
  CHECK(parse_cron("60 * * * *").error == "minute field '60': out of range 0-59");
  CHECK(parse_cron("* 24 * * *").error == "hour field '24': out of range 0-23");
  CHECK(parse_cron("* * 0 * *").error == "day-of-month field '0': out of range 1-31");
  CHECK(parse_cron("* * * 13 *").error == "month field '13': out of range 1-12");
  CHECK(parse_cron("* * * * 8").error == "day-of-week field '8': out of range 0-7");
  CHECK(parse_cron("5-1 * * * *").error == "minute field '5-1': the range goes backwards");
  CHECK(parse_cron("1,,2 * * * *").error == "minute field has an empty list item");
  CHECK_FALSE(parse_cron("* * * *").error.empty());
  CHECK_FALSE(parse_cron("").error.empty());
}

TEST_CASE("time zones come from the tz database and cron follows local time", "[config][cron]") {
  std::string err;
  auto paris = TimeZone::load("Europe/Paris", &err);
  REQUIRE(paris);
  // Winter: UTC+1; summer: UTC+2.
  CHECK(paris->offset_at(Clock::to_time_t(utc(2026, 1, 15, 12, 0))) == 3600);
  CHECK(paris->offset_at(Clock::to_time_t(utc(2026, 7, 15, 12, 0))) == 7200);
  CHECK(next("0 3 * * *", utc(2026, 1, 15, 12, 0), *paris) == utc(2026, 1, 16, 2, 0));
  CHECK(next("0 3 * * *", utc(2026, 7, 15, 12, 0), *paris) == utc(2026, 7, 16, 1, 0));
  // 2026-03-29: clocks go 02:00 → 03:00 in Paris; 02:30 does not exist that day.
  CHECK(next("30 2 * * *", utc(2026, 3, 28, 12, 0), *paris) == utc(2026, 3, 30, 0, 30));

  CHECK_FALSE(TimeZone::load("Mars/Olympus", &err));
  CHECK(err == "unknown time zone 'Mars/Olympus' (names are like Europe/Paris)");
  CHECK_FALSE(TimeZone::load("../../etc/passwd", &err));
  CHECK(TimeZone::load("UTC", &err)->offset_at(0) == 0);

  // Zones compare by what they are, not by which copy: a reload that reads the file again
  // sees an unchanged job.
  auto again = TimeZone::load("Europe/Paris", &err);
  REQUIRE(again);
  CHECK(*again == *paris);
  CHECK_FALSE(*paris == TimeZone::utc());
  CHECK(TimeZone() == TimeZone::utc());
  CHECK(TimeZone().name() == "UTC");
}
