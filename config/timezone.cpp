#include "config/timezone.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iterator>

namespace scraperd::config {
namespace {

std::int64_t be(const unsigned char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  if (n == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(v));
  return static_cast<std::int64_t>(v);
}

}  // namespace

TimeZone TimeZone::utc() {
  static const auto zone = std::make_shared<const Zone>();
  return TimeZone(zone);
}

std::optional<TimeZone> TimeZone::load(std::string_view name, std::string* error) {
  if (name == "UTC" || name == "Etc/UTC") return utc();
  bool safe = !name.empty() && name.front() != '/' && name.find("..") == std::string_view::npos &&
              std::all_of(name.begin(), name.end(), [](char c) {
                return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' ||
                       c == '-' || c == '+';
              });
  auto fail = [&](std::string message) -> std::optional<TimeZone> {
    if (error) *error = std::move(message);
    return std::nullopt;
  };
  if (!safe) return fail("'" + std::string(name) + "' is not a time zone name");
  const char* dir = std::getenv("TZDIR");
  std::string path =
      std::string(dir && *dir ? dir : "/usr/share/zoneinfo") + "/" + std::string(name);
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return fail("unknown time zone '" + std::string(name) + "' (names are like Europe/Paris)");
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto p = reinterpret_cast<const unsigned char*>(data.data());
  size_t size = data.size();
  auto bad = [&] { return fail("'" + path + "' is not a valid TZif file"); };
  if (size < 44 || data.compare(0, 4, "TZif") != 0) return bad();

  // Counts: isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt.
  auto counts = [&](size_t at, std::int64_t c[6]) {
    for (int i = 0; i < 6; ++i) c[i] = be(p + at + 20 + 4 * i, 4);
  };
  std::int64_t c[6];
  counts(0, c);
  size_t at = 44;
  int time_size = 4;
  if (data[4] >= '2') {  // skip the 32-bit block, use the 64-bit one
    at += static_cast<size_t>(c[3] * 4 + c[3] + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0]);
    if (at + 44 > size || data.compare(at, 4, "TZif") != 0) return bad();
    counts(at, c);
    at += 44;
    time_size = 8;
  }
  std::int64_t timecnt = c[3], typecnt = c[4];
  if (typecnt < 1 || at + static_cast<size_t>(timecnt * (time_size + 1) + typecnt * 6) > size)
    return bad();
  auto zone = std::make_shared<Zone>();
  zone->name = std::string(name);
  const unsigned char* times = p + at;
  const unsigned char* idx = times + timecnt * time_size;
  const unsigned char* types = idx + timecnt;
  auto offset_of = [&](int type) { return static_cast<std::int32_t>(be(types + 6 * type, 4)); };
  zone->initial_offset = offset_of(0);
  for (std::int64_t i = 0; i < timecnt; ++i) {
    int type = idx[i];
    if (type >= typecnt) return bad();
    zone->transitions.push_back(be(times + i * time_size, time_size));
    zone->offsets.push_back(offset_of(type));
  }
  return TimeZone(std::move(zone));
}

std::int32_t TimeZone::offset_at(std::int64_t utc_seconds) const {
  const auto& times = zone_->transitions;
  auto it = std::upper_bound(times.begin(), times.end(), utc_seconds);
  if (it == times.begin()) return zone_->initial_offset;
  return zone_->offsets[static_cast<size_t>(it - times.begin() - 1)];
}

}  // namespace scraperd::config
