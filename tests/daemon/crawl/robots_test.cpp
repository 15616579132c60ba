#include "daemon/crawl/robots.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <sstream>

#include "config/text.h"
#include "config/url.h"
#include "daemon/service/service.h"
#include "tests/daemon/crawl/robots_google_cases.h"
#include "tests/support/http_server.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using namespace std::chrono_literals;
using daemon::Robots;

namespace {
constexpr const char* kAgent = "scraperd/0.1 (+https://github.com/scraperd/scraperd)";

// Google's GetPathParamsQuery for the URLs of its tests: path, params and query, without the
// scheme, the authority and the fragment; "/" when there is no path.
std::string target_of(const std::string& url) {
  auto scheme = url.find("://");
  auto start = url.find_first_of("/?;", scheme == std::string::npos ? 0 : scheme + 3);
  if (start == std::string::npos) return "/";
  std::string target = url.substr(start, url.find('#', start) - start);
  return target[0] == '/' ? target : "/" + target;
}

std::shared_ptr<const config::Config> load(const std::string& yaml) {
  auto r = config::load_string(yaml, "test.yaml");
  for (const auto& e : r.errors) FAIL(e.str());
  return r.config;
}

// A response that promises 1000 bytes and breaks off after 4: a `read` failure for curl.
void break_off(httplib::Response& res) {
  res.set_content_provider(1000, "text/plain", [](size_t, size_t, httplib::DataSink& sink) {
    sink.write("User", 4);
    return false;
  });
}

}  // namespace

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
  CHECK(r.sitemaps() == std::vector<std::string>{"https://example.com/sitemap.xml"});
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

TEST_CASE("robots: Google's robots_test.cc, every IsUserAgentAllowed case", "[robots][google]") {
  std::map<std::string, int> numbers;
  int cases = 0, differences = 0;
  for (const auto& block : test::google_cases()) {
    auto robots = Robots::parse(block.robots);
    for (const auto& c : block.expects) {
      ++cases;
      int n = ++numbers[block.test];
      DYNAMIC_SECTION(block.test << " #" << n << ": " << (c.agent.empty() ? "''" : c.agent) << " "
                                 << (c.url.size() > 80 ? c.url.substr(0, 80) + "..." : c.url)) {
        bool expected = c.differs ? !c.google : c.google;
        if (c.differs) INFO("a chosen difference from Google: " << c.differs);
        CHECK(robots.allowed(c.agent, target_of(c.url)) == expected);
      }
      if (c.differs) ++differences;
    }
  }
  CHECK(cases == 145);      // robots_test.cc's IsUserAgentAllowed() calls, all of them
  CHECK(differences == 2);  // each one listed in docs/configuration.md
}

TEST_CASE("robots: Google's line counting, BOM and Sitemap cases", "[robots][google]") {
  for (const auto& c : test::google_parse_cases()) {
    DYNAMIC_SECTION(c.name) {
      auto r = Robots::parse(c.robots);
      CHECK(r.summary().directives == c.directives);
      CHECK(r.summary().unknown == c.unknown);
      if (c.last_line >= 0) CHECK(r.summary().last_line == c.last_line);
    }
  }
  // ID_NonStandardLineExample_Sitemap: a Sitemap line is read wherever it stands.
  const std::string groups = "User-Agent: foo\nAllow: /some/path\nUser-Agent: bar\n\n\n";
  const std::string sitemap = "Sitemap: http://foo.bar/sitemap.xml\n";
  for (const auto& body : {groups + sitemap, sitemap + groups}) {
    DYNAMIC_SECTION("ID_NonStandardLineExample_Sitemap: " << (body[0] == 'S' ? "first" : "last")) {
      CHECK(Robots::parse(body).sitemaps() ==
            std::vector<std::string>{"http://foo.bar/sitemap.xml"});
    }
  }
}

