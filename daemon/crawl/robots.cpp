#include "daemon/crawl/robots.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <initializer_list>

#include "config/text.h"

namespace scraperd::daemon {
namespace {

using config::lower;
using config::trim;

bool unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// RFC 9309 2.2.2: compare with unreserved characters decoded and hex digits in one case, so
// "/%7Efoo", "/~foo" and "/%7efoo" match each other. `raw` bytes outside printable ASCII
// (UTF-8 in a pattern) are encoded too; a target comes encoded from the request line, and
// Google's parser compares any raw bytes in it as they are.
std::string normalise(std::string_view s, bool encode_raw) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      auto decoded = static_cast<unsigned char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
      if (unreserved(decoded)) {
        out += static_cast<char>(decoded);
      } else {
        out += '%';
        out += kHex[decoded >> 4];
        out += kHex[decoded & 15];
      }
      i += 2;
    } else if (encode_raw && (c >= 0x80 || c <= 0x20)) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Does `pattern` match the start of `target` ('*': any run of characters; a final '$': the
// end of the target)? Iterative, with one backtrack point: linear space, no recursion.
bool matches(std::string_view pattern, std::string_view target) {
  bool anchored = !pattern.empty() && pattern.back() == '$';
  if (anchored) pattern.remove_suffix(1);
  std::size_t p = 0, t = 0;
  std::size_t star = std::string_view::npos, resume = 0;
  while (true) {
    if (p == pattern.size() && (!anchored || t == target.size())) return true;
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (p < pattern.size() && t < target.size() && pattern[p] == target[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos && resume < target.size()) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
}

enum class Key { agent, allow, disallow, sitemap, crawl_delay, unknown };

// Google's reading of a key: case-insensitive, by its start ("Disallow-x" is a Disallow), and
// the common misspellings.
Key key_of(std::string_view key) {
  const std::string k = lower(key);
  auto starts = [&](std::initializer_list<std::string_view> names) {
    for (auto name : names)
      if (std::string_view(k).substr(0, name.size()) == name) return true;
    return false;
  };
  if (starts({"user-agent", "useragent", "user agent"})) return Key::agent;
  if (starts({"allow"})) return Key::allow;
  if (starts({"disallow", "dissallow", "dissalow", "disalow", "diasllow", "disallaw"}))
    return Key::disallow;
  if (starts({"sitemap", "site-map"})) return Key::sitemap;
  if (starts({"crawl-delay"})) return Key::crawl_delay;
  return Key::unknown;
}

// "key: value" (comment removed, space trimmed); Google's leniency: "key value" when the
// colon is missing and the line is exactly two words. False for a line without a key.
bool split(std::string_view line, std::string_view& key, std::string_view& value) {
  if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
  line = trim(line);
  if (auto colon = line.find(':'); colon != std::string_view::npos) {
    key = trim(line.substr(0, colon));
    value = trim(line.substr(colon + 1));
  } else {
    auto space = line.find_first_of(" \t");
    if (space == std::string_view::npos) return false;
    key = line.substr(0, space);
    value = trim(line.substr(space));
    if (value.find_first_of(" \t") != std::string_view::npos) return false;
  }
  return !key.empty();
}

}  // namespace

std::string Robots::product_token(std::string_view user_agent) {
  user_agent = trim(user_agent);
  std::size_t n = 0;
  while (n < user_agent.size()) {
    auto c = static_cast<unsigned char>(user_agent[n]);
    if (!(std::isalnum(c) || c == '_' || c == '-')) break;
    ++n;
  }
  return lower(user_agent.substr(0, n));
}

Robots Robots::parse(std::string_view body) {
  Robots robots;
  Summary& summary = robots.summary_;
  if (body.size() > kMaxBytes) {
    // The line the bound cuts is not what its author wrote: it goes too.
    body = body.substr(0, kMaxBytes);
    auto last_end = body.find_last_of("\r\n");
    body = last_end == std::string_view::npos ? std::string_view() : body.substr(0, last_end + 1);
    summary.cut = true;
  }
  summary.bytes = body.size();
  // A UTF-8 byte order mark, or the start of one (Google skips those too).
  constexpr std::string_view kBom = "\xEF\xBB\xBF";
  std::size_t bom = 0;
  while (bom < kBom.size() && bom < body.size() && body[bom] == kBom[bom]) ++bom;
  body.remove_prefix(bom);

  // A User-agent line after an Allow or Disallow starts a group; any other line between two
  // User-agent lines (Sitemap, Crawl-delay, unknown) leaves them one group (RFC 9309 2.2.4).
  bool in_rules = false;
  for (int number = 1; !body.empty(); ++number) {
    auto end = body.find_first_of("\r\n");
    std::string_view line = body.substr(0, std::min(end, kMaxLineBytes));
    std::size_t next = end == std::string_view::npos   ? body.size()
                       : body.substr(end, 2) == "\r\n" ? end + 2
                                                       : end + 1;
    body.remove_prefix(next);
    std::string_view key, value;
    if (!split(line, key, value)) continue;
    summary.last_line = number;
    Key kind = key_of(key);
    if (kind == Key::unknown) {
      ++summary.unknown;
      continue;
    }
    ++summary.directives;
    if (kind == Key::agent) {
      if (robots.groups_.empty() || in_rules) robots.groups_.emplace_back();
      in_rules = false;
      // "*", or "*" and words after it (Google), is everyone; otherwise the product token.
      bool everyone = value.substr(0, 1) == "*" &&
                      (value.size() == 1 || std::isspace(static_cast<unsigned char>(value[1])));
      std::string token = everyone ? "*" : product_token(value);
      if (!token.empty()) robots.groups_.back().agents.push_back(std::move(token));
    } else if (kind == Key::sitemap) {
      if (!value.empty()) robots.sitemaps_.emplace_back(value);
    } else if (robots.groups_.empty()) {
      continue;  // rules before any user-agent belong to no group
    } else if (kind == Key::crawl_delay) {
      std::string text(value);
      char* end_ptr = nullptr;
      double seconds = std::strtod(text.c_str(), &end_ptr);
      if (end_ptr != text.c_str() && *end_ptr == '\0' && seconds >= 0 && seconds < 1e6)
        robots.groups_.back().crawl_delay =
            std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
    } else {
      in_rules = true;
      // An empty pattern matches nothing; a pattern must be a path (or start with '*').
      if (value.empty() || (value.front() != '/' && value.front() != '*')) continue;
      auto& rules = robots.groups_.back().rules;
      rules.push_back({kind == Key::allow, normalise(value, true)});
      // Google: allowing ".../index.htm(l)" allows its directory ".../" too.
      if (kind == Key::allow) {
        auto slash = value.rfind('/');
        if (slash != std::string_view::npos && value.substr(slash + 1, 9) == "index.htm")
          rules.push_back({true, normalise(value.substr(0, slash + 1), true) + "$"});
      }
    }
  }
  return robots;
}

std::vector<const Robots::Group*> Robots::groups_for(std::string_view user_agent) const {
  std::string token = product_token(user_agent);
  std::vector<const Group*> named, any;
  for (const auto& g : groups_) {
    if (!token.empty() && std::find(g.agents.begin(), g.agents.end(), token) != g.agents.end())
      named.push_back(&g);
    else if (std::find(g.agents.begin(), g.agents.end(), "*") != g.agents.end())
      any.push_back(&g);
  }
  return named.empty() ? any : named;
}

bool Robots::allowed(std::string_view user_agent, std::string_view target) const {
  if (target == "/robots.txt") return true;
  std::string path = normalise(target.empty() ? "/" : target, false);
  std::size_t best = 0;
  bool allow = true, found = false;
  for (const Group* g : groups_for(user_agent)) {
    for (const Rule& r : g->rules) {
      if (!matches(r.pattern, path)) continue;
      if (!found || r.pattern.size() > best) {
        allow = r.allow;
        best = r.pattern.size();
        found = true;
      } else if (r.pattern.size() == best && r.allow) {
        allow = true;  // the least restrictive of equally specific rules
      }
    }
  }
  return allow;
}

std::optional<std::chrono::milliseconds> Robots::crawl_delay(std::string_view user_agent) const {
  std::optional<std::chrono::milliseconds> delay;
  for (const Group* g : groups_for(user_agent))
    if (g->crawl_delay && (!delay || *g->crawl_delay > *delay)) delay = g->crawl_delay;
  return delay;
}

}  // namespace scraperd::daemon
