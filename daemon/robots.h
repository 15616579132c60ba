// robots.txt (RFC 9309): parsed once per host, asked per URL. Pure: no I/O.
//
//   auto robots = Robots::parse(body);
//   if (!robots.allowed("scraperd/0.1 (+https://...)", "/private/x?y=1")) ...;
//   auto gap = robots.crawl_delay(user_agent);  // non-standard, widely used
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace scraperd::daemon {

class Robots {
 public:
  // Bodies larger than this are parsed up to it (RFC 9309 asks for at least 500 KiB).
  static constexpr std::size_t kMaxBytes = 512 * 1024;

  // Never fails: lines that are not rules are skipped, as the RFC asks.
  static Robots parse(std::string_view body);

  // Allows everything: what a missing robots.txt (any 4xx) means.
  static Robots allow_all() { return Robots(); }

  // True when `target` (path and query, as sent in the request line) may be fetched by a
  // crawler whose User-Agent is `user_agent`. Its product token ("scraperd" of
  // "scraperd/0.1 (...)") selects the groups, case-insensitively; `*` groups apply when none
  // name it. The longest matching pattern wins; on a tie, allow wins. /robots.txt is always
  // allowed.
  bool allowed(std::string_view user_agent, std::string_view target) const;

  // The Crawl-delay of the group that applies to `user_agent`, if it has one.
  std::optional<std::chrono::milliseconds> crawl_delay(std::string_view user_agent) const;

  // "scraperd" for "scraperd/0.1 (+https://...)": letters, digits, '_' and '-' up to the first
  // other character.
  static std::string product_token(std::string_view user_agent);

 private:
  struct Rule {
    bool allow = false;
    std::string pattern;  // percent-encoding normalised; '*' and a final '$' are special
  };
  struct Group {
    std::vector<std::string> agents;  // lower-case product tokens, or "*"
    std::vector<Rule> rules;
    std::optional<std::chrono::milliseconds> crawl_delay;
  };

  // The groups that apply to `user_agent`, merged; null when none (everything allowed).
  std::vector<const Group*> groups_for(std::string_view user_agent) const;

  std::vector<Group> groups_;
};

}  // namespace scraperd::daemon
