// render: chromium (daemon/render/): pages whose content exists only after their scripts ran,
// loaded in Debian's real Chromium (/usr/bin/chromium) over CDP on a pipe, from real pages
// served on 127.0.0.1. Labelled `browser` in ctest (slow; not run under the sanitizers).
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "daemon/crawl/fetch.h"
#include "daemon/render/pace.h"
#include "daemon/render/render.h"
#include "tests/support/http_server.h"
#include "tests/support/process.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

namespace daemon_ = scraperd::daemon;
namespace render = scraperd::daemon::render;
namespace config = scraperd::config;
namespace test = scraperd::test;
using namespace std::chrono_literals;

namespace {

// The pages: each one's content is written by its script.
struct Site {
  test::HttpServer http;
  std::atomic<int> slow_started{0};
  std::mutex lock;
  std::vector<std::chrono::steady_clock::time_point> rated;  // arrivals at /rated/N

  Site() {
    auto& s = http.server();
    s.Get("/price", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "<!doctype html><html><body><h1>Shop</h1><div id=app></div><script>"
          "fetch('/api/price').then(r => r.json()).then(d => {"
          "  const s = document.createElement('span'); s.id = 'price';"
          "  s.textContent = d.price; document.getElementById('app').appendChild(s); });"
          "</script></body></html>",
          "text/html");
    });
    s.Get("/api/price", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(R"({"price": "19.99"})", "application/json");
    });
    s.Get("/timer", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "<!doctype html><html><body><script>setTimeout(() => {"
          "  const p = document.createElement('p'); p.id = 'late'; p.textContent = 'arrived';"
          "  document.body.appendChild(p); }, 500);</script></body></html>",
          "text/html");
    });
    s.Get("/loop", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("<!doctype html><html><body><script>while (true) {}</script></body></html>",
                      "text/html");
    });
    s.Get("/alert", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "<!doctype html><html><body><script>alert('hi'); window.open('/price');"
          "document.body.insertAdjacentHTML('beforeend', '<p id=after>after</p>');"
          "</script></body></html>",
          "text/html");
    });
    s.Get("/slow", [this](const httplib::Request&, httplib::Response& res) {
      ++slow_started;
      std::this_thread::sleep_for(3s);
      res.set_content("<html><body><p id=s>slow</p></body></html>", "text/html");
    });
    s.Get("/set-cookie", [](const httplib::Request&, httplib::Response& res) {
      res.set_header("Set-Cookie", "session=run1; Path=/");
      res.set_content(
          "<html><body><script>document.cookie = 'js=run1; path=/';</script>"
          "<p id=set>set</p></body></html>",
          "text/html");
    });
    s.Get("/cookies", [](const httplib::Request& req, httplib::Response& res) {
      std::string c = req.get_header_value("Cookie");
      res.set_content("<html><body><p id=server>[" + c +
                          "]</p><script>document.body.insertAdjacentHTML('beforeend', "
                          "'<p id=js>[' + document.cookie + ']</p>');</script></body></html>",
                      "text/html");
    });
    s.Get("/headers", [](const httplib::Request& req, httplib::Response& res) {
      res.status = 203;
      res.set_header("ETag", "\"v1\"");
      res.set_content("<html><body><p id=h>" + req.get_header_value("X-Token") + "|" +
                          req.get_header_value("User-Agent") + "</p></body></html>",
                      "text/html");
    });
    s.Get("/big", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "<html><body><script>document.body.textContent = 'x'.repeat(5000000);"
          "</script></body></html>",
          "text/html");
    });
    s.Get("/huge", [](const httplib::Request&, httplib::Response& res) {
      // 50 MB of DOM: 500,000 elements of 100 characters each.
      res.set_content(
          "<html><body><script>const f = document.createDocumentFragment();"
          "for (let i = 0; i < 500000; ++i) { const p = document.createElement('p');"
          "  p.textContent = 'y'.repeat(93); f.appendChild(p); }"
          "document.body.appendChild(f);"
          "document.body.insertAdjacentHTML('beforeend', '<p id=done>done</p>');"
          "</script></body></html>",
          "text/html");
    });
    s.Get("/stash", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "<html><body><script>sessionStorage.setItem('tab', 'used before');</script>"
          "<p id=stashed>stashed</p></body></html>",
          "text/html");
    });
    s.Get("/unstash", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          "<html><body><script>document.body.insertAdjacentHTML('beforeend', '<p id=tab>[' + "
          "(sessionStorage.getItem('tab') || '') + ']</p>');</script></body></html>",
          "text/html");
    });
    s.Get(R"(/rated/(\d+))", [this](const httplib::Request&, httplib::Response& res) {
      {
        std::lock_guard<std::mutex> hold(lock);
        rated.push_back(std::chrono::steady_clock::now());
      }
      res.set_content(
          "<html><body><script>fetch('/api/price').then(r => r.json()).then(d => "
          "document.body.insertAdjacentHTML('beforeend', '<p id=p>' + d.price + "
          "'</p>'));</script></body></html>",
          "text/html");
    });
    http.start(64);
  }
  std::string url(const std::string& path) const { return http.url(path); }
};

