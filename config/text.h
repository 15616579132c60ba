// Small text helpers shared by the config loader and the daemon: ASCII case folding and
// whitespace trimming, independent of the locale.
#pragma once

#include <cctype>
#include <string>
#include <string_view>

namespace scraperd::config {

// `s` with A-Z folded to a-z (bytes outside ASCII left as they are).
inline std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// `s` without the spaces, tabs, CRs and LFs (and \v, \f) around it.
inline std::string_view trim(std::string_view s) {
  auto space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!s.empty() && space(s.front())) s.remove_prefix(1);
  while (!s.empty() && space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace scraperd::config
