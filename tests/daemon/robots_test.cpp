#include "daemon/robots.h"

#include <catch2/catch.hpp>

using namespace scraperd;
using namespace std::chrono_literals;
using daemon::Robots;

namespace {
constexpr const char* kAgent = "scraperd/0.1 (+https://github.com/scraperd/scraperd)";
}

TEST_CASE("robots: the product token of a User-Agent", "[robots]") {
  CHECK(Robots::product_token(kAgent) == "scraperd");
  CHECK(Robots::product_token("Googlebot/2.1") == "googlebot");
  CHECK(Robots::product_token("my_bot-x 1.0") == "my_bot-x");
  CHECK(Robots::product_token("").empty());
}

TEST_CASE("robots: group selection by product token, case-insensitive, else *", "[robots]") {
  auto r = Robots::parse(
      "User-agent: *\n"
      "Disallow: /\n"
      "\n"
      "User-agent: ScraperD\n"
      "User-agent: otherbot\n"
      "Disallow: /private\n"
      "\n"
      "user-agent: scraperd/2.0\n"  // a second group for us: merged with the first
      "disallow: /tmp/\n");
  CHECK(r.allowed(kAgent, "/"));
  CHECK(r.allowed(kAgent, "/public/page"));
  CHECK_FALSE(r.allowed(kAgent, "/private"));
  CHECK_FALSE(r.allowed(kAgent, "/private/x?y=1"));
  CHECK_FALSE(r.allowed(kAgent, "/tmp/a"));
  CHECK(r.allowed(kAgent, "/tmp"));
  CHECK_FALSE(r.allowed("somebot/1.0", "/anything"));  // falls to *
  CHECK(r.allowed("somebot/1.0", "/robots.txt"));      // always allowed
}

TEST_CASE("robots: longest match wins, allow wins ties, wildcards and $", "[robots]") {
  auto r = Robots::parse(
      "User-agent: *\n"
      "Disallow: /shop\n"
      "Allow: /shop/public\n"
      "Disallow: /*.pdf$\n"
      "Disallow: /search*q=\n"
      "Allow: /page\n"
      "Disallow: /page\n"
      "Disallow: /exact$\n");
  CHECK_FALSE(r.allowed(kAgent, "/shop"));
  CHECK_FALSE(r.allowed(kAgent, "/shop/cart"));
  CHECK(r.allowed(kAgent, "/shop/public/item"));
  CHECK_FALSE(r.allowed(kAgent, "/docs/a.pdf"));
  CHECK(r.allowed(kAgent, "/docs/a.pdf?download=1"));  // $ anchors at the end
  CHECK_FALSE(r.allowed(kAgent, "/search?lang=en&q=x"));
  CHECK(r.allowed(kAgent, "/search?lang=en"));
  CHECK(r.allowed(kAgent, "/page"));  // equally long allow and disallow: allow
  CHECK_FALSE(r.allowed(kAgent, "/exact"));
  CHECK(r.allowed(kAgent, "/exactly"));
  CHECK(r.allowed(kAgent, "/other"));
}

TEST_CASE("robots: percent-encoding is compared normalised", "[robots]") {
  auto r = Robots::parse(
      "User-agent: *\n"
      "Disallow: /%7Ejoe/\n"
      "Disallow: /caf\xC3\xA9\n"
      "Disallow: /a%2fb\n");
  CHECK_FALSE(r.allowed(kAgent, "/~joe/index.html"));
  CHECK_FALSE(r.allowed(kAgent, "/%7ejoe/index.html"));
  CHECK_FALSE(r.allowed(kAgent, "/caf%C3%A9"));
  CHECK_FALSE(r.allowed(kAgent, "/a%2Fb"));  // reserved '/' stays encoded, hex case ignored
  CHECK(r.allowed(kAgent, "/a/b"));
}

TEST_CASE("robots: junk, comments, empty rules and a missing file", "[robots]") {
  auto r = Robots::parse(
      "\xEF\xBB\xBF# comment\r\n"
      "Disallow: /before-any-agent\r\n"
      "this is not a rule\r\n"
      "User-agent: * # everyone\r\n"
      "Disallow:\r\n"  // empty: allows everything
      "Disallow: relative\r\n"
      "Crawl-delay: 2.5\r\n"
      "Sitemap: https://example.com/sitemap.xml\r\n");
  CHECK(r.allowed(kAgent, "/before-any-agent"));
  CHECK(r.allowed(kAgent, "/relative"));
  CHECK(r.crawl_delay(kAgent) == 2500ms);
  CHECK(Robots::allow_all().allowed(kAgent, "/x"));
  CHECK_FALSE(Robots::allow_all().crawl_delay(kAgent).has_value());
  auto garbage = Robots::parse(std::string(2'000'000, '*'));
  CHECK(garbage.allowed(kAgent, "/x"));
}

TEST_CASE("robots: the wildcard matcher stays linear on hostile patterns", "[robots]") {
  std::string pattern = "/";
  for (int i = 0; i < 200; ++i) pattern += "*a";
  auto r = Robots::parse("User-agent: *\nDisallow: " + pattern + "b\n");
  std::string target = "/" + std::string(4000, 'a');
  CHECK(r.allowed(kAgent, target));  // no 'b': allowed, and answered quickly
  CHECK_FALSE(r.allowed(kAgent, target + "b"));
}