daemon_::FetchRequest get(const std::string& url, std::chrono::milliseconds timeout = 15s) {
  daemon_::FetchRequest r;
  r.url = url;
  r.timeout = timeout;
  return r;
}

// A page of job run `run` (a run's pages share a browser context when its job keeps cookies).
daemon_::FetchRequest in_run(const std::string& url, daemon_::CookieJar& jar, std::uint64_t run,
                             std::chrono::milliseconds timeout = 15s) {
  daemon_::FetchRequest r = get(url, timeout);
  r.cookies = &jar;
  r.group = run;
  return r;
}

config::Render wait_for(const std::string& what) {
  config::Render o;
  o.chromium = true;
  o.wait_for = what;
  return o;
}

// Renders `pages` (request, options) on one Renderer and loop, `concurrently` or one after
// the other; `during` is called on the loop every 50 ms while pages are in flight.
std::vector<daemon_::FetchResult> render_all(
    const std::vector<std::pair<daemon_::FetchRequest, config::Render>>& pages,
    config::RenderPool pool = {}, std::function<void(render::Renderer&)> during = {}) {
  asio::io_context io(1);
  auto& r = render::renderer(io);
  r.configure(pool);
  std::vector<daemon_::FetchResult> out(pages.size());
  std::size_t done = 0;
  auto one = [](render::Renderer& renderer, daemon_::FetchRequest req, config::Render o,
                daemon_::FetchResult& into, std::size_t& finished) -> asio::awaitable<void> {
    into = co_await renderer.render(std::move(req), std::move(o));
    ++finished;
  };
  for (std::size_t i = 0; i < pages.size(); ++i)
    asio::co_spawn(io, one(r, pages[i].first, pages[i].second, out[i], done), asio::detached);
  asio::steady_timer tick(io);
  std::function<void(std::error_code)> on_tick = [&](std::error_code) {
    if (done == pages.size()) {
      r.close();
      return;
    }
    if (during) during(r);
    tick.expires_after(50ms);
    tick.async_wait(on_tick);
  };
  tick.expires_after(50ms);
  tick.async_wait(on_tick);
  io.run();
  return out;
}

// Processes (not zombies) whose session is `sid`: the browser started its own.
std::vector<pid_t> in_session(pid_t sid) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::string stat = test::slurp("/proc/" + std::string(e->d_name) + "/stat");
    auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    long ppid = 0, pgrp = 0, session = 0;
    rest >> state >> ppid >> pgrp >> session;
    if (session == sid && state != 'Z') out.push_back(pid);
  }
  closedir(d);
  return out;
}

// Children of `parent` named chromium (the browser the daemon started).
std::vector<pid_t> browsers_of(pid_t parent) {
  std::vector<pid_t> out;
  DIR* d = opendir("/proc");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
    if (pid <= 0) continue;
    std::string stat = test::slurp("/proc/" + std::string(e->d_name) + "/stat");
    auto open = stat.find('('), close = stat.rfind(')');
    if (open == std::string::npos || close == std::string::npos) continue;
    std::string comm = stat.substr(open + 1, close - open - 1);
    std::istringstream rest(stat.substr(close + 2));
    char state = 0;
    long ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent && comm.find("chrom") != std::string::npos) out.push_back(pid);
  }
  closedir(d);
  return out;
}

}  // namespace

TEST_CASE("render: a price written by a script after fetch() of a JSON endpoint",
          "[render][browser]") {
  Site site;
  auto out = render_all({{get(site.url("/price")), wait_for("#price")}});
  REQUIRE(out[0].error_message == "");
  CHECK(out[0].status == 200);
  CHECK(out[0].content_type.find("text/html") == 0);
  CHECK(out[0].body.find("<span id=\"price\">19.99</span>") != std::string::npos);
  // The HTTP path on the same page sees the empty shell.
  auto plain = daemon_::fetch_blocking(get(site.url("/price")));
  REQUIRE(plain.ok());
  CHECK(plain.status == 200);
  CHECK(plain.body.find("19.99") == std::string::npos);
  CHECK(plain.body.find("id=app") != std::string::npos);
}