TEST_CASE("robots: Google's valid user agents are exactly their own product token",
          "[robots][google]") {
  // ID_VerifyValidUserAgentsToObey (and GoogleOnly_AcceptUserAgentUpToFirstSpace's
  // "Foobot Bar", the same case): a valid token is what product_token() keeps whole.
  for (const auto& c : test::google_token_cases()) {
    DYNAMIC_SECTION("ID_VerifyValidUserAgentsToObey: '" << c.agent << "'") {
      std::string token = Robots::product_token(c.agent);
      CHECK((!token.empty() && token == config::lower(c.agent)) == c.valid);
    }
  }
}

TEST_CASE("robots: Google's path extraction and pattern escaping, as the engine does them",
          "[robots][google]") {
  // TestGetPathParamsQuery: the engine asks with config::parse_url(url)->target. Its URLs are
  // absolute (checked when the config loads); the relative ones of Google's test never reach
  // it.
  const std::vector<std::pair<std::string, std::string>> absolute = {
      {"http://www.example.com", "/"},
      {"http://www.example.com/", "/"},
      {"http://www.example.com/a", "/a"},
      {"http://www.example.com/a/", "/a/"},
      {"http://www.example.com/a/b?c=http://d.e/", "/a/b?c=http://d.e/"},
      {"http://www.example.com/a/b?c=d&e=f#fragment", "/a/b?c=d&e=f"}};
  for (const auto& [url, path] : absolute) {
    DYNAMIC_SECTION("TestGetPathParamsQuery: " << url) {
      auto parsed = config::parse_url(url);
      REQUIRE(parsed);
      CHECK(parsed->target == path);
      CHECK(target_of(url) == path);
    }
  }
  for (const char* url : {"", "example.com", "example.com/", "example.com/a", "example.com/a/",
                          "example.com/a/b?c=d&e=f#fragment", "a", "a/", "/a", "a/b",
                          "example.com?a", "example.com/a;b#c", "//a/b/c"}) {
    DYNAMIC_SECTION("TestGetPathParamsQuery: '" << url << "' is no job URL") {
      CHECK_FALSE(config::parse_url(url));
    }
  }
  // TestMaybeEscapePattern: UTF-8 in a pattern is percent-encoded, hex digits upper-cased,
  // before it is compared with the (encoded) target.
  const std::vector<std::pair<std::string, std::string>> escaped = {
      {"/a/b/c", "/a/b/c"}, {"/\xC3\xA1", "/%C3%A1"}, {"/%aa", "/%AA"}};
  for (const auto& [pattern, target] : escaped) {
    DYNAMIC_SECTION("TestMaybeEscapePattern: " << pattern) {
      auto r = Robots::parse("User-agent: *\nDisallow: " + pattern + "\n");
      CHECK_FALSE(r.allowed(kAgent, target));
      CHECK(r.allowed(kAgent, "/x"));
    }
  }
  // "http://www.example.com" as a pattern: not a path, so the rule is skipped.
  CHECK(Robots::parse("User-agent: *\nDisallow: http://www.example.com\n").allowed(kAgent, "/"));
}

