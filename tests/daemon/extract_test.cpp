#include "daemon/extract.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

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

namespace {

std::string page(const std::string& name) {
  std::ifstream in(std::string(SCRAPERD_SOURCE_DIR) + "/tests/pages/" + name, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The fields of a job whose `extract:` is `yaml` (a YAML mapping, indented for the job).
std::vector<config::Field> fields(const std::string& yaml) {
  auto r = config::load_string(
      "jobs:\n  - name: t\n    url: http://x.example/\n    every: 1h\n    extract:\n" + yaml,
      "test.yaml");
  for (const auto& e : r.errors) FAIL(e.str());
  return r.config->jobs[0].extract;
}

nlohmann::json run(const std::vector<config::Field>& f, const std::string& body,
                   const std::string& content_type, std::vector<std::string>* missing = nullptr) {
  daemon::FieldExtractor extractor(f);
  auto e = extractor.extract(body, content_type);
  INFO(e.problem);
  REQUIRE(e.problem.empty());
  if (missing) *missing = e.missing;
  return nlohmann::json::parse(e.data);
}

}  // namespace

TEST_CASE("extract: broken markup, entities, nested tables, attributes, types", "[extract]") {
  auto f = fields(
      "      title: h1\n"
      "      head: {xpath: '//title'}\n"
      "      description: {css: 'meta[name=description]', attr: content}\n"
      "      price: {css: p.price, regex: '([0-9,.]+)'}\n"
      "      price_cents: {css: p.price, regex: '(\\d+),(\\d+)\\.(\\d+)', type: int}\n"
      "      stock: {css: '.stock b', type: int}\n"
      "      weight: {xpath: \"//table[@class='specs']/tr[1]/td\", regex: '([0-9.]+)', "
      "type: number}\n"
      "      colours: {css: 'table.specs table td', all: true}\n"
      "      tags: {css: ul.tags li, all: true}\n"
      "      available: {css: 'span[data-available]', attr: data-available, type: bool}\n"
      "      next: {css: 'a.next::attr(href)'}\n"
      "      count: {xpath: 'count(//li)', type: int}\n"
      "      absent: {css: '.nothing'}\n"
      "      none_of_them: {css: '.nothing', all: true}\n");
  std::vector<std::string> missing;
  auto j = run(f, page("shop.html"), "text/html; charset=utf-8", &missing);
  CHECK(j["title"] == "Blue Widget");  // &nbsp; and newlines collapse
  CHECK(j["head"] == "Widgets & Gadgets \u2013 Shop");
  CHECK(j["description"] == "Everything for your desk");
  CHECK(j["price"] == "1,299.00");
  CHECK(j["price_cents"] == 1);  // the first capture group
  CHECK(j["stock"] == 17);
  CHECK(j["weight"] == 1.5);
  CHECK(j["colours"] == nlohmann::json({"blue", "navy"}));
  CHECK(j["tags"] == nlohmann::json({"desk", "office", "blue"}));
  CHECK(j["available"] == true);
  CHECK(j["next"] == "/reviews?page=2");
  CHECK(j["count"] == 3);
  CHECK(j["absent"].is_null());
  CHECK(j["none_of_them"] == nlohmann::json::array());
  CHECK(missing == std::vector<std::string>{"absent", "none_of_them"});
  // Fields keep the job's order in the stored object.
  daemon::FieldExtractor ordered(f);
  CHECK_THAT(ordered.extract(page("shop.html"), "text/html").data,
             Catch::StartsWith("{\"title\":\"Blue Widget\",\"head\":"));
}

TEST_CASE("extract: Shift_JIS and windows-1251 pages come out as UTF-8", "[extract]") {
  auto f = fields("      title: h1\n      price: .price\n      title_tag: title\n");
  // Shift_JIS declared in the page's own <meta>, no charset in the header.
  auto sjis = run(f, page("sjis.html"), "text/html");
  CHECK(sjis["title"] == "青いウィジェット");
  CHECK(sjis["price"] == "１２００円");
  // windows-1251 declared only in the HTTP header.
  auto cyr = run(f, page("cp1251.html"), "text/html; charset=windows-1251");
  CHECK(cyr["title"] == "Синий виджет");
  CHECK(cyr["title_tag"] == "Магазин");
  CHECK(cyr["price"] == "450 руб.");
}

TEST_CASE("extract: JSON pointers, lists, types, and regex on the body", "[extract]") {
  auto f = fields(
      "      name: {json: /items/0/name}\n"
      "      price: {json: /items/0/price, type: number}\n"
      "      stock: {json: /items/0/stock}\n"
      "      tags: {json: /items/0/tags, all: true}\n"
      "      total: {json: /total, type: int}\n"
      "      ok: {json: /ok, type: bool}\n"
      "      note: {json: /note}\n"
      "      missing: {json: /items/5/name}\n"
      "      first_price: {regex: '\"price\": ([0-9.]+)', type: number}\n"
      "      all_prices: {regex: '\"price\": ([0-9.]+)', all: true, type: number}\n");
  std::vector<std::string> missing;
  auto j = run(f, page("api.json"), "application/json", &missing);
  CHECK(j["name"] == "Blue Widget");
  CHECK(j["price"] == 12.5);
  CHECK(j["stock"] == 17);  // a JSON number stays a number
  CHECK(j["tags"] == nlohmann::json({"desk", "office"}));
  CHECK(j["total"] == 2);
  CHECK(j["ok"] == true);
  CHECK(j["note"] == "spaced out");
  CHECK(j["missing"].is_null());
  CHECK(j["first_price"] == 12.5);
  CHECK(j["all_prices"] == nlohmann::json({12.5, 3}));
  CHECK(missing == std::vector<std::string>{"missing"});

  daemon::FieldExtractor extractor(f);
  CHECK(extractor.extract("<html>not json</html>", "text/html").problem == "the body is not JSON");
}

TEST_CASE("extract: a value that does not convert to its type is null", "[extract]") {
  auto f = fields(
      "      n: {css: b, type: int}\n      x: {css: i, type: number}\n"
      "      flag: {css: u, type: bool}\n");
  auto j = run(f, "<b>12abc</b><i>1e999</i><u>maybe</u>", "text/html");
  CHECK(j["n"].is_null());
  CHECK(j["x"].is_null());
  CHECK(j["flag"].is_null());
  CHECK(daemon::content_hash("abc") == daemon::content_hash("abc"));
  CHECK(daemon::content_hash("abc") != daemon::content_hash("abd"));
  CHECK(daemon::content_hash("").size() == 16);
}

// libxml2 allocates a page from a 1 MB per-thread arena and falls back to malloc when it is
// full: a 1.5 MB page crosses over mid-parse (growing buffers move from the arena to the
// heap), and the pages after it start from an empty arena again. Several threads at once,
// each with its own arena.
TEST_CASE("extract: pages larger than the parse arena and small ones after them on several threads",
          "[extract]") {
  auto f = fields(
      "      count: {xpath: 'count(//li)', type: int}\n"
      "      last: {xpath: '//li[last()]'}\n"
      "      all_text: {xpath: 'string(//ul)', regex: '(item 49999)'}\n");
  std::string big = "<html><body><ul>";
  for (int i = 0; i < 50'000; ++i)
    big += "<li class=\"c" + std::to_string(i % 7) + "\">item " + std::to_string(i) + "</li>";
  big += "</ul></body></html>";
  REQUIRE(big.size() > 1024 * 1024);  // its tree is several times that
  const std::string small = "<ul><li>one</li><li>two</li></ul>";
  auto check = [&] {
    for (int round = 0; round < 3; ++round) {
      auto b = nlohmann::json::parse(daemon::FieldExtractor(f).extract(big, "text/html").data);
      if (b["count"] != 50'000 || b["last"] != "item 49999" || b["all_text"] != "item 49999")
        return false;
      auto s = nlohmann::json::parse(daemon::FieldExtractor(f).extract(small, "text/html").data);
      if (s["count"] != 2 || s["last"] != "two") return false;
    }
    return true;
  };
  std::vector<std::future<bool>> threads;
  for (int t = 0; t < 3; ++t) threads.push_back(std::async(std::launch::async, check));
  for (auto& t : threads) CHECK(t.get());
}

// libxml2 keeps the last parse error of each thread (its message allocated while a page was
// read) and frees it when the thread ends, after the arena is gone: the arena must not be
// where that message lives.
TEST_CASE("extract: a thread that read broken pages ends cleanly", "[extract]") {
  auto f = fields("      title: {xpath: '//title'}\n");
  std::string title;
  std::thread reader([&] {
    for (int i = 0; i < 3; ++i)
      title = nlohmann::json::parse(
          daemon::FieldExtractor(f)
              .extract("<html><head><title>t</title></head><body><p>a <b><i>b</b> &bogus; "
                       "</nosuch><div <<",
                       "text/html")
              .data)["title"];
  });
  reader.join();
  CHECK(title == "t");
}
