#include "daemon/robots.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

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

// RFC 9309 2.2.2: compare with unreserved characters decoded, everything else outside ASCII
// encoded, and hex digits in one case, so "/%7Efoo", "/~foo" match each other.
std::string normalise(std::string_view s) {
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
    } else if (c >= 0x80 || c <= 0x20) {
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
  if (body.size() > kMaxBytes) body = body.substr(0, kMaxBytes);
  if (body.substr(0, 3) == "\xEF\xBB\xBF") body.remove_prefix(3);  // a UTF-8 BOM
  bool last_was_agent = false;
  while (!body.empty()) {
    auto end = body.find_first_of("\r\n");
    std::string_view line = body.substr(0, end);
    body.remove_prefix(end == std::string_view::npos ? body.size() : end + 1);
    if (auto hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string key = lower(trim(line.substr(0, colon)));
    std::string_view value = trim(line.substr(colon + 1));
    if (key == "user-agent") {
      if (!last_was_agent) robots.groups_.emplace_back();
      last_was_agent = true;
      robots.groups_.back().agents.push_back(value.substr(0, 1) == "*" ? "*"
                                                                       : product_token(value));
      continue;
    }
    if (robots.groups_.empty()) continue;  // rules before any user-agent belong to no group
    last_was_agent = false;
    Group& group = robots.groups_.back();
    if (key == "allow" || key == "disallow") {
      // An empty pattern matches nothing; a pattern must be a path (or start with '*').
      if (value.empty() || (value.front() != '/' && value.front() != '*')) continue;
      group.rules.push_back({key == "allow", normalise(value)});
    } else if (key == "crawl-delay") {
      std::string text(value);
      char* end_ptr = nullptr;
      double seconds = std::strtod(text.c_str(), &end_ptr);
      if (end_ptr != text.c_str() && *end_ptr == '\0' && seconds >= 0 && seconds < 1e6)
        group.crawl_delay = std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
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
  std::string path = normalise(target.empty() ? "/" : target);
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
