#include "daemon/extract/extract.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <future>
#include <iterator>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "config/css.h"
#include "daemon/extract/settled.h"
#include "daemon/service/service.h"
#include "tests/support/http_server.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

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
  for (const char* xml : {"application/xml", "text/xml; charset=utf-8", "application/rss+xml",
                          "application/atom+xml", "image/svg+xml", "Application/XML"})
    CHECK(daemon::is_xml(xml));
  for (const char* other : {"text/html", "application/xhtml+xml", "", "application/json",
                            "text/plain", "+xml", "application/xml-dtd"})
    CHECK_FALSE(daemon::is_xml(other));
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
  // FNV-1a 64's published test vectors: stored hashes stay comparable across versions.
  CHECK(daemon::content_hash("") == "cbf29ce484222325");
  CHECK(daemon::content_hash("a") == "af63dc4c8601ec8c");
  CHECK(daemon::content_hash("foobar") == "85944171f73967e8");
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

// The translation once compared a UTF-8 byte count with XPath's string-length(), which counts
// characters: every [a$=v] with a non-ASCII v matched nothing.
TEST_CASE("extract: attribute selectors with non-ASCII values match", "[extract]") {
  auto f = fields(
      "      euro: {css: 'span[aria-label$=\"€\"]', all: true}\n"
      "      jp: {css: 'a[title$=\"日本語\"]::attr(href)'}\n"
      "      starts: {css: 'span[aria-label^=\"é\"]'}\n"
      "      has: {css: 'span[aria-label*=\"à\"]', all: true}\n"
      "      word: {css: 'span[aria-label~=\"été\"]'}\n");
  auto j = run(f,
               "<span aria-label='prix 12 €'>a</span><span aria-label='€'>b</span>"
               "<span aria-label='12 €x'>no</span><span aria-label='été à "
               "Paris'>c</span><a title='日本語' href='/ja'>ja</a>",
               "text/html; charset=utf-8");
  CHECK(j["euro"] == nlohmann::json({"a", "b"}));
  CHECK(j["jp"] == "/ja");
  CHECK(j["starts"] == "c");
  CHECK(j["has"] == nlohmann::json({"c"}));
  CHECK(j["word"] == "c");
}

TEST_CASE("extract: an XML response is read as XML, with its names and namespaces", "[extract]") {
  const std::string xml =
      "<?xml version='1.0'?>\n"
      "<slideshow author='Yours Truly' title='Sample'>"
      "<slide type='all'><title>Wake up to WonderWidgets!</title></slide>"
      "<slide type='all'><Title>Overview</Title><item>Why <em>WonderWidgets</em> are great</item>"
      "</slide>"
      "<a:note xmlns:a='urn:a'>namespaced</a:note></slideshow>";
  auto f = fields(
      "      author: {xpath: /slideshow/@author}\n"
      "      titles: {css: 'slide > title', all: true}\n"
      "      upper: {css: 'slide > Title'}\n"
      "      first_slide: {xpath: '/slideshow/slide[1]/title'}\n"
      "      note: {xpath: '//n:note', namespaces: {n: 'urn:a'}}\n"
      "      note_css: {css: 'n|note', namespaces: {n: 'urn:a'}}\n"
      "      any_ns: {css: '*|note'}\n"
      "      wrong_uri: {xpath: '//n:note', namespaces: {n: 'urn:b'}}\n");
  auto j = run(f, xml, "application/xml");
  CHECK(j["author"] == "Yours Truly");
  CHECK(j["titles"] == nlohmann::json({"Wake up to WonderWidgets!"}));  // case-sensitive
  CHECK(j["upper"] == "Overview");
  CHECK(j["first_slide"] == "Wake up to WonderWidgets!");
  CHECK(j["note"] == "namespaced");
  CHECK(j["note_css"] == "namespaced");
  CHECK(j["any_ns"] == "namespaced");
  CHECK(j["wrong_uri"].is_null());
  // The same bytes as HTML: the HTML parser folds names and drops the namespace.
  auto h = run(f, xml, "text/html");
  CHECK(h["titles"] == nlohmann::json({"Wake up to WonderWidgets!", "Overview"}));
  CHECK(h["note"].is_null());
}

