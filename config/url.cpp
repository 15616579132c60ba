#include "config/url.h"

#include <uriparser/Uri.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace scraperd::config {
namespace {

std::string range(const UriTextRangeA& r) {
  if (r.first == nullptr || r.afterLast == nullptr) return {};
  return std::string(r.first, r.afterLast);
}

}  // namespace

std::string Url::origin() const {
  bool v6 = host.find(':') != std::string::npos;
  return scheme + "://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<Url> parse_url(std::string_view text) {
  std::string s(text);
  UriUriA uri;
  const char* error_pos = nullptr;
  if (uriParseSingleUriA(&uri, s.c_str(), &error_pos) != URI_SUCCESS) return std::nullopt;
  struct Free {
    UriUriA* u;
    ~Free() { uriFreeUriMembersA(u); }
  } guard{&uri};

  Url url;
  url.scheme = range(uri.scheme);
  std::transform(url.scheme.begin(), url.scheme.end(), url.scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (url.scheme != "http" && url.scheme != "https") return std::nullopt;
  url.host = range(uri.hostText);
  if (url.host.empty()) return std::nullopt;
  std::string port = range(uri.portText);
  if (port.empty()) {
    url.port = url.scheme == "https" ? 443 : 80;
  } else {
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), url.port);
    if (ec != std::errc() || end != port.data() + port.size() || url.port < 1 || url.port > 65535)
      return std::nullopt;
  }
  for (UriPathSegmentA* seg = uri.pathHead; seg != nullptr; seg = seg->next)
    url.target += "/" + range(seg->text);
  if (url.target.empty()) url.target = "/";
  if (uri.query.first != nullptr) url.target += "?" + range(uri.query);
  return url;
}

std::optional<std::string> resolve_url(std::string_view base, std::string_view reference) {
  std::string b(base), r(reference);
  UriUriA base_uri, ref_uri, out;
  const char* error_pos = nullptr;
  if (uriParseSingleUriA(&base_uri, b.c_str(), &error_pos) != URI_SUCCESS) return std::nullopt;
  if (uriParseSingleUriA(&ref_uri, r.c_str(), &error_pos) != URI_SUCCESS) {
    uriFreeUriMembersA(&base_uri);
    return std::nullopt;
  }
  std::optional<std::string> resolved;
  if (uriAddBaseUriA(&out, &ref_uri, &base_uri) == URI_SUCCESS) {
    uriNormalizeSyntaxA(&out);
    int chars = 0;
    if (uriToStringCharsRequiredA(&out, &chars) == URI_SUCCESS) {
      std::string text(static_cast<size_t>(chars) + 1, '\0');
      if (uriToStringA(text.data(), &out, chars + 1, nullptr) == URI_SUCCESS) {
        text.resize(static_cast<size_t>(chars));
        resolved = text.substr(0, text.find('#'));
      }
    }
    uriFreeUriMembersA(&out);
  }
  uriFreeUriMembersA(&ref_uri);
  uriFreeUriMembersA(&base_uri);
  return resolved;
}

}  // namespace scraperd::config