TEST_CASE("render: content added by a 500 ms timer, waited for by its selector",
          "[render][browser]") {
  Site site;
  auto out = render_all({{get(site.url("/timer")), wait_for("#late")}});
  REQUIRE(out[0].ok());
  CHECK(out[0].body.find("<p id=\"late\">arrived</p>") != std::string::npos);
  auto plain = daemon_::fetch_blocking(get(site.url("/timer")));
  REQUIRE(plain.ok());
  CHECK(plain.body.find("<p id=\"late\">") == std::string::npos);
}

TEST_CASE("render: a while(true) page ends as timeout and the next page still renders",
          "[render][browser]") {
  Site site;
  config::RenderPool pool;
  pool.concurrency = 1;  // the next page waits for the hung page's tab
  auto out = render_all({{get(site.url("/loop"), 5s), wait_for("load")},
                         {get(site.url("/price")), wait_for("#price")}},
                        pool);
  CHECK(out[0].error_kind == "timeout");
  // At the wait ("did not reach wait_for load in time"), or, on a loaded machine, already in
  // a set-up call to the hung page ("did not answer in time").
  CHECK(out[0].error_message.find("in time") != std::string::npos);
  REQUIRE(out[1].error_message == "");
  CHECK(out[1].body.find("19.99") != std::string::npos);
}

TEST_CASE("render: an alert() is dismissed, window.open refused, the page goes on",
          "[render][browser]") {
  Site site;
  auto out = render_all({{get(site.url("/alert")), wait_for("#after")}});
  REQUIRE(out[0].error_message == "");
  CHECK(out[0].body.find("<p id=\"after\">after</p>") != std::string::npos);
}

TEST_CASE("render: a DOM larger than max_body is too_large, or cut with cut_body",
          "[render][browser]") {
  Site site;
  auto big = get(site.url("/big"));
  big.max_body = 1'000'000;
  auto cut = big;
  cut.cut_body = true;
  auto out = render_all({{big, wait_for("load")}, {cut, wait_for("load")}});
  CHECK(out[0].error_kind == "too_large");
  REQUIRE(out[1].ok());
  CHECK(out[1].body.size() == 1'000'000);
}

TEST_CASE("render: the job's headers reach its page, status, ETag and user agent are kept",
          "[render][browser]") {
  Site site;
  auto req = get(site.url("/headers"));
  req.headers = {{"X-Token", "t0k"}, {"If-None-Match", "\"v0\""}};
  req.user_agent = "scraperd-render-test/1";
  auto out = render_all({{req, wait_for("#h")}});
  REQUIRE(out[0].ok());
  CHECK(out[0].status == 203);
  CHECK(out[0].etag == "\"v1\"");
  CHECK(out[0].body.find("t0k|scraperd-render-test/1") != std::string::npos);
}

TEST_CASE("render: a refused connection is kind connect, as over HTTP", "[render][browser]") {
  int port = 0;
  int fd = test::listen_loopback(port);
  ::close(fd);  // nothing listens there now
  auto out =
      render_all({{get("http://127.0.0.1:" + std::to_string(port) + "/"), wait_for("load")}});
  CHECK(out[0].error_kind == "connect");
}

TEST_CASE("render: a cookie set by one page is absent from the next (a context per page)",
          "[render][browser]") {
  Site site;
  auto out = render_all({{get(site.url("/set-cookie")), wait_for("#set")}});
  REQUIRE(out[0].ok());
  // Same loop, same browser, a later page: neither the server nor the script sees it.
  asio::io_context io(1);
  auto& r = render::renderer(io);
  r.configure({});
  std::vector<daemon_::FetchResult> two(2);
  auto seq = [](render::Renderer& renderer, std::string a, std::string b,
                std::vector<daemon_::FetchResult>& into) -> asio::awaitable<void> {
    daemon_::FetchRequest first = get(a), second = get(b);
    config::Render set = wait_for("#set"), js = wait_for("#js");
    into[0] = co_await renderer.render(std::move(first), std::move(set));
    into[1] = co_await renderer.render(std::move(second), std::move(js));
    renderer.close();
  };
  asio::co_spawn(io, seq(r, site.url("/set-cookie"), site.url("/cookies"), two), asio::detached);
  io.run();
  REQUIRE(two[0].ok());
  REQUIRE(two[1].ok());
  CHECK(two[1].body.find("<p id=\"server\">[]</p>") != std::string::npos);
  CHECK(two[1].body.find("<p id=\"js\">[]</p>") != std::string::npos);
}