TEST_CASE("extract: the job's namespaces apply to every field, a field's own win", "[extract]") {
  auto r = config::load_string(
      "jobs:\n  - name: t\n    url: http://x.example/\n    every: 1h\n"
      "    namespaces: {a: 'urn:one', b: 'urn:two'}\n"
      "    extract:\n"
      "      one: {xpath: '//a:x'}\n"
      "      two: {xpath: '//b:x'}\n"
      "      swapped: {xpath: '//a:x', namespaces: {a: 'urn:two'}}\n",
      "test.yaml");
  for (const auto& e : r.errors) FAIL(e.str());
  const auto& f = r.config->jobs[0].extract;
  CHECK(f[2].namespaces ==
        std::vector<std::pair<std::string, std::string>>{{"a", "urn:two"}, {"b", "urn:two"}});
  auto j =
      run(f, "<r xmlns:p='urn:one' xmlns:q='urn:two'><p:x>1</p:x><q:x>2</q:x></r>", "text/xml");
  CHECK(j["one"] == "1");
  CHECK(j["two"] == "2");
  CHECK(j["swapped"] == "2");
}

TEST_CASE(
    "extract: malformed XML is read leniently, a body without a root element is a parse problem",
    "[extract]") {
  auto f = fields("      titles: {css: 'item title', all: true}\n");
  // An unescaped '&', a missing end tag, a truncated end: what could be read is kept.
  auto j = run(f, "<rss><item><title>A & B</title></item><item><title>C</title><item><title>D",
               "application/rss+xml");
  CHECK(j["titles"] == nlohmann::json({"A B", "C", "D"}));
  daemon::FieldExtractor extractor(f);
  for (const char* body : {"not xml at all", "<", "\x01\x02\x03", "<?xml version='1.0'?>"}) {
    INFO(body);
    auto e = extractor.extract(body, "application/xml");
    CHECK_THAT(e.problem, Catch::StartsWith("the body is not XML"));
    CHECK(nlohmann::json::parse(e.data)["titles"] == nlohmann::json::array());
  }
  CHECK(extractor.extract("", "application/xml").problem.empty());  // no body: nothing missing
  CHECK(extractor.extract(std::string(5000, '\0'), "application/xml").problem.size() > 0);
}

TEST_CASE("extract: XML entities neither expand nor read files", "[extract]") {
  auto f =
      fields("      v: {xpath: 'string(/r)'}\n      n: {xpath: 'string-length(/r)', type: int}\n");
  // &j; would be 10^10 characters: entity declarations are ignored, the reference stays empty.
  std::string lol = "<?xml version='1.0'?><!DOCTYPE r [<!ENTITY a 'aaaaaaaaaa'>";
  for (char c = 'b'; c <= 'j'; ++c) {
    lol += std::string("<!ENTITY ") + c + " '";
    for (int i = 0; i < 10; ++i) lol += std::string("&") + static_cast<char>(c - 1) + ";";
    lol += "'>";
  }
  lol += "]><r>x&j;y</r>";
  auto j = run(f, lol, "application/xml");
  CHECK(j["v"] == "xy");
  CHECK(j["n"] == 2);
  auto xxe = run(f,
                 "<?xml version='1.0'?><!DOCTYPE r [<!ENTITY s SYSTEM 'file:///etc/passwd'>]>"
                 "<r>[&s;]</r>",
                 "application/xml");
  CHECK(xxe["v"] == "[]");
}

