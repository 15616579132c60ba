// Cron schedules: the five classic fields, evaluated in a time zone.
//
//   minute hour day-of-month month day-of-week
//   "*/15 * * * *", "0 3 * * mon-fri", "30 8 1,15 * *", "0 0 * jan,jul sun"
//
// Fields take `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b,c`; months and
// days take English names (jan..dec, sun..sat; 7 is Sunday too). As in Vixie cron, when both
// day-of-month and day-of-week are restricted, a day matching either one fires.
#pragma once

#include <bitset>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/timezone.h"

namespace scraperd::config {

struct Cron {
  std::bitset<60> minutes;
  std::bitset<24> hours;
  std::bitset<32> days;     // 1..31
  std::bitset<13> months;   // 1..12
  std::bitset<7> weekdays;  // 0 = Sunday
  bool days_restricted = false;
  bool weekdays_restricted = false;
  std::string text;  // as written

  // The first firing time strictly after `after`, in zone `tz`. nullopt if none within ~5
  // years (e.g. "0 0 31 2 *").
  std::optional<std::chrono::system_clock::time_point> next(
      std::chrono::system_clock::time_point after, const TimeZone& tz) const;

  bool operator==(const Cron&) const = default;
};

struct CronParse {
  std::optional<Cron> cron;
  std::string error;  // names the field and what is wrong
};

CronParse parse_cron(std::string_view text);

}  // namespace scraperd::config