TEST_CASE("render: killing the browser fails the pages in flight as render, the rest succeed",
          "[render][browser]") {
  Site site;
  config::RenderPool pool;
  pool.concurrency = 3;
  std::vector<std::pair<daemon_::FetchRequest, config::Render>> pages;
  for (int i = 0; i < 3; ++i)
    pages.push_back({get(site.url("/slow?" + std::to_string(i))), wait_for("#s")});
  for (int i = 0; i < 3; ++i) pages.push_back({get(site.url("/price")), wait_for("#price")});
  pid_t killed = -1;
  auto out = render_all(pages, pool, [&](render::Renderer& r) {
    if (killed < 0 && site.slow_started == 3) {
      killed = r.browser_pid();
      ::kill(-killed, SIGKILL);
    }
  });
  REQUIRE(killed > 0);
  for (int i = 0; i < 3; ++i) {
    INFO("slow page " << i << ": " << out[i].error_message);
    CHECK(out[i].error_kind == "render");
  }
  for (int i = 3; i < 6; ++i) {
    INFO("page " << i << ": " << out[i].error_message);
    CHECK(out[i].ok());
    CHECK(out[i].body.find("19.99") != std::string::npos);
  }
  CHECK(test::eventually([&] { return in_session(killed).empty(); }));
}

TEST_CASE("render: a render job through the daemon extracts the JS-written price",
          "[render][browser]") {
  Site site;
  test::TempDir dir;
  std::string cfg = dir.write(
      "jobs.yaml", "api:\n  listen: \"\"\njobs:\n  - name: shop\n    url: " + site.url("/price") +
                       "\n    every: 1h\n    robots: ignore\n"
                       "    render: {wait_for: \"#price\", screenshot: true}\n"
                       "    extract:\n      price: \"#price\"\n"
                       "  - name: plain\n    url: " +
                       site.url("/price") +
                       "\n    every: 1h\n    robots: ignore\n"
                       "    extract:\n      price: \"#price\"\n");
  auto check = test::run_cli(dir, {"check", "--config", cfg});
  INFO(check.out << check.err);
  REQUIRE(check.exit_code == 0);
  auto tried = test::run_cli(dir, {"try", "shop", "--config", cfg, "--save", dir.file("saved")});
  INFO(tried.out << tried.err);
  REQUIRE(tried.exit_code == 0);
  auto json = nlohmann::json::parse(tried.out);
  CHECK(json["fields"]["price"] == "19.99");
  CHECK(test::slurp(dir.file("saved/page.html")).find("19.99") != std::string::npos);
  CHECK(test::slurp(dir.file("saved/page.png")).rfind("\x89PNG\r\n", 0) == 0);
  std::string db = dir.file("db.sqlite");
  auto ran = test::run_cli(dir, {"run", "--once", "--config", cfg, "--db", db});
  INFO(ran.err);
  CHECK(ran.exit_code == 0);
  auto rows = test::sql(db, "SELECT job, data FROM results ORDER BY job");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0]["job"] == "plain");
  CHECK(rows[0]["data"].find("19.99") == std::string::npos);
  CHECK(rows[1]["job"] == "shop");
  CHECK(rows[1]["data"].find("19.99") != std::string::npos);
}

TEST_CASE("render: SIGTERM with tabs open: exit 0 and no Chromium process left",
          "[render][browser]") {
  Site site;
  test::TempDir dir;
  std::string cfg =
      dir.write("jobs.yaml",
                "api:\n  listen: \"\"\nshutdown_timeout: 1s\njobs:\n  - name: slow\n    urls:\n"
                "      - " +
                    site.url("/slow?a") + "\n      - " + site.url("/slow?b") +
                    "\n    every: 2s\n    robots: ignore\n    render: chromium\n");
  pid_t daemon = test::spawn({"run", "--config", cfg, "--db", dir.file("db.sqlite")}, dir.file("o"),
                             dir.file("e"));
  test::Reaper reaper(daemon);
  std::vector<pid_t> browsers;
  REQUIRE(test::eventually(
      [&] {
        browsers = browsers_of(daemon);
        return !browsers.empty() && site.slow_started >= 2;
      },
      30s));
  pid_t browser = browsers.front();
  CHECK(!in_session(browser).empty());
  ::kill(daemon, SIGTERM);
  CHECK(test::wait_exit(daemon) == 0);
  INFO(test::slurp(dir.file("e")));
  CHECK(test::eventually([&] { return in_session(browser).empty(); }));
}

