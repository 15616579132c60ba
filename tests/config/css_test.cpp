#include "config/css.h"

#include <catch2/catch.hpp>

using scraperd::config::css_to_xpath;
using scraperd::config::Markup;
using scraperd::config::xpath_prefixes;

namespace {
std::string x(const char* css, Markup markup = Markup::kHtml) {
  auto t = css_to_xpath(css, markup);
  INFO(css << ": " << t.error);
  REQUIRE(t.error.empty());
  return t.xpath;
}
std::string err(const char* css) {
  return css_to_xpath(css).error;
}
}  // namespace

TEST_CASE("CSS selectors translate to XPath", "[config][css]") {
  CHECK(x("h1") == "descendant-or-self::h1");
  CHECK(x("*") == "descendant-or-self::*");
  CHECK(x("DIV") == "descendant-or-self::div");
  CHECK(x("#main") == "descendant-or-self::*[@id = 'main']");
  CHECK(x("span.price") ==
        "descendant-or-self::span[contains(concat(' ', normalize-space(@class), ' '), ' price ')]");
  CHECK(x("a[href]") == "descendant-or-self::a[@href]");
  CHECK(x("a[rel=next]") == "descendant-or-self::a[@rel = 'next']");
  CHECK(x("a[href^='https:']") == "descendant-or-self::a[starts-with(@href, 'https:')]");
  CHECK(x("a[href$=\".pdf\"]") ==
        "descendant-or-self::a[substring(@href, string-length(@href) - 4 + 1) = '.pdf']");
  CHECK(x("a[href*=shop]") == "descendant-or-self::a[contains(@href, 'shop')]");
  CHECK(x("p[class~=lead]") ==
        "descendant-or-self::p[contains(concat(' ', normalize-space(@class), ' '), ' lead ')]");
  CHECK(x("p[lang|=en]") == "descendant-or-self::p[@lang = 'en' or starts-with(@lang, 'en-')]");
  CHECK(x("a[rel!=nofollow]") == "descendant-or-self::a[not(@rel) or @rel != 'nofollow']");
  CHECK(x("div p") == "descendant-or-self::div//p");
  CHECK(x("ul > li") == "descendant-or-self::ul/li");
  CHECK(x("h1 + p") == "descendant-or-self::h1/following-sibling::*[1][self::p]");
  CHECK(x("h1 ~ p") == "descendant-or-self::h1/following-sibling::p");
  CHECK(x("li:first-child") == "descendant-or-self::li[not(preceding-sibling::*)]");
  CHECK(x("li:last-child") == "descendant-or-self::li[not(following-sibling::*)]");
  CHECK(x("li:nth-child(3)") == "descendant-or-self::li[count(preceding-sibling::*) = 2]");
  CHECK(x("li:nth-child(2n+1)") == "descendant-or-self::li[count(preceding-sibling::*) mod 2 = 0]");
  CHECK(x("li:nth-child(odd)") == x("li:nth-child(2n+1)"));
  CHECK(x("li:nth-child(3n+5)") ==
        "descendant-or-self::li[count(preceding-sibling::*) >= 4 and "
        "(count(preceding-sibling::*) - 4) mod 3 = 0]");
  CHECK(x("li:nth-child(-n+3)") == "descendant-or-self::li[count(preceding-sibling::*) <= 2]");
  CHECK(x("li:nth-child(n)") == "descendant-or-self::li");
  CHECK(x("li:nth-child(-n)") == "descendant-or-self::li[false()]");
  CHECK(x("li:nth-last-child(2n)") ==
        "descendant-or-self::li[(count(following-sibling::*) + 1) mod 2 = 0]");
  CHECK(x("ol:nth-of-type(2)") == "descendant-or-self::ol[count(preceding-sibling::ol) = 1]");
  CHECK(x("p:not(.ad)") ==
        "descendant-or-self::p[not(self::*[contains(concat(' ', normalize-space(@class), ' '), "
        "' ad ')])]");
  CHECK(x("h1, h2") == "descendant-or-self::h1 | descendant-or-self::h2");
  CHECK(x("h1::text") == "descendant-or-self::h1/text()");
  CHECK(x("a::attr(href)") == "descendant-or-self::a/@href");
  CHECK(x("table tr > td.name::text") ==
        "descendant-or-self::table//tr/td[contains(concat(' ', normalize-space(@class), ' '), "
        "' name ')]/text()");
  CHECK(x("a[title=\"it's\"]") == "descendant-or-self::a[@title = \"it's\"]");
}

TEST_CASE("CSS: $= counts characters, not UTF-8 bytes", "[config][css]") {
  CHECK(x("span[aria-label$=\"€\"]") ==
        "descendant-or-self::span[substring(@aria-label, string-length(@aria-label) - 1 + 1) = "
        "'€']");
  CHECK(x("a[title$='日本語']") ==
        "descendant-or-self::a[substring(@title, string-length(@title) - 3 + 1) = '日本語']");
  // ~= splits on every CSS whitespace character, not only the space.
  CHECK(x("p[class~=\"a\tb\"]") == "descendant-or-self::p[false()]");
}

