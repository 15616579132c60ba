// The engine against servers that push back: retries, Retry-After, conditional GET, shutdown.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "daemon/extract/extract.h"
#include "daemon/service/service.h"
#include "tests/support/http_server.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

std::shared_ptr<const config::Config> load(const std::string& yaml) {
  auto r = config::load_string(yaml, "test.yaml");
  for (const auto& e : r.errors) FAIL(e.str());
  return r.config;
}

// Arrival times of requests, per path, as the server saw them.
struct Arrivals {
  std::mutex mu;
  std::map<std::string, std::vector<SteadyClock::time_point>> at;
  int add(const std::string& path) {
    std::lock_guard lock(mu);
    at[path].push_back(SteadyClock::now());
    return static_cast<int>(at[path].size());
  }
  std::vector<SteadyClock::time_point> of(const std::string& path) {
    std::lock_guard lock(mu);
    return at[path];
  }
};

}  // namespace

TEST_CASE("transient failures are retried with backoff, and every attempt is a row",
          "[engine][retry]") {
  Arrivals seen;
  test::HttpServer srv;
  srv.server().Get("/flaky", [&](const httplib::Request& req, httplib::Response& res) {
    if (seen.add(req.path) <= 2) {
      res.status = 503;  // no Retry-After: an ordinary retryable status
      return;
    }
    res.set_content("finally", "text/plain");
  });
  srv.server().Get("/broken", [&](const httplib::Request& req, httplib::Response& res) {
    seen.add(req.path);
    res.status = 500;
  });
  srv.server().Get("/missing", [&](const httplib::Request& req, httplib::Response& res) {
    seen.add(req.path);
    res.status = 404;
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("r.db");
  auto config = load("jobs:\n  - name: r\n    every: 1h\n    urls: ['" + srv.url("/flaky") +
                     "', '" + srv.url("/broken") + "', '" + srv.url("/missing") +
                     "']\n    retries: {max: 3, backoff: 100ms, max_backoff: 200ms}\n"
                     "    per_host: {rate: 100/s, burst: 10}\n");
  auto start = SteadyClock::now();
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 3);  // some fail for good
  CHECK(SteadyClock::now() - start < 5s);  // backoffs are at most 100 + 200 + 200 ms

  CHECK(seen.of("/flaky").size() == 3);
  CHECK(seen.of("/broken").size() == 4);   // the first try and three retries
  CHECK(seen.of("/missing").size() == 1);  // 404 is not in on_status
  CHECK(test::sql1(db, "SELECT group_concat(status) FROM results") == "200");
  CHECK(test::sql1(db,
                   "SELECT group_concat(attempt, ',') FROM (SELECT attempt FROM errors "
                   "WHERE url LIKE '%/flaky' ORDER BY attempt)") == "1,2");
  CHECK(test::sql1(db,
                   "SELECT group_concat(attempt, ',') FROM (SELECT attempt FROM errors "
                   "WHERE url LIKE '%/broken' ORDER BY attempt)") == "1,2,3,4");
  CHECK_THAT(test::sql1(db, "SELECT message FROM errors WHERE url LIKE '%/broken' AND attempt = 2"),
             Catch::Contains("retry 2 of 3"));
  CHECK(test::sql1(db, "SELECT message FROM errors WHERE url LIKE '%/broken' AND attempt = 4") ==
        "HTTP status 500");
  // The run counts URLs, not attempts.
  CHECK(test::sql1(db, "SELECT status || ' ' || ok || ' ' || failed FROM runs") == "partial 1 2");
}

TEST_CASE("429 with Retry-After pauses that host, not others, without using a retry",
          "[engine][retry]") {
  Arrivals seen;
  test::HttpServer busy, calm;
  busy.server().new_task_queue = [] { return new httplib::ThreadPool(8); };
  busy.server().Get(R"(/b/(\d+))", [&](const httplib::Request&, httplib::Response& res) {
    if (seen.add("busy") == 1) {
      res.status = 429;
      res.set_header("Retry-After", "1");
      return;
    }
    res.set_content("ok", "text/plain");
  });
  calm.server().Get(R"(/c/(\d+))", [&](const httplib::Request&, httplib::Response& res) {
    seen.add("calm");
    res.set_content("ok", "text/plain");
  });
  busy.start();
  calm.start();
  test::TempDir dir;
  auto db = dir.file("p.db");
  // One at a time per host, so the 429 comes back before the host's other requests start.
  auto config = load("jobs:\n  - name: busy\n    every: 1h\n    urls: ['" + busy.url("/b/{1..3}") +
                     "']\n    retries: {max: 0}\n    per_host: {rate: 100/s, concurrency: 1}\n"
                     "  - name: calm\n    every: 1h\n    urls: ['" +
                     calm.url("/c/{1..3}") + "']\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);

  auto b = seen.of("busy");
  auto c = seen.of("calm");
  REQUIRE(b.size() == 4);  // three URLs, one of them twice
  REQUIRE(c.size() == 3);
  // Nothing went to the busy host during its pause (generous lower bound: 1 s asked).
  CHECK(b[1] - b[0] >= 900ms);
  // The calm host was not held up by it.
  for (auto t : c) CHECK(t - b[0] < 800ms);
  // With retries.max 0, the 429 was still retried: the pause is not a retry.
  CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE job = 'busy'") == "3");
  auto e = test::sql(db, "SELECT * FROM errors");
  REQUIRE(e.size() == 1);
  CHECK(e[0]["status"] == "429");
  CHECK_THAT(e[0]["message"], Catch::Contains("Retry-After") && Catch::Contains("paused for 1s"));
}

TEST_CASE("a Retry-After longer than max_stall, or garbage, is not obeyed", "[engine][retry]") {
  test::HttpServer srv;
  std::atomic<int> hits{0};
  srv.server().Get("/long", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    res.status = 503;
    res.set_header("Retry-After", "3600");
  });
  srv.server().Get("/garbage", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    res.status = 429;
    res.set_header("Retry-After", "whenever");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("s.db");
  auto config = load("jobs:\n  - name: s\n    every: 1h\n    urls: ['" + srv.url("/long") + "', '" +
                     srv.url("/garbage") +
                     "']\n    retries: {max: 0, max_stall: 1m}\n    per_host: {rate: 100/s}\n");
  auto start = SteadyClock::now();
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 3);  // not retried: failed
  CHECK(SteadyClock::now() - start < 10s);
  CHECK(hits == 2);
  CHECK_THAT(test::sql1(db, "SELECT message FROM errors WHERE url LIKE '%/long'"),
             Catch::Contains("past 60s (retries.max_stall)"));
  CHECK_THAT(test::sql1(db, "SELECT message FROM errors WHERE url LIKE '%/garbage'"),
             Catch::Contains("'whenever' is not seconds or a date: ignored"));
}

TEST_CASE("a conditional GET sends the stored validators, and a 304 is a result", "[engine]") {
  std::mutex mu;
  std::vector<std::string> conditions;
  test::HttpServer srv;
  srv.server().Get("/page", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lock(mu);
      conditions.push_back(req.get_header_value("If-None-Match") + "|" +
                           req.get_header_value("If-Modified-Since"));
    }
    if (req.get_header_value("If-None-Match") == "\"v1\"") {
      res.status = 304;
      return;
    }
    res.set_header("ETag", "\"v1\"");
    res.set_header("Last-Modified", "Wed, 21 Oct 2026 07:28:00 GMT");
    res.set_content("page", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("c.db");
  auto config = load("jobs:\n  - {name: c, every: 1h, url: '" + srv.url("/page") + "'}\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);  // a restart between runs

  REQUIRE(conditions.size() == 2);
  CHECK(conditions[0] == "|");
  CHECK(conditions[1] == "\"v1\"|Wed, 21 Oct 2026 07:28:00 GMT");
  CHECK(test::sql1(db,
                   "SELECT group_concat(status || ':' || bytes, ' ') FROM "
                   "(SELECT * FROM results ORDER BY id)") == "200:4 304:0");
  CHECK(test::sql1(db, "SELECT etag FROM url_state") == "\"v1\"");
}

TEST_CASE("SIGTERM: sent requests finish, queued ones end as cancelled rows", "[engine]") {
  std::atomic<int> hits{0};
  test::HttpServer srv;
  srv.server().Get(R"(/q/(\d+))", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    std::this_thread::sleep_for(300ms);
    res.set_content("ok", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("t.db");
  // One request per second to this host: 20 URLs would take 20 s.
  auto config = load("jobs:\n  - name: q\n    every: 1h\n    urls: ['" + srv.url("/q/{1..20}") +
                     "']\n    per_host: {rate: 1/s, burst: 1, concurrency: 1}\n");
  std::thread killer([&] {
    while (hits == 0) std::this_thread::sleep_for(5ms);
    ::kill(::getpid(), SIGTERM);  // the engine's signal_set is installed before any fetch
  });
  auto start = SteadyClock::now();
  int rc = daemon::run(config, {.db_path = db, .once = true});
  killer.join();
  CHECK(rc == 3);  // stopped cleanly; the URLs never sent count as failed (cancelled)
  CHECK(SteadyClock::now() - start < 5s);
  int sent = hits;
  CHECK(sent >= 1);
  CHECK(sent <= 3);
  // Every URL has exactly one final row: a result for the sent ones, cancelled for the rest.
  CHECK(test::sql1(db, "SELECT count(*) FROM results") == std::to_string(sent));
  CHECK(test::sql1(db, "SELECT count(*) FROM errors WHERE kind = 'cancelled'") ==
        std::to_string(20 - sent));
  CHECK(test::sql1(db, "SELECT status FROM runs") == "cancelled");
}

TEST_CASE("robots.txt is read once per host and obeyed, Crawl-delay spaces requests",
          "[engine][robots]") {
  Arrivals seen;
  test::HttpServer srv, broken, plain;
  srv.server().new_task_queue = [] { return new httplib::ThreadPool(8); };
  srv.server().Get("/robots.txt", [&](const httplib::Request& req, httplib::Response& res) {
    seen.add(req.path);
    res.set_content(
        "User-agent: *\nDisallow: /\n\n"
        "User-agent: scraperd\nDisallow: /private\nAllow: /private/ok\nCrawl-delay: 0.3\n",
        "text/plain");
  });
  srv.server().Get(R"(/(public|private)/(\w+))",
                   [&](const httplib::Request& req, httplib::Response& res) {
                     seen.add(req.matches[1]);
                     res.set_content("ok", "text/plain");
                   });
  broken.server().Get("/robots.txt",
                      [](const httplib::Request&, httplib::Response& res) { res.status = 503; });
  broken.server().Get("/page", [&](const httplib::Request&, httplib::Response& res) {
    seen.add("broken");
    res.set_content("ok", "text/plain");
  });
  plain.server().Get("/page", [&](const httplib::Request&, httplib::Response& res) {
    seen.add("plain");  // no robots.txt here: a 404, which allows everything
    res.set_content("ok", "text/plain");
  });
  srv.start();
  broken.start();
  plain.start();
  test::TempDir dir;
  auto db = dir.file("robots.db");
  auto config = load(
      "defaults: {per_host: {rate: 100/s, burst: 10, concurrency: 4}, retries: {max: 0}}\n"
      "jobs:\n"
      "  - name: site\n    every: 1h\n    urls: ['" +
      srv.url("/public/{1..4}") + "', '" + srv.url("/private/secret") + "', '" +
      srv.url("/private/ok") +
      "']\n"
      "  - name: broken\n    every: 1h\n    url: '" +
      broken.url("/page") +
      "'\n"
      "  - name: rude\n    every: 1h\n    robots: ignore\n    url: '" +
      broken.url("/page") +
      "'\n"
      "  - name: plain\n    every: 1h\n    url: '" +
      plain.url("/page") + "'\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 3);  // refusals are failures

  CHECK(seen.of("/robots.txt").size() == 1);  // six URLs, one read of robots.txt
  CHECK(seen.of("public").size() == 4);
  CHECK(seen.of("private").size() == 1);  // /private/ok only
  // Crawl-delay 0.3 s: five requests to the host after robots.txt, ≥ 0.3 s apart.
  std::vector<SteadyClock::time_point> pages = seen.of("public");
  for (auto t : seen.of("private")) pages.push_back(t);
  std::sort(pages.begin(), pages.end());
  for (size_t i = 1; i < pages.size(); ++i) CHECK(pages[i] - pages[i - 1] >= 250ms);

  auto refused = test::sql(db, "SELECT * FROM errors WHERE job = 'site'");
  REQUIRE(refused.size() == 1);
  CHECK(refused[0]["kind"] == "robots");
  CHECK(refused[0]["url"] == srv.url("/private/secret"));
  CHECK_THAT(refused[0]["message"],
             Catch::Contains("disallowed by") && Catch::Contains("for 'scraperd'"));
  // A robots.txt answering 503 disallows the whole host; `robots: ignore` skips the check.
  CHECK(seen.of("broken").size() == 1);
  CHECK(test::sql1(db, "SELECT kind FROM errors WHERE job = 'broken'") == "robots");
  CHECK_THAT(test::sql1(db, "SELECT message FROM errors WHERE job = 'broken'"),
             Catch::Contains("answered HTTP status 503"));
  CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE job = 'rude'") == "1");
  CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE job = 'plain'") == "1");
}

TEST_CASE("follow: links are fetched once each, within max_depth and max_pages",
          "[engine][follow]") {
  std::mutex mu;
  std::map<std::string, int> hits;
  test::HttpServer srv;
  srv.server().new_task_queue = [] { return new httplib::ThreadPool(8); };
  std::map<std::string, std::string> site = {
      {"/index", "<a href='/a'>a</a><a href='b'>b</a><a href='/c#top'>c</a>"},
      {"/a", "<a href='/a/1'>1</a> <a href='/a/2'>2</a> <a href='/index'>home</a>"},
      {"/a/1", "<a href='/a/1/x'>too deep</a>"},
      {"/a/2", "no links"},
      {"/b",
       "<a href='/index'>home</a><a href='/b#frag'>me</a><a href='/doc.pdf'>pdf</a>"
       "<a href='http://elsewhere.invalid/x'>away</a><a href='mailto:x@y'>mail</a>"},
      {"/c", "<a href='/a'>a again</a>"},
  };
  for (const auto& [path, html] : site) {
    std::string body = "<html><body>" + html + "</body></html>";
    srv.server().Get(path, [&, body](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mu);
        ++hits[req.path];
      }
      res.set_content(body, "text/html; charset=utf-8");
    });
  }
  srv.server().Get("/big", [&](const httplib::Request&, httplib::Response& res) {
    std::string html = "<html><body>";
    for (int i = 0; i < 100'000; ++i) html += "<a href='/n/" + std::to_string(i) + "'>n</a>";
    res.set_content(html, "text/html");
  });
  srv.server().Get(R"(/n/(\d+))", [&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu);
    ++hits["/n"];
    res.set_content("leaf", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("f.db");
  auto config = load(
      "defaults: {per_host: {rate: 1000/s, burst: 100, concurrency: 8}}\n"
      "jobs:\n"
      "  - name: crawl\n    every: 1h\n    url: '" +
      srv.url("/index") +
      "'\n    follow: {css: 'a[href]', max_depth: 2, deny: ['\\.pdf$']}\n"
      "  - name: capped\n    every: 1h\n    url: '" +
      srv.url("/big") + "'\n    follow: {max_pages: 20}\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);

  // Depth 0: /index; 1: /a /b /c; 2: /a/1 /a/2. Not /a/1/x (depth 3), not the pdf, not
  // other hosts, and nothing twice although /index and /a are linked from several pages.
  std::map<std::string, int> expected = {{"/index", 1}, {"/a", 1},   {"/b", 1},
                                         {"/c", 1},     {"/a/1", 1}, {"/a/2", 1}};
  std::map<std::string, int> crawled;
  for (const auto& [path, n] : hits)
    if (path != "/n") crawled[path] = n;
  CHECK(crawled == expected);
  CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE job = 'crawl'") == "6");
  CHECK(test::sql1(db, "SELECT urls || ' ' || ok || ' ' || status FROM runs WHERE job = 'crawl'") ==
        "6 6 ok");
  // 100,000 links, max_pages 20: the page itself and 19 of its links.
  CHECK(hits["/n"] == 19);
  CHECK(test::sql1(db, "SELECT urls FROM runs WHERE job = 'capped'") == "20");
}

TEST_CASE("a run of 3000 URLs starts them a window at a time and fetches every one", "[engine]") {
  std::atomic<int> hits{0};
  test::HttpServer srv;
  srv.server().new_task_queue = [] { return new httplib::ThreadPool(4); };
  srv.server().Get(R"(/u/(\d+))", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    res.set_content("u", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("w.db");
  auto config = load("concurrency: 4\njobs:\n  - name: wide\n    every: 1h\n    url: '" +
                     srv.url("/u/{1..3000}") +
                     "'\n    per_host: {rate: 100000/s, burst: 1000, concurrency: 4}\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  CHECK(hits == 3000);
  CHECK(test::sql1(db, "SELECT count(DISTINCT url) FROM results") == "3000");
  CHECK(test::sql1(db, "SELECT urls || ' ' || ok || ' ' || status FROM runs") == "3000 3000 ok");
}

TEST_CASE("the global concurrency cap holds across hosts", "[engine][frontier]") {
  std::atomic<int> in_flight{0}, peak{0};
  auto slow = [&](const httplib::Request&, httplib::Response& res) {
    int now = ++in_flight;
    for (int p = peak.load(); now > p && !peak.compare_exchange_weak(p, now);) {
    }
    std::this_thread::sleep_for(50ms);
    --in_flight;
    res.set_content("ok", "text/plain");
  };
  test::HttpServer one, two;
  for (auto* srv : {&one, &two}) {
    srv->server().new_task_queue = [] { return new httplib::ThreadPool(8); };
    srv->server().Get(R"(/s/(\d+))", slow);
    srv->start();
  }
  test::TempDir dir;
  auto db = dir.file("g.db");
  // Each host may take 3 at once; both together only 3 (the global cap).
  auto config = load(
      "concurrency: 3\n"
      "defaults: {per_host: {rate: 1000/s, burst: 100, concurrency: 3}, robots: ignore}\n"
      "jobs:\n  - {name: one, every: 1h, url: '" +
      one.url("/s/{1..12}") + "'}\n  - {name: two, every: 1h, url: '" + two.url("/s/{1..12}") +
      "'}\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  CHECK(test::sql1(db, "SELECT count(*) FROM results") == "24");
  CHECK(peak.load() <= 3);
  CHECK(peak.load() >= 2);
}

TEST_CASE("change detection: fields stored as JSON, changed flags, store on_change",
          "[engine][extract]") {
  std::mutex mu;
  std::string price = "10.00";
  int counter = 0;
  test::HttpServer srv;
  srv.server().Get("/item", [&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu);
    // The visit counter changes every time, the price only when the test says: fields, not
    // bytes, decide what changed.
    res.set_content(
        "<h1>Widget</h1><p class=price>" + price + "</p><i>" + std::to_string(++counter) + "</i>",
        "text/html");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("c.db");
  auto config = load(
      "defaults: {robots: ignore}\njobs:\n"
      "  - name: all\n    every: 1h\n    url: '" +
      srv.url("/item") +
      "'\n    extract: {name: h1, price: {css: .price, type: number}}\n"
      "  - name: quiet\n    every: 1h\n    url: '" +
      srv.url("/item") +
      "'\n    store: on_change\n    extract: {price: {css: .price, type: number}}\n"
      "  - name: bytes\n    every: 1h\n    url: '" +
      srv.url("/item") + "'\n");
  for (auto p : {"10.00", "10.00", "12.50"}) {
    {
      std::lock_guard lock(mu);
      price = p;
    }
    REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  }
  CHECK(test::sql1(db,
                   "SELECT group_concat(changed, ',') FROM (SELECT changed FROM results "
                   "WHERE job = 'all' ORDER BY id)") == "1,0,1");
  CHECK(test::sql1(db,
                   "SELECT group_concat(json_extract(data, '$.price'), ',') FROM (SELECT "
                   "data FROM results WHERE job = 'all' ORDER BY id)") == "10.0,10.0,12.5");
  CHECK(test::sql1(db, "SELECT data FROM results WHERE job = 'all' LIMIT 1") ==
        "{\"name\":\"Widget\",\"price\":10.0}");
  // on_change: the unchanged second fetch left no row, but its run counted it as fetched.
  CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE job = 'quiet'") == "2");
  CHECK(test::sql1(db,
                   "SELECT group_concat(ok, ',') FROM (SELECT ok FROM runs WHERE job = "
                   "'quiet' ORDER BY id)") == "1,1,1");
  // No fields: the body's hash decides, and the counter changes it every time.
  CHECK(test::sql1(db,
                   "SELECT group_concat(changed, ',') FROM (SELECT changed FROM results "
                   "WHERE job = 'bytes' ORDER BY id)") == "1,1,1");
  CHECK(test::sql1(db, "SELECT count(*) FROM changes WHERE job = 'all'") == "2");
  CHECK(test::sql1(db,
                   "SELECT content_hash = (SELECT content_hash FROM results WHERE job = "
                   "'all' ORDER BY id DESC LIMIT 1) FROM url_state WHERE job = 'all'") == "1");
}

// A page without fields is its body: hashed on the loop when small, on the CPU pool when large
// (a megabyte takes ~1 ms), to the same hash either way, so a body moving past the threshold
// is not news, and a changed byte anywhere in a large body is.
TEST_CASE("change detection on bodies: small and large, the same hash wherever it is computed",
          "[engine][extract]") {
  std::mutex mu;
  std::string body = std::string(200, 'a');
  test::HttpServer srv;
  srv.server().Get("/doc", [&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu);
    res.set_content(body, "application/octet-stream");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("h.db");
  auto config = load("defaults: {robots: ignore}\njobs:\n  - name: doc\n    every: 1h\n    url: '" +
                     srv.url("/doc") + "'\n");
  std::string large = std::string(300'000, 'b');
  std::string large_changed = large;
  large_changed[150'000] = 'c';
  const std::vector<std::string> bodies{std::string(200, 'a'), std::string(200, 'a'), large, large,
                                        large_changed};
  for (const auto& b : bodies) {
    {
      std::lock_guard lock(mu);
      body = b;
    }
    REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  }
  CHECK(test::sql1(db,
                   "SELECT group_concat(changed, ',') FROM (SELECT changed FROM results "
                   "ORDER BY id)") == "1,0,1,0,1");
  std::string hashes;
  for (const auto& b : bodies) hashes += (hashes.empty() ? "" : ",") + daemon::content_hash(b);
  CHECK(test::sql1(db,
                   "SELECT group_concat(content_hash, ',') FROM (SELECT content_hash FROM "
                   "results ORDER BY id)") == hashes);
}

// fetched_at is when the request went out: the pages of a host held to 2/s are stamped half a
// second apart, as the server saw them, not all at the moment they were queued.
TEST_CASE("fetched_at is when the request went out, after the wait for its host",
          "[engine][frontier]") {
  test::HttpServer srv;
  srv.server().Get(R"(/p/(\d+))", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok", "text/plain");
  });
  srv.start();
  test::TempDir dir;
  auto db = dir.file("t.db");
  auto config =
      load("defaults: {robots: ignore}\njobs:\n  - name: paced\n    every: 1h\n    url: '" +
           srv.url("/p/{1..4}") + "'\n    per_host: {rate: 2/s, burst: 1}\n");
  REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == 0);
  REQUIRE(test::sql1(db, "SELECT count(*) FROM results") == "4");
  // 4 requests at 2/s, burst 1: the last goes out >= 1.5 s after the first.
  const double spread = std::stod(test::sql1(
      db, "SELECT (julianday(max(fetched_at)) - julianday(min(fetched_at))) * 86400 FROM results"));
  CHECK(spread >= 1.4);
}

TEST_CASE("notify: a webhook hears of changes and of a failing streak and its end",
          "[engine][notify]") {
  std::mutex mu;
  std::string price = "10";
  bool down = false;
  std::vector<nlohmann::json> events;
  test::HttpServer site, hooks;
  site.server().Get("/item", [&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu);
    if (down) {
      res.status = 500;
      return;
    }
    res.set_content("<p class=price>" + price + "</p>", "text/html");
  });
  hooks.server().Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    CHECK(req.get_header_value("Content-Type") == "application/json");
    events.push_back(nlohmann::json::parse(req.body));
    res.status = 204;
  });
  hooks.server().Post("/broken",
                      [](const httplib::Request&, httplib::Response& res) { res.status = 500; });
  site.start();
  hooks.start();
  test::TempDir dir;
  auto db = dir.file("n.db");
  auto config = load(
      "defaults: {robots: ignore, retries: {max: 0}}\njobs:\n"
      "  - name: watch\n    every: 1h\n    url: '" +
      site.url("/item") +
      "'\n    extract: {price: {css: .price, type: int}}\n"
      "    notify: {webhook: '" +
      hooks.url("/hook") +
      "', failing_streak: 2}\n"
      "  - name: unheard\n    every: 1h\n    url: '" +
      site.url("/item") + "'\n    extract: {price: .price}\n    notify: '" + hooks.url("/broken") +
      "'\n");
  auto run_with = [&](const std::string& p, bool failing) {
    {
      std::lock_guard lock(mu);
      price = p;
      down = failing;
    }
    REQUIRE(daemon::run(config, {.db_path = db, .once = true}) == (failing ? 3 : 0));
  };
  run_with("10", false);  // first sight: nothing to report
  run_with("10", false);  // unchanged
  run_with("12", false);  // a change
  run_with("12", true);   // failing 1
  run_with("12", true);   // failing 2: the streak is reported
  run_with("12", true);   // failing 3: not again
  run_with("12", false);  // recovered

  std::lock_guard lock(mu);
  REQUIRE(events.size() == 3);
  CHECK(events[0]["event"] == "change");
  CHECK(events[0]["job"] == "watch");
  CHECK(events[0]["url"] == site.url("/item"));
  CHECK(events[0]["previous"] == nlohmann::json({{"price", 10}}));
  CHECK(events[0]["current"] == nlohmann::json({{"price", 12}}));
  CHECK_THAT(events[0]["time"].get<std::string>(), Catch::EndsWith("Z"));
  CHECK(events[1]["event"] == "failing");
  CHECK(events[1]["failed_runs"] == 2);
  CHECK(events[2]["event"] == "recovered");
  // The webhook that answers 500: an error row per failed delivery, nothing else breaks.
  auto e = test::sql(db, "SELECT * FROM errors WHERE url = '" + hooks.url("/broken") + "'");
  REQUIRE(e.size() == 1);  // one change of 'unheard' (10 → 12)
  CHECK(e[0]["kind"] == "http");
  CHECK(e[0]["status"] == "500");
  CHECK_THAT(e[0]["message"], Catch::StartsWith("webhook: HTTP status 500"));
}