TEST_CASE("render: javascript: false reads the DOM as parsed, with no script run",
          "[render][browser]") {
  Site site;
  auto o = wait_for("load");
  o.javascript = false;
  auto out = render_all({{get(site.url("/price")), o}});
  REQUIRE(out[0].error_message == "");
  CHECK(out[0].body.find("<div id=\"app\"></div>") != std::string::npos);
  CHECK(out[0].body.find("19.99") == std::string::npos);
  // A selector is looked for in the parsed DOM; one that only a script would add never comes.
  auto present = wait_for("#app"), absent = wait_for("#price");
  present.javascript = absent.javascript = false;
  auto waited =
      render_all({{get(site.url("/price")), present}, {get(site.url("/price"), 3s), absent}});
  REQUIRE(waited[0].error_message == "");
  CHECK(waited[0].body.find("<div id=\"app\"></div>") != std::string::npos);
  CHECK(waited[1].error_kind == "timeout");
  // (At the wait, or on a very loaded machine already in the navigation: "in time" both.)
  CHECK(waited[1].error_message.find("in time") != std::string::npos);
}

TEST_CASE("render: check refuses what Chromium cannot apply, and a missing browser",
          "[render][browser]") {
  const std::string job = "jobs:\n  - name: spa\n    url: https://h.example/\n    every: 1m\n";
  auto errors = [](const std::string& yaml) {
    std::string out;
    for (const auto& d : config::load_string(yaml, "t.yaml").errors) out += d.str() + "\n";
    return out;
  };
  auto ok = config::load_string(job +
                                    "    render: {wait_for: network_idle, block: [image, font],"
                                    " viewport: 800x600, javascript: false}\n",
                                "t.yaml");
  REQUIRE(ok.ok());
  const auto& r = ok.config->jobs[0].render;
  CHECK(r.chromium);
  CHECK(r.wait_for == "network_idle");
  CHECK(r.block == std::vector<std::string>{"image", "font"});
  CHECK((r.width == 800 && r.height == 600));
  CHECK_FALSE(r.javascript);
  CHECK_FALSE(
      config::load_string(job + "    render: http\n", "t.yaml").config->jobs[0].render.chromium);
  CHECK(errors(job + "    render: chromium\n    tls: {verify: false}\n")
            .find("t.yaml:6:10: 'tls.verify: false' cannot be applied") != std::string::npos);
  CHECK(errors(job + "    render: chromium\n    proxy: http://u:p@proxy.example:3128\n")
            .find("t.yaml:6:12: 'proxy' with a user name or password") != std::string::npos);
  CHECK(errors(job + "    render: firefox\n")
            .find("t.yaml:5:13: 'render' must be one of http, chromium") != std::string::npos);
  CHECK(errors(job + "    render: {viewport: big}\n")
            .find("'render.viewport' must be WIDTHxHEIGHT") != std::string::npos);
  std::string missing =
      errors("render: {executable: /nonexistent/chromium}\n" + job + "    render: chromium\n");
  CHECK(missing.find("t.yaml:6:13: job 'spa' has render: chromium but '/nonexistent/chromium' is "
                     "not installed") != std::string::npos);
  // An HTTP-only file does not need the browser.
  CHECK(errors("render: {executable: /nonexistent/chromium}\n" + job) == "");
}

TEST_CASE("render: per_host rate holds for render jobs (the main documents the server saw)",
          "[render][browser]") {
  Site site;
  test::TempDir dir;
  std::string cfg =
      dir.write("jobs.yaml",
                "api:\n  listen: \"\"\nrender: {concurrency: 4}\njobs:\n  - name: rated\n"
                "    url: " +
                    site.url("/rated/{1..9}") +
                    "\n    every: 1h\n    robots: ignore\n"
                    "    per_host: {rate: 4/s, burst: 1, concurrency: 4}\n"
                    "    render: {wait_for: \"#p\"}\n    extract:\n      p: \"#p\"\n");
  auto ran = test::run_cli(dir, {"run", "--once", "--config", cfg, "--db", dir.file("db")});
  INFO(ran.err);
  CHECK(ran.exit_code == 0);
  CHECK(test::sql(dir.file("db"), "SELECT data FROM results WHERE data LIKE '%19.99%'").size() ==
        9);
  std::lock_guard<std::mutex> hold(site.lock);
  REQUIRE(site.rated.size() == 9);
  std::sort(site.rated.begin(), site.rated.end());
  CHECK(site.rated.back() - site.rated.front() >= 1750ms);  // 8 gaps of 250 ms
  // The contract (as W3 reads it from server logs): in no 1-s window more than rate + burst
  // requests. Single gaps are not checked: the frontier spaces the pages 250 ms apart and the
  // browser's start is paced (render.cpp), but on a loaded machine the browser's own network
  // stack may send two held requests together (a 1 ms gap was seen once at load 10).
  for (std::size_t i = 0; i < site.rated.size(); ++i) {
    std::size_t in_window = 0;
    for (std::size_t j = i; j < site.rated.size() && site.rated[j] - site.rated[i] < 1s; ++j)
      ++in_window;
    INFO("the window from request " << i);
    CHECK(in_window <= 5);
  }
}

