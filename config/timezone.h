// Time zones from the system's tz database (/usr/share/zoneinfo, Debian's tzdata), read
// directly from the TZif files: C++20's std::chrono zones are not in GCC 12.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace scraperd::config {

class TimeZone {
 public:
  static TimeZone utc();
  TimeZone() : TimeZone(utc()) {}

  // "UTC", "Europe/Paris", "America/New_York"... nullopt, with `error` set, when the name is
  // not in the tz database. Reads $TZDIR if set, else /usr/share/zoneinfo.
  static std::optional<TimeZone> load(std::string_view name, std::string* error);

  // Seconds east of UTC in effect at `utc_seconds` (after the last transition in the file,
  // about 2037, the last offset stays in effect).
  std::int32_t offset_at(std::int64_t utc_seconds) const;

  const std::string& name() const { return zone_->name; }

  bool operator==(const TimeZone& other) const {
    return zone_ == other.zone_ || *zone_ == *other.zone_;
  }

 private:
  // Shared by every copy: a job holds 16 bytes, not its own copy of the transitions (~2 KB for
  // Europe/Paris).
  struct Zone {
    std::string name = "UTC";
    std::int32_t initial_offset = 0;
    std::vector<std::int64_t> transitions;  // sorted UTC seconds
    std::vector<std::int32_t> offsets;      // offset in effect from each transition on

    bool operator==(const Zone&) const = default;
  };
  explicit TimeZone(std::shared_ptr<const Zone> zone) : zone_(std::move(zone)) {}

  std::shared_ptr<const Zone> zone_;
};

}  // namespace scraperd::config
