// Absolute http(s) URLs, parsed with liburiparser (RFC 3986).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace scraperd::config {

struct Url {
  std::string scheme;  // "http" or "https", lower case
  std::string host;    // without brackets for IPv6 literals
  int port = 0;        // explicit, or the scheme's default
  std::string target;  // path and query, at least "/"; never the fragment

  // "scheme://host:port", IPv6 hosts in brackets: what an HTTP client connects to.
  std::string origin() const;
};

// nullopt unless `text` is an absolute http:// or https:// URL with a host.
std::optional<Url> parse_url(std::string_view text);

// `reference` (absolute, or relative like "../b?q" or "//host/x") resolved against the
// absolute `base` (RFC 3986, section 5), without its fragment. Any scheme; nullopt when
// either does not parse.
std::optional<std::string> resolve_url(std::string_view base, std::string_view reference);

}  // namespace scraperd::config