TEST_CASE("render: a fresh browser after restart_after pages, none after idle_shutdown",
          "[render][browser]") {
  Site site;
  asio::io_context io(1);
  auto& r = render::renderer(io);
  config::RenderPool pool;
  pool.restart_after = 2;
  pool.idle_shutdown = std::chrono::milliseconds(500);
  r.configure(pool);
  std::vector<pid_t> pids;
  std::vector<daemon_::FetchResult> out(3);
  auto pages = [](render::Renderer& renderer, std::string url, std::vector<pid_t>& seen,
                  std::vector<daemon_::FetchResult>& into) -> asio::awaitable<void> {
    for (auto& result : into) {
      daemon_::FetchRequest req = get(url);
      config::Render o = wait_for("#price");
      result = co_await renderer.render(std::move(req), std::move(o));
      seen.push_back(renderer.browser_pid());
    }
    asio::steady_timer idle(co_await asio::this_coro::executor);
    idle.expires_after(std::chrono::seconds(3));
    co_await idle.async_wait(asio::use_awaitable);
    seen.push_back(renderer.browser_pid());
  };
  asio::co_spawn(io, pages(r, site.url("/price"), pids, out), asio::detached);
  io.run();
  for (const auto& o : out) CHECK(o.ok());
  REQUIRE(pids.size() == 4);
  CHECK(pids[0] > 0);
  CHECK(pids[0] == pids[1]);  // two pages on the first browser
  CHECK(pids[2] > 0);
  CHECK(pids[2] != pids[0]);  // the third on a fresh one
  CHECK(pids[3] == -1);       // stopped when idle
  CHECK(test::eventually([&] { return in_session(pids[0]).empty(); }));
  CHECK(test::eventually([&] { return in_session(pids[2]).empty(); }));
}

TEST_CASE("render: a browser over restart_memory is replaced before the next page",
          "[render][browser]") {
  Site site;
  asio::io_context io(1);
  auto& r = render::renderer(io);
  config::RenderPool pool;
  pool.restart_memory = 64ull * 1024 * 1024;  // any Chromium holds more than this
  r.configure(pool);
  std::vector<pid_t> pids;
  std::vector<daemon_::FetchResult> out(2);
  auto pages = [](render::Renderer& renderer, std::string url, std::vector<pid_t>& seen,
                  std::vector<daemon_::FetchResult>& into) -> asio::awaitable<void> {
    for (auto& result : into) {
      daemon_::FetchRequest req = get(url);
      config::Render o = wait_for("#price");
      result = co_await renderer.render(std::move(req), std::move(o));
      seen.push_back(renderer.browser_pid());
      // Memory is read at most every 2 s: the next page comes after that.
      asio::steady_timer pause(co_await asio::this_coro::executor);
      pause.expires_after(std::chrono::milliseconds(2500));
      co_await pause.async_wait(asio::use_awaitable);
    }
    renderer.close();
  };
  asio::co_spawn(io, pages(r, site.url("/price"), pids, out), asio::detached);
  io.run();
  for (const auto& o : out) CHECK(o.ok());
  REQUIRE(pids.size() == 2);
  CHECK(pids[0] > 0);
  CHECK(pids[1] > 0);
  CHECK(pids[1] != pids[0]);  // the first browser held more than 64 MB
  CHECK(test::eventually([&] { return in_session(pids[0]).empty(); }));
}

TEST_CASE("render: a browser that stops answering is replaced, its page ends as timeout",
          "[render][browser]") {
  Site site;
  config::RenderPool pool;
  pool.concurrency = 1;
  pid_t stopped = -1;
  auto out = render_all({{get(site.url("/timer"), 3s), wait_for("#never")},
                         {get(site.url("/price")), wait_for("#price")}},
                        pool, [&](render::Renderer& r) {
                          if (stopped < 0 && r.browser_pid() > 0 && r.in_flight() == 2) {
                            stopped = r.browser_pid();
                            ::kill(stopped, SIGSTOP);  // alive, but answers nothing
                          }
                        });
  REQUIRE(stopped > 0);
  CHECK(out[0].error_kind == "timeout");
  REQUIRE(out[1].error_message == "");
  CHECK(out[1].body.find("19.99") != std::string::npos);
  CHECK(test::eventually([&] { return in_session(stopped).empty(); }));
}

