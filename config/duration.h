// Human units in config files: durations ("90s", "15m", "1h30m", "250ms") and byte sizes
// ("512KB", "5MB"). Parsing never throws; nullopt means "not of that form".
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace scraperd::config {

// One or more <number><unit> parts, units ms, s, m, h, d, in any order ("1h30m").
// A bare number without a unit is rejected: "30" could mean seconds or minutes.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// "512", "512B", "64KB", "5MB", "1GB" (powers of 1024, case-insensitive, KiB forms too).
std::optional<std::uint64_t> parse_size(std::string_view text);

// The shortest spelling parse_duration reads back as the same value ("1h30m").
std::string format_duration(std::chrono::milliseconds d);

}  // namespace scraperd::config

namespace scraperd::config {

// A request rate: "2/s", "30/m", "100/h", or a bare number meaning per second. Returns
// requests per second; nullopt for anything else (zero and negative rates included).
std::optional<double> parse_rate(std::string_view text);

}  // namespace scraperd::config
