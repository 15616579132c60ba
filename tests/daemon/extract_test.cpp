#include "daemon/extract.h"

#include <catch2/catch.hpp>

#include "config/css.h"

using namespace scraperd;

namespace {

config::Follow follow(const std::string& css) {
  config::Follow f;
  f.selector = css;
  f.xpath = config::css_to_xpath(css).xpath;
  REQUIRE_FALSE(f.xpath.empty());
  return f;
}

}  // namespace

TEST_CASE("content types: what is HTML, and its charset", "[extract]") {
  CHECK(daemon::is_html("text/html"));
  CHECK(daemon::is_html("Text/HTML; charset=UTF-8"));
  CHECK(daemon::is_html("application/xhtml+xml"));
  CHECK(daemon::is_html(""));
  CHECK_FALSE(daemon::is_html("application/json"));
  CHECK_FALSE(daemon::is_html("image/png"));
  CHECK(daemon::charset_of("text/html; charset=Shift_JIS") == "Shift_JIS");
  CHECK(daemon::charset_of("text/html;Charset=\"windows-1251\"; x=y") == "windows-1251");
  CHECK(daemon::charset_of("text/html").empty());
}

TEST_CASE("links are resolved, filtered, deduplicated, in document order", "[extract]") {
  const std::string page = "http://shop.example/dir/page.html";
  const std::string html = R"html(<html><body>
    <a href="a.html">A</a>
    <a href="/b?x=1#top">B</a>
    <a href="../c.html">C</a>
    <a href="a.html#again">A again</a>
    <a href="http://other.example/d">elsewhere</a>
    <a href="mailto:me@shop.example">mail</a>
    <a href="javascript:void(0)">js</a>
    <a href="#only-fragment">self</a>
    <a>no href</a>
    <p><a href="  spaced.html  ">spaced</p>
    <a href="files/report.pdf">pdf</a>
  )html";  // unclosed tags: the recovering parser copes

  SECTION("same_host (the default) keeps this host's http(s) links") {
    auto f = follow("a[href]");
    daemon::LinkFinder finder(f);
    auto links = finder.find(html, "text/html", page, 100);
    CHECK(links == std::vector<std::string>{
                       "http://shop.example/dir/a.html", "http://shop.example/b?x=1",
                       "http://shop.example/c.html", "http://shop.example/dir/page.html",
                       "http://shop.example/dir/spaced.html",
                       "http://shop.example/dir/files/report.pdf"});
  }
  SECTION("other hosts when same_host is off; allow and deny") {
    auto f = follow("a");
    f.same_host = false;
    f.deny = {"\\.pdf$", "page\\.html"};
    daemon::LinkFinder finder(f);
    auto links = finder.find(html, "text/html", page, 100);
    CHECK(links == std::vector<std::string>{"http://shop.example/dir/a.html",
                                            "http://shop.example/b?x=1",
                                            "http://shop.example/c.html", "http://other.example/d",
                                            "http://shop.example/dir/spaced.html"});
    f.allow = {"/dir/"};
    daemon::LinkFinder only_dir(f);
    CHECK(only_dir.find(html, "text/html", page, 100) ==
          std::vector<std::string>{"http://shop.example/dir/a.html",
                                   "http://shop.example/dir/spaced.html"});
  }
  SECTION("at most `limit`") {
    auto f = follow("a[href]");
    daemon::LinkFinder finder(f);
    CHECK(finder.find(html, "text/html", page, 2).size() == 2);
  }
}

TEST_CASE("links: <base href>, attribute selectors, and non-HTML input", "[extract]") {
  auto f = follow("link[rel=next]::attr(href), a.more");
  daemon::LinkFinder finder(f);
  const std::string html =
      "<html><head><base href='/root/'><link rel=next href='p2'></head>"
      "<body><a class='more' href='p3'>more</a><a href='nope'>x</a></body></html>";
  CHECK(finder.find(html, "text/html", "https://x.example/a/b", 10) ==
        std::vector<std::string>{"https://x.example/root/p2", "https://x.example/root/p3"});
  CHECK(finder.find("", "text/html", "https://x.example/", 10).empty());
  CHECK(finder.find(std::string(5000, '\0'), "text/html", "https://x.example/", 10).empty());
}

TEST_CASE("links: a page with 100,000 links is bounded by the limit", "[extract]") {
  std::string html = "<html><body>";
  for (int i = 0; i < 100'000; ++i) html += "<a href='/p/" + std::to_string(i) + "'>x</a>";
  auto f = follow("a[href]");
  daemon::LinkFinder finder(f);
  auto links = finder.find(html, "text/html", "http://big.example/", 500);
  REQUIRE(links.size() == 500);
  CHECK(links.front() == "http://big.example/p/0");
  CHECK(links.back() == "http://big.example/p/499");
}
