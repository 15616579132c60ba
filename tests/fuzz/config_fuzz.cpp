// libFuzzer target: any bytes given to the config loader end in a Config or in diagnostics,
// never a crash, a hang or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto r = scraperd::config::load_string(text, "fuzz.yaml");
  if (r.ok() == !r.errors.empty()) __builtin_trap();  // exactly one of config and errors
  for (const auto& e : r.errors)
    if (e.message.empty()) __builtin_trap();
  return 0;
}
