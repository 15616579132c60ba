// robots.txt (RFC 9309): parsed once per host, asked per URL. Pure: no I/O.
//
//   auto robots = Robots::parse(body);
//   if (!robots.allowed("scraperd/0.1 (+https://...)", "/private/x?y=1")) ...;
//   auto gap = robots.crawl_delay(user_agent);  // non-standard, widely used
//
// Where the RFC is silent the parser does what Google's reference parser
// (github.com/google/robotstxt) does, since site owners test their files with Google's tools;
// docs/configuration.md lists each leniency and each chosen difference.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace scraperd::daemon {

class Robots {
 public:
  // Bodies longer than this are parsed up to the last line ending before it; the rest is
  // ignored (RFC 9309 asks for at least 500 KiB).
  static constexpr std::size_t kMaxBytes = 512 * 1024;
  // A line is read up to this many bytes and the rest of it ignored (Google's bound: 8 times
  // the 2083-byte URLs browsers take, less one).
  static constexpr std::size_t kMaxLineBytes = 8 * 2083 - 1;

  // What parse() made of a file, for logs and tests.
  struct Summary {
    std::size_t bytes = 0;  // parsed
    bool cut = false;       // the body was longer than kMaxBytes
    int directives = 0;     // user-agent, allow, disallow, sitemap and crawl-delay lines
    int unknown = 0;        // other "key: value" lines, ignored
    int last_line = 0;      // 1-based number of the last of those lines
  };

  // Never fails: lines that are not rules are skipped, as the RFC asks.
  static Robots parse(std::string_view body);

  // Allows everything: what a missing robots.txt (any 4xx) means.
  static Robots allow_all() { return Robots(); }

  // True when `target` (path and query, percent-encoded as sent in the request line) may be
  // fetched by a crawler whose User-Agent is `user_agent`. Its product token ("scraperd" of
  // "scraperd/0.1 (...)") selects the groups, case-insensitively; `*` groups apply when none
  // name it. The longest matching pattern wins; on a tie, allow wins. /robots.txt is always
  // allowed.
  bool allowed(std::string_view user_agent, std::string_view target) const;

  // The Crawl-delay of the group that applies to `user_agent`, if it has one.
  std::optional<std::chrono::milliseconds> crawl_delay(std::string_view user_agent) const;

  // The Sitemap: URLs, in file order, wherever they stand.
  const std::vector<std::string>& sitemaps() const { return sitemaps_; }

  const Summary& summary() const { return summary_; }

  // "scraperd" for "scraperd/0.1 (+https://...)": letters, digits, '_' and '-' up to the first
  // other character, lower-cased.
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

  // The groups that apply to `user_agent` (merged by the caller); empty when none does, which
  // allows everything.
  std::vector<const Group*> groups_for(std::string_view user_agent) const;

  std::vector<Group> groups_;
  std::vector<std::string> sitemaps_;
  Summary summary_;
};

}  // namespace scraperd::daemon