// examples/jobs.yaml's feed jobs, through the real engine, against a server serving
// examples/site's feeds with feed content types.
TEST_CASE("feeds: an RSS and an Atom feed's titles and links, through the engine", "[extract]") {
  test::HttpServer srv;
  for (auto [path, type] : {std::pair{"/feed.xml", "application/rss+xml; charset=utf-8"},
                            std::pair{"/atom.xml", "application/atom+xml"}}) {
    std::ifstream in(std::string(SCRAPERD_SOURCE_DIR) + "/examples/site" + path);
    std::stringstream body;
    body << in.rdbuf();
    srv.server().Get(path, [content = body.str(), type = std::string(type)](
                               const httplib::Request&, httplib::Response& res) {
      res.set_content(content, type);
    });
  }
  srv.start();
  auto loaded = config::load_file(std::string(SCRAPERD_SOURCE_DIR) + "/examples/jobs.yaml");
  for (const auto& e : loaded.errors) FAIL(e.str());
  auto cfg = std::make_shared<config::Config>(*loaded.config);
  std::vector<config::Job> feeds;
  for (auto job : cfg->jobs) {
    if (job.name != "feed" && job.name != "releases") continue;
    job.urls = {srv.url(job.name == "feed" ? "/feed.xml" : "/atom.xml")};
    feeds.push_back(job);
  }
  REQUIRE(feeds.size() == 2);
  cfg->jobs = feeds;
  test::TempDir dir;
  REQUIRE(daemon::run(cfg, {.db_path = dir.file("out.db"), .once = true}) == 0);
  auto rows = test::sql(dir.file("out.db"), "SELECT job, data FROM results ORDER BY job");
  REQUIRE(rows.size() == 2);
  auto rss = nlohmann::json::parse(rows[0]["data"]);
  CHECK(rows[0]["job"] == "feed");
  CHECK(rss["titles"] == nlohmann::json({"Blue Widget is back in stock",
                                         "Gadgets & gizmos: 20% off", "Prix en €, enfin"}));
  CHECK(rss["links"] == nlohmann::json({"http://127.0.0.1:8089/products/1.html",
                                        "http://127.0.0.1:8089/products/2.html",
                                        "http://127.0.0.1:8089/products/3.html"}));
  CHECK(rss["authors"] == nlohmann::json({"Ada", "Grace", "Ada"}));
  auto atom = nlohmann::json::parse(rows[1]["data"]);
  CHECK(rows[1]["job"] == "releases");
  CHECK(atom["titles"] == nlohmann::json({"Widget 2.0", "Gizmo <Pro>"}));
  CHECK(atom["links"] == nlohmann::json({"http://127.0.0.1:8089/products/4.html",
                                         "http://127.0.0.1:8089/products/5.html"}));
  CHECK(test::sql1(dir.file("out.db"), "SELECT count(*) FROM errors") == "0");
}

// Which expressions let an HTML parse stop once their first node is complete: both sides.
TEST_CASE("settles: an XPath settles early only when later nodes cannot change its first node",
          "[extract][settles]") {
  auto css = [](const char* s) { return config::css_to_xpath(s).xpath; };
  for (const std::string& safe :
       {std::string("//title"),
        std::string("(//span[@class='price'])[1]"),
        std::string("(//span[@class='price'])[3]"),
        std::string("/html/head/title"),
        std::string("//a/@href"),
        std::string("//h1/text()"),
        std::string("//ul/li[2]"),
        std::string("//li[position() = 1]"),
        std::string("//h1 | //h2"),
        std::string("//div[@id and starts-with(@class, 'x')]//span[not(@hidden)]"),
        std::string("//p[count(preceding-sibling::p) = 2]"),
        std::string("//td[ancestor::table[@class='specs']]"),
        std::string("//h2/following-sibling::p[1]"),
        std::string("//*[name() = 'b']"),
        css("title"),
        css(".price"),
        css("a.next::attr(href)"),
        css("h1::text"),
        css("ul > li:first-child"),
        css("li:nth-child(2)"),
        css("h2 + p"),
        css("h2 ~ p"),
        css("meta[name=description]"),
        css("a[href^='/p/']"),
        css("div#main p.price, h1")}) {
    INFO(safe);
    CHECK(daemon::settles(safe).early);
  }
  for (const std::string& unsafe : {std::string("count(//li)"),
                                    std::string("string(//ul)"),
                                    std::string("//li[last()]"),
                                    std::string("(//li)[last()]"),
                                    std::string("//div[span]"),
                                    std::string("//div[.//b]"),
                                    std::string("//p[contains(., 'x')]"),
                                    std::string("//p[normalize-space()]"),
                                    std::string("//p[string-length() > 3]"),
                                    std::string("//span/.."),
                                    std::string("//span/parent::div"),
                                    std::string("//b/ancestor::div"),
                                    std::string("//p[following-sibling::p]"),
                                    std::string("//p[$v]"),
                                    std::string("/"),
                                    std::string("//p[. = 'x']"),
                                    std::string("//comment()"),
                                    std::string("id('a')"),
                                    std::string("(//li)[1]/b"),
                                    std::string("//li[text()='x']"),
                                    std::string("//p["),
                                    css("li:last-child"),
                                    css("p:contains('x')"),
                                    css("div:empty"),
                                    css("li:nth-last-child(2)"),
                                    css("p:only-child")}) {
    INFO(unsafe);
    CHECK_FALSE(daemon::settles(unsafe).early);
  }
  CHECK(daemon::settles("(//span[@class='price'])[1]").on_end_of ==
        std::vector<std::string>{"span"});
  CHECK(daemon::settles("//h1 | //h2/text()").on_end_of == std::vector<std::string>{"h1", "h2"});
  CHECK(daemon::settles(css(".price")).on_end_of.empty());  // any element's end
}