TEST_CASE("CSS: pseudo-classes of cssselect", "[config][css]") {
  CHECK(x("p:empty") == "descendant-or-self::p[not(*) and not(string-length())]");
  CHECK(x(":root") == "descendant-or-self::*[not(parent::*)]");
  CHECK(x(":scope > div") == "descendant-or-self::*[1]/div");
  CHECK(x("li:contains(\"a b\")") == "descendant-or-self::li[contains(., 'a b')]");
  CHECK(x("ol:has(> li.x)") ==
        "descendant-or-self::ol[li[contains(concat(' ', normalize-space(@class), ' '), ' x ')]]");
  CHECK(x("div:has(p, + span)") ==
        "descendant-or-self::div[descendant::p | following-sibling::*[1][self::span]]");
  CHECK(x(":is(h1, h2.a)") ==
        "descendant-or-self::*[(self::h1 or self::h2[contains(concat(' ', normalize-space(@class), "
        "' '), ' a ')])]");
  CHECK(x(":where(h1)") == "descendant-or-self::*[self::h1]");
  CHECK(x("p:not(:not(.a))") ==
        "descendant-or-self::p[not(self::*[not(self::*[contains(concat(' "
        "', normalize-space(@class), ' '), ' a ')])])]");
  CHECK(x("p:lang(en)", Markup::kXml) == "descendant-or-self::p[lang('en')]");
  CHECK(x("input:checked", Markup::kXml) == "descendant-or-self::input[false()]");
  CHECK(x("li:first-of-type") == "descendant-or-self::li[not(preceding-sibling::li)]");
  CHECK(x("li:only-of-type") ==
        "descendant-or-self::li[not(preceding-sibling::li) and not(following-sibling::li)]");
}

TEST_CASE("CSS: escapes, namespaces, case and pseudo-elements as parsel reads them",
          "[config][css]") {
  CHECK(x("footer.md\\:flex") ==
        "descendant-or-self::footer[contains(concat(' ', normalize-space(@class), ' '), "
        "' md:flex ')]");
  CHECK(x("#a\\31 23") == "descendant-or-self::*[@id = 'a123']");
  CHECK(x("[title=\"\\'\\22\\'\"]") ==
        "descendant-or-self::*[@title = concat(\"'\", '\"', \"'\")]");
  CHECK(x("di\\a0 v") == "descendant-or-self::*[name() = 'di\u00a0v']");
  CHECK(x("div ::text") == "descendant-or-self::div//text()");
  CHECK(x("div ::attr(href)") == "descendant-or-self::div/descendant-or-self::*/@href");
  CHECK(x("::text") == "descendant-or-self::*/text()");
  CHECK(x("::attr(href)") == "descendant-or-self::*/@href");
  CHECK(x("a::attr(\"href\")") == "descendant-or-self::a/@href");
  CHECK(x("a::attr('data-x')") == "descendant-or-self::a/@data-x");
  CHECK(x("atom|entry > atom|title", Markup::kXml) == "descendant-or-self::atom:entry/atom:title");
  CHECK(x("*|entry", Markup::kXml) == "descendant-or-self::*[local-name() = 'entry']");
  CHECK(x("pubDate", Markup::kXml) == "descendant-or-self::pubDate");
  CHECK(x("pubDate") == "descendant-or-self::pubdate");
  CHECK(x("[xml|lang]", Markup::kXml) == "descendant-or-self::*[@xml:lang]");
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
  CHECK(err("#") == "'#' needs an id");
  CHECK(err("a\\") == "a '\\' ends the selector");
  CHECK(err("*:first-of-type") == "*:first-of-type needs an element name");
  CHECK(err("p *:only-of-type") == "*:only-of-type needs an element name");
  CHECK(err("div :scope") == ":scope must begin a selector");
  CHECK(err("p:not(div a)") == ":not() takes compound selectors (like a.b, not div a)");
  CHECK(err("p:is(::text)") == ":is() cannot hold a pseudo-element");
  CHECK(err("p:has(a") == "missing ')' after :has(");
  CHECK(err("p:contains(a b)") == ":contains() takes one string or identifier");
  CHECK(err("p:foo(1)") == "unsupported pseudo-class ':foo()'");
  CHECK(err("a[title='x]") == "unterminated string");
  CHECK(err("a[x~=y") == "an attribute selector is missing its ']'");
}

TEST_CASE("the namespace prefixes an XPath uses", "[config][css]") {
  using V = std::vector<std::string>;
  CHECK(xpath_prefixes("//atom:entry/atom:link/@href") == V{"atom"});
  CHECK(xpath_prefixes("//item/dc:creator | //media:content/@xml:lang") == V{"dc", "media", "xml"});
  CHECK(xpath_prefixes("descendant-or-self::a[contains(., 'x:y')]/child::b") == V{});
  CHECK(xpath_prefixes("//x:*") == V{"x"});
  CHECK(xpath_prefixes("count(//li) > 1.5") == V{});
}