TEST_CASE("render: a run's pages share its context and reuse its tabs, the next run starts empty",
          "[render][browser]") {
  Site site;
  daemon_::CookieJar jar1, jar2;
  config::RenderPool pool;
  pool.concurrency = 1;  // one tab: each page of run 1 comes after the last on the same tab
  auto out = render_all({{in_run(site.url("/set-cookie"), jar1, 1), wait_for("#set")},
                         {in_run(site.url("/cookies"), jar1, 1), wait_for("#js")},
                         {in_run(site.url("/headers"), jar1, 1), wait_for("#h")},
                         {in_run(site.url("/stash"), jar1, 1), wait_for("#stashed")},
                         {in_run(site.url("/unstash"), jar1, 1), wait_for("#tab")},
                         {in_run(site.url("/price"), jar1, 1), wait_for("#price")},
                         {in_run(site.url("/cookies"), jar2, 2), wait_for("#js")},
                         {in_run(site.url("/unstash"), jar2, 2), wait_for("#tab")}},
                        pool);
  for (std::size_t i = 0; i < out.size(); ++i) {
    INFO("page " << i << ": " << out[i].error_message);
    REQUIRE(out[i].ok());
  }
  // Run 1: the cookies its first page set reach its second, server and script.
  CHECK(out[1].body.find("<p id=\"server\">[session=run1; js=run1]</p>") != std::string::npos);
  CHECK(out[1].body.find("<p id=\"js\">[session=run1; js=run1]</p>") != std::string::npos);
  // On the reused tab each page reports its own main document: status, ETag.
  CHECK(out[2].status == 203);
  CHECK(out[2].etag == "\"v1\"");
  CHECK(out[4].body.find("<p id=\"tab\">[used before]</p>") != std::string::npos);  // same tab
  CHECK(out[5].status == 200);
  CHECK(out[5].etag == "");
  CHECK(out[5].body.find("19.99") != std::string::npos);
  // Run 2: nothing of run 1, neither its cookies nor its tab.
  CHECK(out[6].body.find("<p id=\"server\">[]</p>") != std::string::npos);
  CHECK(out[6].body.find("<p id=\"js\">[]</p>") != std::string::npos);
  CHECK(out[7].body.find("<p id=\"tab\">[]</p>") != std::string::npos);
}

TEST_CASE("render: a hung page of a run is not reused, its next page renders on a fresh tab",
          "[render][browser]") {
  Site site;
  daemon_::CookieJar jar;
  config::RenderPool pool;
  pool.concurrency = 1;
  auto out = render_all({{in_run(site.url("/price"), jar, 7), wait_for("#price")},
                         {in_run(site.url("/loop"), jar, 7, 4s), wait_for("#never")},
                         {in_run(site.url("/price?again"), jar, 7), wait_for("#price")}},
                        pool);
  REQUIRE(out[0].ok());
  CHECK(out[1].error_kind == "timeout");
  CHECK(out[1].error_message.find("in time") != std::string::npos);
  INFO(out[2].error_message);
  REQUIRE(out[2].ok());
  CHECK(out[2].body.find("19.99") != std::string::npos);
}

TEST_CASE("render: a wait_for that is not a selector ends as render, on a run's tab too",
          "[render][browser]") {
  Site site;
  daemon_::CookieJar jar;
  auto out = render_all({{get(site.url("/price")), wait_for("#price[")},
                         {in_run(site.url("/price"), jar, 3), wait_for("#price[")}});
  for (const auto& o : out) {
    CHECK(o.error_kind == "render");
    CHECK(o.error_message.find("is not a selector the browser accepts") != std::string::npos);
  }
}

TEST_CASE("render: a 50 MB DOM is too_large (or cut) in bounded time, never a hang",
          "[render][browser]") {
  Site site;
  auto huge = get(site.url("/huge"), 60s);  // default max_body: 10 MB
  auto cut = huge;
  cut.cut_body = true;
  config::RenderPool pool;
  pool.concurrency = 1;
  auto out = render_all({{huge, wait_for("#done")}, {cut, wait_for("#done")}}, pool);
  INFO(out[0].error_message);
  CHECK(out[0].error_kind == "too_large");
  CHECK(out[0].error_message.find("more than max_body") != std::string::npos);
  INFO(out[1].error_message);
  REQUIRE(out[1].ok());
  CHECK(out[1].body.size() == huge.max_body);
  CHECK(out[1].body.rfind("<html><head></head><body><script>", 0) == 0);
  CHECK(out[1].body.find("</script><p>yyy") != std::string::npos);
}

