#include "config/duration.h"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using scraperd::config::format_duration;
using scraperd::config::parse_duration;
using scraperd::config::parse_size;

TEST_CASE("durations are numbers with units, combinable", "[config][duration]") {
  CHECK(parse_duration("90s") == 90s);
  CHECK(parse_duration("15m") == 15min);
  CHECK(parse_duration("1h30m") == 90min);
  CHECK(parse_duration("250ms") == 250ms);
  CHECK(parse_duration("2d") == 48h);
  CHECK(parse_duration("1m30s500ms") == 90500ms);
  CHECK(parse_duration("0s") == 0ms);

  CHECK_FALSE(parse_duration(""));
  CHECK_FALSE(parse_duration("30"));
  CHECK_FALSE(parse_duration("s"));
  CHECK_FALSE(parse_duration("-5s"));
  CHECK_FALSE(parse_duration("5 s"));
  CHECK_FALSE(parse_duration("5x"));
  CHECK_FALSE(parse_duration("99999999999999999999s"));
}

TEST_CASE("durations print back in their shortest form", "[config][duration]") {
  CHECK(format_duration(90min) == "1h30m");
  CHECK(format_duration(90s) == "1m30s");
  CHECK(format_duration(250ms) == "250ms");
  CHECK(format_duration(0ms) == "0s");
  for (auto d : {1ms, 1001ms, 3600000ms, 86400001ms})
    CHECK(parse_duration(format_duration(d)) == d);
}

TEST_CASE("sizes accept byte units in powers of 1024", "[config][duration]") {
  CHECK(parse_size("512") == 512u);
  CHECK(parse_size("512B") == 512u);
  CHECK(parse_size("64KB") == 64u * 1024);
  CHECK(parse_size("5MB") == 5u * 1024 * 1024);
  CHECK(parse_size("5mib") == 5u * 1024 * 1024);
  CHECK(parse_size("1GB") == 1024u * 1024 * 1024);
  CHECK_FALSE(parse_size("MB"));
  CHECK_FALSE(parse_size("5TB"));
  CHECK_FALSE(parse_size("-1KB"));
}
