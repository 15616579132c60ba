// libFuzzer target: any bytes parse as a robots.txt, and every question about it has an
// answer, never a crash, a hang (the wildcard matcher stays linear) or a sanitizer report.
// The first line of the input is the URL path asked about, the rest the file.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "daemon/crawl/robots.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using scraperd::daemon::Robots;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto newline = input.find('\n');
  std::string_view target = input.substr(0, newline);
  std::string_view body = newline == std::string_view::npos ? "" : input.substr(newline + 1);
  auto robots = Robots::parse(body);
  if (robots.summary().bytes > Robots::kMaxBytes) __builtin_trap();
  for (std::string_view agent : {"scraperd/0.1", "Googlebot", "*", ""}) {
    robots.allowed(agent, target);
    robots.crawl_delay(agent);
    if (!robots.allowed(agent, "/robots.txt")) __builtin_trap();  // always allowed
  }
  return 0;
}