TEST_CASE("render: the per-origin pacing record forgets origins idle for a minute", "[render]") {
  using Clock = render::PacedClock;
  render::PacedMap paced;
  const auto t0 = Clock::now();
  paced["http://a.example:80"] = {t0, t0};
  paced["http://b.example:80"] = {t0, t0 + 30s};
  render::prune_paced(paced, t0 + 60s);
  CHECK(paced.size() == 2);  // a: exactly a minute ago, kept
  render::prune_paced(paced, t0 + 61s);
  REQUIRE(paced.size() == 1);
  CHECK(paced.begin()->first == "http://b.example:80");
  render::prune_paced(paced, t0 + 91s);
  CHECK(paced.empty());
}

TEST_CASE("render: pages loading in the browser count in scraperd_requests_in_flight",
          "[render][browser]") {
  Site site;
  test::TempDir dir;
  std::string cfg = dir.write("jobs.yaml",
                              "api: {listen: '127.0.0.1:0'}\nrender: {concurrency: 2}\njobs:\n"
                              "  - name: slow\n    urls: ['" +
                                  site.url("/slow?1") + "', '" + site.url("/slow?2") +
                                  "']\n    every: 1h\n    robots: ignore\n"
                                  "    per_host: {concurrency: 2}\n    render: {wait_for: '#s'}\n");
  std::string db = dir.file("db");
  pid_t daemon = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(daemon);
  int port = 0;
  REQUIRE(test::eventually(
      [&] {
        std::smatch m;
        std::string log = test::slurp(dir.file("e"));
        static const std::regex listening(R"(api: listening on http://127\.0\.0\.1:(\d+))");
        if (std::regex_search(log, m, listening)) port = std::stoi(m[1]);
        return port > 0;
      },
      30s));
  httplib::Client client("127.0.0.1", port);
  auto gauge = [&]() {
    auto r = client.Get("/metrics");
    std::smatch m;
    static const std::regex in_flight(R"(\nscraperd_requests_in_flight (\d+)\n)");
    if (!r || !std::regex_search(r->body, m, in_flight)) return -1;
    return std::stoi(m[1]);
  };
  auto run = client.Post("/api/jobs/slow/run", "", "application/json");
  REQUIRE(run);
  REQUIRE(run->status == 202);
  // Both pages are in the browser at once (each waits 3 s for its server).
  CHECK(test::eventually([&] { return gauge() == 2; }, 30s));
  CHECK(test::eventually([&] { return test::sql(db, "SELECT 1 FROM results").size() == 2; }, 30s));
  CHECK(gauge() == 0);
  ::kill(daemon, SIGTERM);
  CHECK(test::wait_exit(daemon) == 0);
}

TEST_CASE("render: a run's context is thrown away after its last page (5 s), cookies with it",
          "[render][browser]") {
  Site site;
  asio::io_context io(1);
  auto& r = render::renderer(io);
  r.configure({});
  daemon_::CookieJar jar;
  std::vector<daemon_::FetchResult> out(3);
  auto pages = [](render::Renderer& renderer, daemon_::CookieJar& cookies, std::string set,
                  std::string read,
                  std::vector<daemon_::FetchResult>& into) -> asio::awaitable<void> {
    daemon_::FetchRequest a = in_run(set, cookies, 9), b = in_run(read, cookies, 9),
                          c = in_run(read, cookies, 9);
    config::Render wait_set = wait_for("#set"), wait_js = wait_for("#js"),
                   wait_js2 = wait_for("#js");
    into[0] = co_await renderer.render(std::move(a), std::move(wait_set));
    into[1] = co_await renderer.render(std::move(b), std::move(wait_js));
    // Past the run's linger (5 s, a timer on this same loop, so it has fired by then).
    asio::steady_timer pause(co_await asio::this_coro::executor);
    pause.expires_after(std::chrono::milliseconds(6000));
    co_await pause.async_wait(asio::use_awaitable);
    into[2] = co_await renderer.render(std::move(c), std::move(wait_js2));
    renderer.close();
  };
  asio::co_spawn(io, pages(r, jar, site.url("/set-cookie"), site.url("/cookies"), out),
                 asio::detached);
  io.run();
  for (const auto& o : out) REQUIRE(o.ok());
  CHECK(out[1].body.find("<p id=\"js\">[session=run1; js=run1]</p>") != std::string::npos);
  CHECK(out[2].body.find("<p id=\"server\">[]</p>") != std::string::npos);
  CHECK(out[2].body.find("<p id=\"js\">[]</p>") != std::string::npos);
}
