#include "config/cron.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <ctime>
#include <sstream>
#include <vector>

namespace scraperd::config {
namespace {

struct Field {
  const char* name;
  int min, max;
  const char* const* names;  // lower-case names for min..max, or null
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr Field kFields[] = {
    {"minute", 0, 59, nullptr},       {"hour", 0, 23, nullptr},
    {"day-of-month", 1, 31, nullptr}, {"month", 1, 12, kMonthNames},
    {"day-of-week", 0, 7, kDayNames},
};

std::optional<int> value(std::string_view s, const Field& f) {
  int v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc() && end == s.data() + s.size()) return v;
  if (f.names && s.size() == 3) {
    std::string lower;
    for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    int count = f.names == kMonthNames ? 12 : 7;
    for (int i = 0; i < count; ++i)
      if (lower == f.names[i]) return f.min == 1 ? i + 1 : i;
  }
  return std::nullopt;
}

// Parses one field into `bits` (indexed by value); returns an error message or "".
std::string parse_field(std::string_view text, const Field& f, std::vector<bool>& bits,
                        bool& restricted) {
  bits.assign(static_cast<size_t>(f.max) + 1, false);
  restricted = text != "*";
  auto where = [&](std::string_view part) {
    return std::string(f.name) + " field '" + std::string(part) + "'";
  };
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    std::string_view part = text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    if (part.empty()) return std::string(f.name) + " field has an empty list item";
    int step = 1;
    std::string_view range = part;
    if (auto slash = part.find('/'); slash != std::string_view::npos) {
      range = part.substr(0, slash);
      auto s = part.substr(slash + 1);
      auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), step);
      if (ec != std::errc() || end != s.data() + s.size() || step < 1 || step > f.max)
        return where(part) + ": the step must be a number from 1 to " + std::to_string(f.max);
    }
    int lo = f.min, hi = f.max;
    if (range != "*") {
      auto dash = range.find('-');
      auto a = value(range.substr(0, dash), f);
      if (!a)
        return where(part) + ": '" + std::string(range.substr(0, dash)) + "' is not a valid value";
      lo = hi = *a;
      if (dash != std::string_view::npos) {
        auto b = value(range.substr(dash + 1), f);
        if (!b)
          return where(part) + ": '" + std::string(range.substr(dash + 1)) +
                 "' is not a valid value";
        hi = *b;
      } else if (part.find('/') != std::string_view::npos) {
        hi = f.max;  // "a/n" means a, a+n, ... up to the maximum
      }
      if (lo < f.min || hi > f.max)
        return where(part) + ": out of range " + std::to_string(f.min) + "-" +
               std::to_string(f.max);
      if (lo > hi) return where(part) + ": the range goes backwards";
    }
    for (int v = lo; v <= hi; v += step) bits[static_cast<size_t>(v)] = true;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return "";
}

}  // namespace

CronParse parse_cron(std::string_view text) {
  std::istringstream in{std::string(text)};
  std::vector<std::string> parts;
  for (std::string p; in >> p;) parts.push_back(p);
  if (parts.size() != 5)
    return {std::nullopt,
            "a cron schedule has 5 fields (minute hour day-of-month month "
            "day-of-week), this one has " +
                std::to_string(parts.size())};
  Cron cron;
  cron.text = std::string(text);
  std::vector<bool> bits;
  bool restricted = false;
  for (size_t i = 0; i < 5; ++i) {
    std::string err = parse_field(parts[i], kFields[i], bits, restricted);
    if (!err.empty()) return {std::nullopt, err};
    for (size_t v = 0; v < bits.size(); ++v) {
      if (!bits[v]) continue;
      switch (i) {
        case 0: cron.minutes.set(v); break;
        case 1: cron.hours.set(v); break;
        case 2: cron.days.set(v); break;
        case 3: cron.months.set(v); break;
        case 4: cron.weekdays.set(v % 7); break;
      }
    }
    if (i == 2) cron.days_restricted = restricted;
    if (i == 4) cron.weekdays_restricted = restricted;
  }
  return {cron, ""};
}

std::optional<std::chrono::system_clock::time_point> Cron::next(
    std::chrono::system_clock::time_point after, const TimeZone& tz) const {
  using namespace std::chrono;
  // Walk forward minute by minute in UTC, skipping whole hours and days that cannot match;
  // wall-clock fields come from the zone's offset at each instant, so DST gaps and repeats
  // behave as the local clock does.
  std::int64_t t = duration_cast<seconds>(after.time_since_epoch()).count();
  t = (t / 60 + 1) * 60;
  const std::int64_t limit = t + 5LL * 366 * 86400;
  while (t < limit) {
    std::int64_t local = t + tz.offset_at(t);
    std::time_t lt = static_cast<std::time_t>(local);
    std::tm tm{};
    gmtime_r(&lt, &tm);
    bool day_ok;
    bool dom = days.test(static_cast<size_t>(tm.tm_mday));
    bool dow = weekdays.test(static_cast<size_t>(tm.tm_wday));
    if (days_restricted && weekdays_restricted)
      day_ok = dom || dow;
    else
      day_ok = dom && dow;
    if (!months.test(static_cast<size_t>(tm.tm_mon + 1)) || !day_ok) {
      // Towards the next local midnight, stopping an hour short so a DST change on the way
      // cannot make us overshoot it.
      t += std::max(60, (24 * 60 - (tm.tm_hour * 60 + tm.tm_min) - 60)) * 60;
      continue;
    }
    if (!hours.test(static_cast<size_t>(tm.tm_hour))) {
      t += (60 - tm.tm_min) * 60;
      continue;
    }
    if (!minutes.test(static_cast<size_t>(tm.tm_min))) {
      t += 60;
      continue;
    }
    return system_clock::time_point(seconds(t));
  }
  return std::nullopt;
}

}  // namespace scraperd::config
