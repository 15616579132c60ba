#include "config/css.h"

#include <catch2/catch.hpp>

using scraperd::config::css_to_xpath;

namespace {
std::string x(const char* css) {
  auto t = css_to_xpath(css);
  INFO(css << ": " << t.error);
  REQUIRE(t.error.empty());
  return t.xpath;
}
std::string err(const char* css) {
  return css_to_xpath(css).error;
}
}  // namespace

TEST_CASE("CSS selectors translate to XPath", "[config][css]") {
  CHECK(x("h1") == "//h1");
  CHECK(x("*") == "//*");
  CHECK(x("DIV") == "//div");
  CHECK(x("#main") == "//*[@id = 'main']");
  CHECK(x("span.price") ==
        "//span[contains(concat(' ', normalize-space(@class), ' '), ' price ')]");
  CHECK(x("a[href]") == "//a[@href]");
  CHECK(x("a[rel=next]") == "//a[@rel = 'next']");
  CHECK(x("a[href^='https:']") == "//a[starts-with(@href, 'https:')]");
  CHECK(x("a[href$=\".pdf\"]") == "//a[substring(@href, string-length(@href) - 4 + 1) = '.pdf']");
  CHECK(x("a[href*=shop]") == "//a[contains(@href, 'shop')]");
  CHECK(x("p[class~=lead]") ==
        "//p[contains(concat(' ', normalize-space(@class), ' '), ' lead ')]");
  CHECK(x("p[lang|=en]") == "//p[@lang = 'en' or starts-with(@lang, 'en-')]");
  CHECK(x("div p") == "//div//p");
  CHECK(x("ul > li") == "//ul/li");
  CHECK(x("h1 + p") == "//h1/following-sibling::*[1][self::p]");
  CHECK(x("h1 ~ p") == "//h1/following-sibling::p");
  CHECK(x("li:first-child") == "//li[not(preceding-sibling::*)]");
  CHECK(x("li:last-child") == "//li[not(following-sibling::*)]");
  CHECK(x("li:nth-child(3)") == "//li[count(preceding-sibling::*) + 1 = 3]");
  CHECK(x("li:nth-child(2n+1)") ==
        "//li[count(preceding-sibling::*) + 1 >= 1 and (count(preceding-sibling::*) + 1 - 1) "
        "mod 2 = 0]");
  CHECK(x("li:nth-child(odd)") == x("li:nth-child(2n+1)"));
  CHECK(x("li:nth-child(-n+3)") ==
        "//li[count(preceding-sibling::*) + 1 <= 3 and (3 - (count(preceding-sibling::*) + 1)) "
        "mod 1 = 0]");
  CHECK(x("p:not(.ad)") ==
        "//p[not(self::*[contains(concat(' ', normalize-space(@class), ' '), ' ad ')])]");
  CHECK(x("h1, h2") == "//h1 | //h2");
  CHECK(x("h1::text") == "//h1/text()");
  CHECK(x("a::attr(href)") == "//a/@href");
  CHECK(x("table tr > td.name::text") ==
        "//table//tr/td[contains(concat(' ', normalize-space(@class), ' '), ' name ')]/text()");
  CHECK(x("a[title=\"it's\"]") == "//a[@title = \"it's\"]");
}

TEST_CASE("unsupported or broken CSS names the construct", "[config][css]") {
  CHECK(err("a:hover") == "unsupported pseudo-class ':hover'");
  CHECK(err("p::before") == "unsupported pseudo-element '::before'");
  CHECK(err("div >> p") == "unexpected '>'");
  CHECK(err("a[href") == "an attribute selector is missing its ']'");
  CHECK(err("a[href=]") == "an attribute value must be an identifier or a quoted string");
  CHECK(err("li:nth-child(x)") == ":nth-child(x) is not of the form an+b");
  CHECK(err("h1::text p") == "nothing may follow a pseudo-element");
  CHECK(err("") == "empty selector");
  CHECK(err("h1,") == "a selector is missing");
  CHECK(err("a\\:b") == "CSS escapes are not supported");
  CHECK(err("#") == "'#' needs an id");
}