TEST_CASE("robots: RFC 9309's own examples", "[robots][rfc]") {
  SECTION("5.1, simple example") {
    auto r = Robots::parse(
        "User-Agent: *\n"
        "Disallow: *.gif$\n"
        "Disallow: /example/\n"
        "Allow: /publications/\n"
        "\n"
        "User-Agent: foobot\n"
        "Disallow:/\n"
        "Allow:/example/page.html\n"
        "Allow:/example/allowed.gif\n"
        "\n"
        "User-Agent: barbot\n"
        "User-Agent: bazbot\n"
        "Disallow: /example/page.html\n"
        "\n"
        "User-Agent: quxbot\n");
    CHECK(r.allowed("foobot", "/example/page.html"));
    CHECK(r.allowed("foobot", "/example/allowed.gif"));
    CHECK_FALSE(r.allowed("foobot", "/example/other.html"));
    CHECK_FALSE(r.allowed("foobot", "/"));
    for (const char* bot : {"barbot", "bazbot"}) {
      CHECK_FALSE(r.allowed(bot, "/example/page.html"));
      CHECK(r.allowed(bot, "/example/other.html"));
      CHECK(r.allowed(bot, "/a.gif"));
    }
    CHECK(r.allowed("quxbot", "/example/page.html"));
    CHECK(r.allowed("quxbot", "/a.gif"));
    CHECK_FALSE(r.allowed("otherbot", "/a.gif"));
    CHECK_FALSE(r.allowed("otherbot", "/example/x"));
    CHECK(r.allowed("otherbot", "/publications/x"));
    CHECK(r.allowed("otherbot", "/a.gif?x"));
  }
  SECTION("5.2, longest match") {
    auto r = Robots::parse(
        "User-Agent: foobot\n"
        "Allow: /example/page/\n"
        "Disallow: /example/page/disallowed.gif\n");
    CHECK(r.allowed("foobot", "/example/page/"));
    CHECK(r.allowed("foobot", "/example/page/other.gif"));
    CHECK_FALSE(r.allowed("foobot", "/example/page/disallowed.gif"));
  }
  SECTION("2.2.2, percent-encoding table") {
    const std::vector<std::pair<std::string, std::string>> rows = {
        {"/foo/bar?baz=https://foo.bar", "/foo/bar?baz=https://foo.bar"},
        {"/foo/bar/\xE3\x83\x84", "/foo/bar/%E3%83%84"},
        {"/foo/bar/%E3%83%84", "/foo/bar/%E3%83%84"},
        {"/foo/bar/%62%61%7A", "/foo/bar/baz"}};
    for (const auto& [path, to_match] : rows) {
      auto r = Robots::parse("User-agent: *\nDisallow: " + path + "$\n");
      CHECK_FALSE(r.allowed(kAgent, to_match));
      CHECK(r.allowed(kAgent, to_match + "x"));
    }
  }
  SECTION("2.2.3, special characters") {
    auto r = Robots::parse(
        "User-agent: *\n"
        "Disallow: / # comment in line\n"
        "# comment on its own line\n"
        "Allow: /this/path/exactly$\n"
        "Allow: /this/*/exactly\n");
    CHECK(r.allowed(kAgent, "/this/path/exactly"));
    CHECK(r.allowed(kAgent, "/this/a/b/exactly"));
    CHECK_FALSE(r.allowed(kAgent, "/this/path/exactl"));
    CHECK_FALSE(r.allowed(kAgent, "/that"));
  }
  SECTION("2.2.4, other records do not end a group") {
    for (const char* other :
         {"Sitemap: https://example.com/sitemap.xml", "Crawl-delay: 1", "Unknown: x", ""}) {
      auto r = Robots::parse(std::string("User-agent: scraperd\n") + other +
                             "\nUser-agent: otherbot\nDisallow: /private\n");
      CHECK_FALSE(r.allowed(kAgent, "/private"));
      CHECK_FALSE(r.allowed("otherbot/2", "/private"));
      CHECK(r.allowed(kAgent, "/public"));
    }
  }
}

TEST_CASE("robots: Google's leniencies where the RFC is silent", "[robots]") {
  SECTION("a missing colon, two words only") {
    auto r = Robots::parse("User-agent scraperd\nDisallow /a\nDisallow /b /c\n");
    CHECK_FALSE(r.allowed(kAgent, "/a"));
    CHECK(r.allowed(kAgent, "/b"));
  }
  SECTION("keys by their start, and common misspellings") {
    auto r = Robots::parse(
        "useragent: scraperd\n"
        "Dissallow: /a\n"
        "disalow: /b\n"
        "Disallow-this: /c\n"
        "Site-map: https://example.com/s.xml\n");
    CHECK_FALSE(r.allowed(kAgent, "/a"));
    CHECK_FALSE(r.allowed(kAgent, "/b"));
    CHECK_FALSE(r.allowed(kAgent, "/c"));
    CHECK(r.allowed(kAgent, "/d"));
    CHECK(r.sitemaps() == std::vector<std::string>{"https://example.com/s.xml"});
  }
  SECTION("'* words' is everyone, '*bot' is nobody") {
    CHECK_FALSE(Robots::parse("User-agent: * all of you\nDisallow: /\n").allowed(kAgent, "/"));
    CHECK(Robots::parse("User-agent: *bot\nDisallow: /\n").allowed(kAgent, "/"));
  }
  SECTION("allowing index.htm or index.html allows its directory") {
    auto r = Robots::parse("User-agent: *\nDisallow: /\nAllow: /d/index.htm\n");
    CHECK(r.allowed(kAgent, "/d/"));
    CHECK(r.allowed(kAgent, "/d/index.htm"));
    CHECK_FALSE(r.allowed(kAgent, "/d/other"));
  }
}