namespace {

struct Corpus {
  std::string name, body, content_type, url;
};

std::vector<Corpus> corpus() {
  auto site = [](const std::string& path) {
    std::ifstream in(std::string(SCRAPERD_SOURCE_DIR) + "/examples/site/" + path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  std::vector<Corpus> out = {
      {"shop.html", page("shop.html"), "text/html; charset=utf-8", "http://shop.example/a/b"},
      {"sjis.html (charset in <meta>)", page("sjis.html"), "text/html", "http://jp.example/x"},
      {"cp1251.html (charset in the header)", page("cp1251.html"),
       "text/html; charset=windows-1251", "http://ru.example/"},
      {"index.html", site("index.html"), "text/html", "http://127.0.0.1:8089/"},
      {"feed.xml", site("feed.xml"), "application/rss+xml", "http://127.0.0.1:8089/feed.xml"},
      {"api.json", page("api.json"), "application/json", "http://api.example/"},
      {"base href",
       "<html><head><base href='/root/'><title>B</title></head><body>"
       "<a href='p1'>1</a><span class=price>3.50</span><a href='/p2#x'>2</a>"
       "<a href='http://elsewhere.example/'>3</a></body></html>",
       "text/html", "https://x.example/a/b"},
      {"broken",
       "<title>one<b>two</title><p>a <span class='price'>1<i>2</span>3 <a href=x>"
       "</div></nosuch><span class=price>9</span><<a href='y'>y",
       "", "http://broken.example/"},
      {"after the root",
       "<html><body><h1>x</h1></body></html><span class=price>7</span>"
       "<title>late</title><a href='/after'>a</a>",
       "text/html", "http://late.example/"},
      {"empty", "", "text/html", "http://empty.example/"},
  };
  for (const char* p : {"products/1.html", "products/2.html"})
    out.push_back(
        {p, site(p), "text/html; charset=utf-8", std::string("http://127.0.0.1:8089/") + p});
  return out;
}

}  // namespace

// read_page parses once for the fields and the links; extract() and find() alone are the two
// separate parses. A page with links is parsed to its end; fields alone may stop early.
TEST_CASE("read_page: one parse gives the fields and links of two", "[extract][read_page]") {
  const auto early = fields(
      "      title: {xpath: '//title'}\n"
      "      price: {xpath: \"(//span[@class='price'])[1]\"}\n"
      "      h1: h1\n"
      "      name: {css: 'h1', attr: class}\n"
      "      json: {json: /total, type: int}\n");
  const auto full = fields(
      "      title: {xpath: '//title'}\n"
      "      count: {xpath: 'count(//a)', type: int}\n"
      "      items: {css: 'li', all: true}\n"
      "      price: {css: '.price', regex: '([0-9.,]+)'}\n");
  REQUIRE(daemon::settles(early[0].xpath).early);
  config::Follow follow_all = follow("a[href], link[rel=next]::attr(href)");
  const daemon::LinkFinder finder(follow_all);
  for (const auto& set : {early, full}) {
    const daemon::FieldExtractor extractor(set);
    for (const Corpus& c : corpus()) {
      INFO(c.name);
      const daemon::Extracted alone = extractor.extract(c.body, c.content_type);
      const auto links = finder.find(c.body, c.content_type, c.url, 100);
      const daemon::PageRead both =
          daemon::read_page(&extractor, &finder, c.body, c.content_type, c.url, 100);
      CHECK(both.extracted.data == alone.data);
      CHECK(both.extracted.missing == alone.missing);
      CHECK(both.extracted.problem == alone.problem);
      CHECK(both.links == links);
      CHECK_FALSE(both.stopped_early);  // links need the whole page
      const daemon::PageRead fields_only =
          daemon::read_page(&extractor, nullptr, c.body, c.content_type, c.url, 100);
      CHECK(fields_only.extracted.data == alone.data);
      CHECK(fields_only.links.empty());
      const daemon::PageRead links_only =
          daemon::read_page(nullptr, &finder, c.body, c.content_type, c.url, 100);
      CHECK(links_only.links == links);
      CHECK(links_only.extracted.data.empty());
    }
  }
  // The parse stops early on the HTML pages with all of a <title>, a span.price and an <h1>
  // (the first-match fields above); never with the other fields.
  const std::set<std::string> with_all = {"sjis.html (charset in <meta>)",
                                          "cp1251.html (charset in the header)", "after the root",
                                          "products/1.html", "products/2.html"};
  const daemon::FieldExtractor stops(early), reads_all(full);
  for (const Corpus& c : corpus()) {
    INFO(c.name);
    CHECK(daemon::read_page(&stops, nullptr, c.body, c.content_type, c.url, 0).stopped_early ==
          with_all.contains(c.name));
    CHECK_FALSE(
        daemon::read_page(&reads_all, nullptr, c.body, c.content_type, c.url, 0).stopped_early);
  }
  // Pinned values, so that both sides cannot be wrong the same way.
  auto j = nlohmann::json::parse(stops.extract(corpus()[6].body, "text/html").data);
  CHECK(j["title"] == "B");
  CHECK(j["price"] == "3.50");
  CHECK(finder.find(corpus()[6].body, "text/html", corpus()[6].url, 10) ==
        std::vector<std::string>{"https://x.example/root/p1", "https://x.example/p2"});
  auto broken = nlohmann::json::parse(stops.extract(corpus()[7].body, "").data);
  CHECK(broken["title"] == "onetwo");  // libxml2 reads tags inside <title>
  CHECK(broken["price"] == "12");      // the first .price up to where the parser closed it
  auto late = nlohmann::json::parse(stops.extract(corpus()[8].body, "text/html").data);
  CHECK(late["price"] == "7");
  CHECK(late["title"] == "late");
}

// Pages put together at random from pieces of broken HTML (unclosed and stray tags, content
// after </html>, raw text that looks like tags, implied elements): for each expression that
// settles early, the fields of a parse that may stop equal those of a whole parse.
TEST_CASE("read_page: a parse that stops early gives what the whole page gives",
          "[extract][read_page]") {
  const char* pieces[] = {"<p>",
                          "</p>",
                          "<div class='a'>",
                          "</div>",
                          "<span class=price>",
                          "</span>",
                          "<title>",
                          "</title>",
                          "<b>",
                          "</b>",
                          "text ",
                          "<br>",
                          "<li>",
                          "<ul>",
                          "</ul>",
                          "<table><tr><td>",
                          "</table>",
                          "</html>",
                          "</body>",
                          "<html lang=en>",
                          "<body>",
                          "<h1 class='t'>",
                          "</h1>",
                          "<a href='/x'>",
                          "</a>",
                          "&amp; ",
                          "<!-- c -->",
                          "<td>",
                          "<tr>",
                          "<script>var a = '<span class=price>';</script>",
                          "<head>",
                          "</head>",
                          "<meta charset='utf-8'>",
                          "<span>",
                          "<i>",
                          "<p class='price'>",
                          "  ",
                          "<h2>",
                          "</h2>",
                          "<img src=i.png>",
                          "<textarea>",
                          "</textarea>",
                          "é "};
  const std::vector<std::string> expressions = {"//title",
                                                "(//span[@class='price'])[1]",
                                                "//p[@class='price']",
                                                "//li[2]",
                                                "//td/text()",
                                                config::css_to_xpath(".price").xpath,
                                                config::css_to_xpath("h1").xpath,
                                                config::css_to_xpath("ul > li:first-child").xpath,
                                                "//a/@href",
                                                "//*[@class='a']//b",
                                                "//h1 | //b",
                                                "(//b)[2]",
                                                "//body",
                                                "//html",
                                                "//head",
                                                "//p/following-sibling::*[1]",
                                                "//h2/following::td",
                                                config::css_to_xpath("h2 + p").xpath,
                                                "//*[@lang]//i"};
  std::mt19937 rng(23);
  config::Follow follow_all = follow("a");
  const daemon::LinkFinder finder(follow_all);
  int stopped = 0, pages = 0;
  for (const auto& xpath : expressions) {
    REQUIRE(daemon::settles(xpath).early);
    std::vector<config::Field> f(1);
    f[0].name = "v";
    f[0].xpath = xpath;
    const daemon::FieldExtractor extractor(f);
    for (int n = 0; n < 300; ++n) {
      std::string body;
      const auto count = 1 + rng() % 40;
      for (std::size_t i = 0; i < count; ++i) body += pieces[rng() % std::size(pieces)];
      INFO(xpath << " on " << body);
      auto part = daemon::read_page(&extractor, nullptr, body, "text/html", "http://x.example/", 0);
      auto whole =
          daemon::read_page(&extractor, &finder, body, "text/html", "http://x.example/", 10);
      REQUIRE(part.extracted.data == whole.extracted.data);
      stopped += part.stopped_early;
      ++pages;
    }
  }
  INFO(stopped << " of " << pages << " parses stopped early");
  CHECK(stopped > pages / 5);  // on most random pages some expression matches nothing
}
