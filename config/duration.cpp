#include "config/duration.h"

#include <cctype>
#include <cstdlib>
#include <limits>

namespace scraperd::config {
namespace {

// Reads the leading decimal digits of `text` into `value`; returns how many were read.
size_t read_number(std::string_view text, std::uint64_t& value) {
  size_t i = 0;
  value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (value > (std::numeric_limits<std::uint64_t>::max() - 9) / 10) return 0;  // overflow
    value = value * 10 + static_cast<std::uint64_t>(text[i] - '0');
    ++i;
  }
  return i;
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  constexpr std::uint64_t kMaxMs = std::uint64_t{1} << 52;  // ~142,000 years
  std::uint64_t total = 0;
  while (!text.empty()) {
    std::uint64_t n = 0;
    size_t digits = read_number(text, n);
    if (digits == 0) return std::nullopt;
    text.remove_prefix(digits);
    std::uint64_t unit_ms = 0;
    if (text.starts_with("ms")) {
      unit_ms = 1;
      text.remove_prefix(2);
    } else if (!text.empty()) {
      switch (text.front()) {
        case 's': unit_ms = 1000; break;
        case 'm': unit_ms = 60'000; break;
        case 'h': unit_ms = 3'600'000; break;
        case 'd': unit_ms = 86'400'000; break;
        default: return std::nullopt;
      }
      text.remove_prefix(1);
    } else {
      return std::nullopt;  // a number without a unit
    }
    if (n > kMaxMs / unit_ms) return std::nullopt;
    total += n * unit_ms;
    if (total > kMaxMs) return std::nullopt;
  }
  return std::chrono::milliseconds(total);
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t n = 0;
  size_t digits = read_number(text, n);
  if (digits == 0) return std::nullopt;
  text.remove_prefix(digits);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  std::string unit;
  for (char c : text) unit += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::uint64_t mult = 0;
  if (unit.empty() || unit == "B") {
    mult = 1;
  } else if (unit == "KB" || unit == "KIB" || unit == "K") {
    mult = 1024;
  } else if (unit == "MB" || unit == "MIB" || unit == "M") {
    mult = 1024 * 1024;
  } else if (unit == "GB" || unit == "GIB" || unit == "G") {
    mult = 1024 * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  if (n > std::numeric_limits<std::uint64_t>::max() / mult) return std::nullopt;
  return n * mult;
}

std::string format_duration(std::chrono::milliseconds d) {
  std::uint64_t ms = static_cast<std::uint64_t>(d.count());
  if (ms == 0) return "0s";
  static constexpr struct {
    std::uint64_t ms;
    const char* unit;
  } kUnits[] = {{86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}, {1, "ms"}};
  std::string out;
  for (const auto& u : kUnits) {
    if (ms >= u.ms) {
      out += std::to_string(ms / u.ms) + u.unit;
      ms %= u.ms;
    }
  }
  return out;
}

}  // namespace scraperd::config

namespace scraperd::config {

std::optional<double> parse_rate(std::string_view text) {
  auto slash = text.find('/');
  std::string number(text.substr(0, slash));
  double per = 1;
  if (slash != std::string_view::npos) {
    auto unit = text.substr(slash + 1);
    if (unit == "s")
      per = 1;
    else if (unit == "m")
      per = 60;
    else if (unit == "h")
      per = 3600;
    else
      return std::nullopt;
  }
  if (number.empty() || number.find_first_not_of("0123456789.") != std::string::npos)
    return std::nullopt;
  char* end = nullptr;
  double n = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size() || !(n > 0) || n > 1e6) return std::nullopt;
  return n / per;
}

}  // namespace scraperd::config