TEST_CASE("robots: a body over the bound is parsed up to its last whole line", "[robots]") {
  std::string head = "User-agent: *\nDisallow: /early\n";
  std::string body = head;
  while (body.size() < Robots::kMaxBytes - 20) body += "# filler line\n";
  body += "Disallow: /cut-in-the-middle-of-this-line\n";  // crosses kMaxBytes
  body += "Disallow: /late\n";
  REQUIRE(body.size() > Robots::kMaxBytes);
  auto r = Robots::parse(body);
  CHECK(r.summary().cut);
  CHECK(r.summary().bytes <= Robots::kMaxBytes);
  CHECK_FALSE(r.allowed(kAgent, "/early"));
  CHECK(r.allowed(kAgent, "/cut"));  // no "Disallow: /cut" from the cut line
  CHECK(r.allowed(kAgent, "/cut-in-the-middle-of-this-line"));
  CHECK(r.allowed(kAgent, "/late"));
  auto whole = Robots::parse(head);
  CHECK_FALSE(whole.summary().cut);
  CHECK(whole.summary().bytes == head.size());
}

// End to end: the engine reads robots.txt from a real server and obeys it.

TEST_CASE("engine: a Sitemap line between two User-agent lines leaves one group",
          "[engine][robots]") {
  test::HttpServer srv;
  srv.server().Get("/robots.txt", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("User-agent: scraperd\nSitemap: " + srv.url("/sitemap.xml") +
                        "\nUser-agent: otherbot\nDisallow: /private\n",
                    "text/plain");
  });
  srv.server().Get(R"(/(public|private))", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("robots.db");
  auto config = load("jobs:\n  - name: site\n    every: 1h\n    urls: ['" + srv.url("/public") +
                     "', '" + srv.url("/private") + "']\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 3);  // some URLs failed
  CHECK(test::sql1(db, "SELECT group_concat(url) FROM results") == srv.url("/public"));
  CHECK(test::sql1(db, "SELECT count(*) FROM errors") == "1");
  CHECK(test::sql1(db, "SELECT url || ' ' || kind FROM errors") == srv.url("/private") + " robots");
}

TEST_CASE("engine: a robots.txt over the bound is parsed up to it, the host not refused",
          "[engine][robots]") {
  std::atomic<int> reads = 0;
  std::string body = "User-agent: *\nDisallow: /private\n";
  while (body.size() < 3 * 1024 * 1024) body += "# a long file of comments, 3 MiB in all\n";
  body += "Disallow: /late\n";
  test::HttpServer srv;
  srv.server().Get("/robots.txt", [&](const httplib::Request&, httplib::Response& res) {
    ++reads;
    res.set_content(body, "text/plain");
  });
  srv.server().Get(
      R"(/(public|private|late))",
      [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("robots.db");
  auto config = load("jobs:\n  - name: site\n    every: 1h\n    urls: ['" + srv.url("/public") +
                     "', '" + srv.url("/private") + "', '" + srv.url("/late") + "']\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 3);  // some URLs failed
  CHECK(reads == 1);
  CHECK(test::sql1(db, "SELECT count(*) FROM results") == "2");  // /public, and /late
  CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE url = '" + srv.url("/late") + "'") ==
        "1");
  CHECK(test::sql1(db, "SELECT count(*) FROM errors") == "1");
  CHECK(test::sql1(db, "SELECT url || ' ' || kind FROM errors") == srv.url("/private") + " robots");
}

TEST_CASE("engine: a robots.txt read that fails is retried as the job's retries say",
          "[engine][robots]") {
  std::atomic<int> flaky_reads = 0, broken_reads = 0;
  test::HttpServer flaky, broken;
  flaky.server().Get("/robots.txt", [&](const httplib::Request&, httplib::Response& res) {
    if (++flaky_reads == 1) return break_off(res);
    res.set_content("User-agent: *\nDisallow: /private\n", "text/plain");
  });
  broken.server().Get("/robots.txt", [&](const httplib::Request&, httplib::Response& res) {
    ++broken_reads;
    break_off(res);
  });
  for (auto* srv : {&flaky, &broken}) {
    srv->server().Get(R"(/(public|private|\d))",
                      [](const httplib::Request&, httplib::Response& res) {
                        res.set_content("ok", "text/plain");
                      });
    srv->start();
  }
  test::TempDir dir;
  auto db = dir.file("robots.db");
  auto config = load(
      "defaults: {retries: {max: 2, backoff: 10ms}}\n"
      "jobs:\n"
      "  - name: flaky\n    every: 1h\n    urls: ['" +
      flaky.url("/public") + "', '" + flaky.url("/private") +
      "']\n"
      "  - name: broken\n    every: 1h\n    urls: ['" +
      broken.url("/{1..4}") + "']\n");
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  auto logger = std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  logger->set_pattern("%l %v");
  spdlog::set_default_logger(logger);
  int rc = daemon::run(config, {.db_path = db, .once = true});
  spdlog::set_default_logger(previous);
  REQUIRE(rc == 3);  // some URLs failed

  // One failed read, then the rules: obeyed.
  CHECK(flaky_reads == 2);
  CHECK(test::sql1(db, "SELECT url FROM results WHERE job = 'flaky'") == flaky.url("/public"));
  CHECK(test::sql1(db, "SELECT url || ' ' || kind FROM errors WHERE job = 'flaky'") ==
        flaky.url("/private") + " robots");
  // Never readable: three tries (max: 2) for four URLs, each URL an error row of the
  // failure's kind, and one warning for the origin, not one per URL.
  CHECK(broken_reads == 3);
  CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE job = 'broken'") == "0");
  auto errors = test::sql(db, "SELECT kind, message FROM errors WHERE job = 'broken'");
  CHECK(errors.size() == 4);
  for (const auto& e : errors) {
    CHECK(e.at("kind") == "read");
    CHECK_THAT(e.at("message"), Catch::Contains("(reading robots.txt)"));
  }
  std::istringstream lines(log.str());
  int warnings = 0;
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("warning ", 0) == 0 && line.find(broken.url("/")) != std::string::npos &&
        line.find("robots.txt is unreachable") != std::string::npos)
      ++warnings;
  CHECK(warnings == 1);
}

TEST_CASE("engine: robots.txt behind five redirects is obeyed, behind six allows all",
          "[engine][robots]") {
  test::HttpServer five, six;
  for (const auto& [srv, redirects] : {std::pair{&five, 5}, std::pair{&six, 6}}) {
    const int hops = redirects;
    srv->server().Get("/robots.txt", [](const httplib::Request&, httplib::Response& res) {
      res.set_redirect("/hop/1");
    });
    srv->server().Get(R"(/hop/(\d+))", [hops](const httplib::Request& req, httplib::Response& res) {
      int n = std::stoi(req.matches[1]);
      if (n < hops)
        res.set_redirect("/hop/" + std::to_string(n + 1));
      else
        res.set_content("User-agent: *\nDisallow: /\n", "text/plain");
    });
    srv->server().Get("/page", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok", "text/plain");
    });
    srv->start();
  }
  test::TempDir dir;
  auto db = dir.file("robots.db");
  auto config = load("jobs:\n  - name: five\n    every: 1h\n    url: '" + five.url("/page") +
                     "'\n  - name: six\n    every: 1h\n    url: '" + six.url("/page") + "'\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 3);  // some URLs failed
  CHECK(test::sql1(db, "SELECT kind FROM errors WHERE job = 'five'") == "robots");
  CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE job = 'five'") == "0");
  // RFC 9309 2.3.1.2: more than five redirects, the robots.txt is unavailable: all allowed.
  CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE job = 'six'") == "1");
  CHECK(test::sql1(db, "SELECT count(*) FROM errors WHERE job = 'six'") == "0");
}
