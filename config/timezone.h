// Time zones from the system's tz database (/usr/share/zoneinfo, Debian's tzdata), read
// directly from the TZif files: C++20's std::chrono zones are not in GCC 12.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace scraperd::config {

class TimeZone {
 public:
  static TimeZone utc();

  // "UTC", "Europe/Paris", "America/New_York"... nullopt, with `error` set, when the name is
  // not in the tz database. Reads $TZDIR if set, else /usr/share/zoneinfo.
  static std::optional<TimeZone> load(std::string_view name, std::string* error);

  // Seconds east of UTC in effect at `utc_seconds` (after the last transition in the file,
  // about 2037, the last offset stays in effect).
  std::int32_t offset_at(std::int64_t utc_seconds) const;

  const std::string& name() const { return name_; }

  bool operator==(const TimeZone&) const = default;

 private:
  std::string name_ = "UTC";
  std::int32_t initial_offset_ = 0;
  std::vector<std::int64_t> transitions_;  // sorted UTC seconds
  std::vector<std::int32_t> offsets_;      // offset in effect from each transition on
};

}  // namespace scraperd::config
