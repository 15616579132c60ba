#include "daemon/crawl/fetch.h"

#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <catch2/catch.hpp>
#include <thread>

#include "tests/support/hostile_server.h"
#include "tests/support/http_server.h"

using namespace scraperd;
using namespace std::chrono_literals;

TEST_CASE("fetch_blocking returns status and body, and classifies failures", "[fetch]") {
  test::HttpServer srv;
  srv.server().Get("/ok", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("hello " + req.get_header_value("User-Agent"), "text/plain");
  });
  srv.server().Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.method + " " + req.get_header_value("X-Token") + " " + req.body,
                    "text/plain");
  });
  srv.server().Get("/missing", [](const httplib::Request&, httplib::Response& res) {
    res.status = 404;
    res.set_content("no", "text/plain");
  });
  srv.server().Get("/big", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(100'000, 'x'), "text/plain");
  });
  srv.server().Get("/chunked-big", [](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [](size_t, httplib::DataSink& sink) {
      std::string chunk(10'000, 'y');
      for (int i = 0; i < 10; ++i)
        if (!sink.write(chunk.data(), chunk.size())) return false;
      sink.done();
      return true;
    });
  });
  srv.server().Get("/drip", [](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [](size_t offset, httplib::DataSink& sink) {
      if (offset > 50) {  // ends by itself so the server thread never hangs the test
        sink.done();
        return true;
      }
      std::this_thread::sleep_for(100ms);
      return sink.write("x", 1);
    });
  });
  srv.server().Get("/redirect", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/ok");
  });
  srv.server().Get(R"(/hop/(\d+))", [](const httplib::Request& req, httplib::Response& res) {
    int n = std::stoi(req.matches[1]);
    // Relative references, resolved against the current URL as RFC 3986 says.
    res.set_redirect(n == 0 ? "../ok" : std::to_string(n - 1));
  });
  srv.server().Get("/loop/a",
                   [](const httplib::Request&, httplib::Response& res) { res.set_redirect("b"); });
  srv.server().Get("/loop/b", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/loop/a?x#frag");
  });
  srv.server().Get("/loop/self", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/loop/self");
  });
  srv.server().Get("/to-ftp", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("ftp://127.0.0.1/file", 302);
  });
  srv.server().Post("/form", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/seen", 303);
  });
  srv.server().Post("/keep", [](const httplib::Request&, httplib::Response& res) {
    res.set_redirect("/seen", 307);
  });
  srv.server().Get("/seen", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.method + " [" + req.body + "]", "text/plain");
  });
  srv.server().Post("/seen", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.method + " [" + req.body + "]", "text/plain");
  });
  srv.start();

  daemon::FetchRequest req;
  req.user_agent = "test-agent";
  req.timeout = 5s;

  SECTION("a page") {
    req.url = srv.url("/ok");
    auto r = daemon::fetch_blocking(req);
    CHECK(r.ok());
    CHECK(r.status == 200);
    CHECK(r.body == "hello test-agent");
  }
  SECTION("method, headers and body are sent as configured") {
    req.url = srv.url("/echo");
    req.method = "POST";
    req.headers = {{"X-Token", "abc"}};
    req.body = "q=1";
    auto r = daemon::fetch_blocking(req);
    CHECK(r.status == 200);
    CHECK(r.body == "POST abc q=1");
  }
  SECTION("an HTTP error status is a response, not a network failure") {
    req.url = srv.url("/missing");
    auto r = daemon::fetch_blocking(req);
    CHECK(r.ok());
    CHECK(r.status == 404);
  }
  SECTION("redirects are followed and the final URL is kept") {
    req.url = srv.url("/redirect");
    auto r = daemon::fetch_blocking(req);
    CHECK(r.status == 200);
    CHECK(r.body == "hello test-agent");
    CHECK(r.final_url == srv.url("/ok"));
  }
  SECTION("no final URL without a redirect") {
    req.url = srv.url("/ok");
    CHECK(daemon::fetch_blocking(req).final_url.empty());
  }
  SECTION("relative Location headers resolve against the current URL") {
    req.url = srv.url("/hop/3");
    req.max_redirects = 4;
    auto r = daemon::fetch_blocking(req);
    CHECK(r.ok());
    CHECK(r.status == 200);
    CHECK(r.final_url == srv.url("/ok"));
  }
  SECTION("more redirects than max_redirects is redirect_loop") {
    req.url = srv.url("/hop/3");
    req.max_redirects = 3;
    auto r = daemon::fetch_blocking(req);
    CHECK(r.error_kind == "redirect_loop");
    CHECK_THAT(r.error_message, Catch::Contains("more than 3 redirects"));
    CHECK(r.body.empty());
  }
  SECTION("max_redirects 0 follows nothing") {
    req.url = srv.url("/redirect");
    req.max_redirects = 0;
    CHECK(daemon::fetch_blocking(req).error_kind == "redirect_loop");
  }
  SECTION("a loop is caught at its first repeat, whatever the limit") {
    req.max_redirects = 50;
    req.url = srv.url("/loop/a?x");
    auto r = daemon::fetch_blocking(req);
    CHECK(r.error_kind == "redirect_loop");
    CHECK_THAT(r.error_message, Catch::Contains("redirect loop: " + srv.url("/loop/a?x")));
    req.url = srv.url("/loop/self");
    CHECK(daemon::fetch_blocking(req).error_kind == "redirect_loop");
  }
  SECTION("a redirect to a non-http URL is kind http, with the status") {
    req.url = srv.url("/to-ftp");
    auto r = daemon::fetch_blocking(req);
    CHECK(r.error_kind == "http");
    CHECK(r.status == 302);
    CHECK_THAT(r.error_message, Catch::Contains("ftp://127.0.0.1/file"));
  }
  SECTION("303 turns a POST into a GET without body; 307 keeps both") {
    req.method = "POST";
    req.body = "q=1";
    req.url = srv.url("/form");
    CHECK(daemon::fetch_blocking(req).body == "GET []");
    req.url = srv.url("/keep");
    CHECK(daemon::fetch_blocking(req).body == "POST [q=1]");
  }
  SECTION("a body over max_body is too_large, with or without Content-Length") {
    req.max_body = 50'000;
    for (auto path : {"/big", "/chunked-big"}) {
      req.url = srv.url(path);
      auto r = daemon::fetch_blocking(req);
      CHECK(r.error_kind == "too_large");
      CHECK(r.body.empty());
    }
  }
  SECTION("with cut_body, a body over max_body is cut there and the response kept") {
    req.max_body = 50'000;
    req.cut_body = true;
    for (auto [path, c] : {std::pair{"/big", 'x'}, std::pair{"/chunked-big", 'y'}}) {
      req.url = srv.url(path);
      auto r = daemon::fetch_blocking(req);
      CHECK(r.ok());
      CHECK(r.status == 200);
      CHECK(r.body == std::string(50'000, c));
    }
  }
  SECTION("a dripping body hits the total deadline") {
    req.url = srv.url("/drip");
    req.timeout = 1s;
    auto r = daemon::fetch_blocking(req);
    CHECK(r.error_kind == "timeout");
    CHECK(r.elapsed < 4s);
  }
  SECTION("a refused connection is kind connect") {
    req.url = "http://127.0.0.1:" + std::to_string(test::refused_port()) + "/";
    auto r = daemon::fetch_blocking(req);
    CHECK(r.error_kind == "connect");
    CHECK(r.status == 0);
  }
}

namespace {
// Runs `fetches` one after another on one Fetcher (one loop, so one connection cache).
std::vector<daemon::FetchResult> in_turn(std::vector<daemon::FetchRequest> fetches) {
  asio::io_context io(1);
  std::vector<daemon::FetchResult> out;
  daemon::Fetcher fetcher(io);
  auto all = [](daemon::Fetcher& f, std::vector<daemon::FetchRequest> requests,
                std::vector<daemon::FetchResult>& results) -> asio::awaitable<void> {
    for (auto& r : requests) results.push_back(co_await f.fetch(r));
  };
  asio::co_spawn(io, all(fetcher, std::move(fetches), out), [&](std::exception_ptr) { io.stop(); });
  io.run();
  return out;
}
}  // namespace

TEST_CASE("a kept-alive connection the server closed as the next request went out is retried",
          "[fetch]") {
  // /keep-then-drop answers once, keeps the connection, and closes it when the next request
  // arrives on it: the race of a server closing an idle connection, made certain.
  test::HostileServer srv;
  daemon::FetchRequest req;
  req.url = srv.url("/keep-then-drop");
  req.timeout = 5s;
  auto results = in_turn({req, req});  // one loop: the second goes out on the kept connection
  REQUIRE(results.size() == 2);
  CHECK(results[0].ok());
  CHECK(results[0].body == "first");
  CHECK(results[1].ok());
  CHECK(results[1].status == 200);
  CHECK(results[1].body == "first");
  CHECK(srv.requests() == 3);  // the dropped one, and again on a new connection
}

TEST_CASE("connections kept: every request in flight, and an idle one for many hosts", "[fetch]") {
  using daemon::connections_to_keep;
  CHECK(connections_to_keep(64, 0) == 1024);        // no limit on open files
  CHECK(connections_to_keep(64, 524288) == 1024);   // systemd's default hard limit
  CHECK(connections_to_keep(64, 1024) == 512);      // half of a low limit
  CHECK(connections_to_keep(5000, 20000) == 5000);  // never fewer than in flight
  CHECK(connections_to_keep(0, 100) == 50);
}
