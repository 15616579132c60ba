// The transport (libcurl's multi interface on the event loop) against real servers on
// loopback: TLS failures and trust, HTTP/2, keep-alive, proxies (HTTP, CONNECT, HTTPS,
// SOCKS5), what crosses a redirect, cookies, headers, compression, cancellation, stalls, and
// a SIGTERM with a thousand transfers in flight.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <zlib.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <atomic>
#include <catch2/catch.hpp>
#include <cctype>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "daemon/crawl/fetch.h"
#include "tests/support/hostile_server.h"
#include "tests/support/http_server.h"
#include "tests/support/process.h"
#include "tests/support/proxy_server.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"
#include "tests/support/tls.h"

using namespace scraperd;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;

namespace {

double ms_since(SteadyClock::time_point start) {
  return std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
}

double ms(SteadyClock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// An event loop for coroutines that share a Fetcher. run() returns once every coroutine
// started has ended (the Fetcher may keep curl's timer for idle connections, so the loop need
// not run out of work), and fails the test when that takes over a minute. What a coroutine
// throws comes out of run().
class Loop {
 public:
  asio::io_context io;

  void start(asio::awaitable<void> work) {
    ++running_;
    asio::co_spawn(io, std::move(work), [this](std::exception_ptr e) {
      if (--running_ == 0) io.stop();
      if (e) std::rethrow_exception(e);
    });
  }

  void run() {
    io.run_for(60s);
    REQUIRE(running_ == 0);
  }

 private:
  int running_ = 0;
};

// One fetch as a coroutine; the result and how long it took go to *out.
struct Timed {
  daemon::FetchResult result;
  SteadyClock::time_point ended;
  double took_ms = -1;
  bool done = false;
};

asio::awaitable<void> timed_fetch(daemon::Fetcher& fetcher, daemon::FetchRequest request,
                                  Timed* out) {
  auto start = SteadyClock::now();
  daemon::FetchResult r = co_await fetcher.fetch(std::move(request));
  out->result = std::move(r);
  out->ended = SteadyClock::now();
  out->took_ms = ms_since(start);
  out->done = true;
}

// Fetches `requests` one after the other on one Fetcher (so connections can be reused).
asio::awaitable<void> fetch_in_order(daemon::Fetcher& fetcher,
                                     std::vector<daemon::FetchRequest> requests,
                                     std::vector<Timed>* out) {
  for (auto& request : requests) {
    daemon::FetchRequest copy = request;
    Timed t;
    auto start = SteadyClock::now();
    daemon::FetchResult r = co_await fetcher.fetch(std::move(copy));
    t.result = std::move(r);
    t.took_ms = ms_since(start);
    t.ended = SteadyClock::now();
    t.done = true;
    out->push_back(std::move(t));
  }
}

// A raw TCP server on 127.0.0.1 for answers no library would give. A thread per connection
// reads request heads and calls `answer(fd, head)` for each; `answer` returns true to read
// the next request on the same connection, false to close it. Joined on destruction; answers
// that wait use hold(), which gives up when the server stops.
class RawServer {
 public:
  using Answer = std::function<bool(RawServer&, int fd, const std::string& head)>;

  explicit RawServer(Answer answer) : answer_(std::move(answer)) {
    listen_ = test::listen_loopback(port_);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~RawServer() {
    stopping_ = true;
    acceptor_.join();
    ::close(listen_);
    std::lock_guard lock(mu_);
    for (auto& t : connections_) t.join();
  }

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<std::string> heads() {
    std::lock_guard lock(heads_mu_);
    return heads_;
  }

  bool send(int fd, std::string_view data) {
    while (!data.empty() && !stopping_) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return data.empty();
  }
  // Waits `d`, or until the server stops (false).
  bool hold(std::chrono::milliseconds d) {
    auto until = SteadyClock::now() + d;
    while (SteadyClock::now() < until) {
      if (stopping_) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }

 private:
  void accept_loop() {
    while (!stopping_) {
      pollfd p{listen_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard lock(mu_);
      connections_.emplace_back([this, fd] {
        serve(fd);
        ::close(fd);
      });
    }
  }

  void serve(int fd) {
    std::string data;
    char buf[4096];
    for (;;) {
      auto end = data.find("\r\n\r\n");
      if (end == std::string::npos) {
        if (data.size() > 65536 || stopping_) return;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) == 0) continue;
        ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) return;
        data.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      std::string head = data.substr(0, end + 4);
      data.erase(0, end + 4);
      {
        std::lock_guard lock(heads_mu_);
        heads_.push_back(head);
      }
      if (!answer_(*this, fd, head)) return;
    }
  }

  Answer answer_;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::list<std::thread> connections_;
  std::mutex heads_mu_;
  std::vector<std::string> heads_;
};

// The path of a request head ("GET /x HTTP/1.1\r\n...") → "/x".
std::string path_of(const std::string& head) {
  auto a = head.find(' ');
  auto b = head.find(' ', a + 1);
  return head.substr(a + 1, b - a - 1);
}

// How many header lines named `name` (case-insensitive) a raw request head has, and the last
// one's value.
std::pair<int, std::string> header_lines(const std::string& head, const std::string& name) {
  int count = 0;
  std::string value;
  std::size_t at = head.find("\r\n");
  while (at != std::string::npos && at + 2 < head.size()) {
    auto next = head.find("\r\n", at + 2);
    std::string line = head.substr(at + 2, next - at - 2);
    auto colon = line.find(':');
    if (colon != std::string::npos && colon == name.size() &&
        std::equal(name.begin(), name.end(), line.begin(), [](char x, char y) {
          return std::tolower(static_cast<unsigned char>(x)) ==
                 std::tolower(static_cast<unsigned char>(y));
        })) {
      ++count;
      value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
    }
    at = next;
  }
  return {count, value};
}

// A server that accepts up to thousands of connections on one thread (poll), reads request
// heads and never answers. Closes everything on destruction.
class HangServer {
 public:
  HangServer() {
    listen_ = test::listen_loopback(port_, 4096);
    ::fcntl(listen_, F_SETFL, O_NONBLOCK);
    thread_ = std::thread([this] { loop(); });
  }
  ~HangServer() {
    stopping_ = true;
    thread_.join();
    ::close(listen_);
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int requests() const { return requests_; }      // request heads read
  int open_connections() const { return open_; }  // connections held now

 private:
  struct Conn {
    int fd;
    std::string data;
    bool counted = false;
  };

  void loop() {
    std::vector<Conn> conns;
    std::vector<pollfd> fds;
    char buf[4096];
    while (!stopping_) {
      fds.assign(1, pollfd{listen_, POLLIN, 0});
      for (auto& c : conns) fds.push_back(pollfd{c.fd, POLLIN, 0});
      if (::poll(fds.data(), fds.size(), 20) <= 0) continue;
      for (std::size_t i = conns.size(); i-- > 0;) {
        if (!fds[i + 1].revents) continue;
        ssize_t n = ::recv(conns[i].fd, buf, sizeof buf, 0);
        if (n <= 0) {
          ::close(conns[i].fd);
          conns.erase(conns.begin() + static_cast<std::ptrdiff_t>(i));
          continue;
        }
        if (!conns[i].counted && conns[i].data.size() < 65536) {
          conns[i].data.append(buf, static_cast<std::size_t>(n));
          if (conns[i].data.find("\r\n\r\n") != std::string::npos) {
            conns[i].counted = true;
            ++requests_;
          }
        }
      }
      if (fds[0].revents) {
        for (int fd; (fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;)
          conns.push_back(Conn{fd, {}, false});
      }
      open_ = static_cast<int>(conns.size());
    }
    for (auto& c : conns) ::close(c.fd);
  }

  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::atomic<int> open_{0};
  std::thread thread_;
};

// SIGPIPE back to its default (killing the process) for the scope. tests/main.cpp ignores it,
// as scraperd's main does; here a SIGPIPE raised by the fetch path (curl or OpenSSL writing to
// a connection the server reset) would kill the test binary instead of passing unseen.
class DefaultSigpipe {
 public:
  DefaultSigpipe() { old_ = ::signal(SIGPIPE, SIG_DFL); }
  ~DefaultSigpipe() { ::signal(SIGPIPE, old_); }

 private:
  sighandler_t old_;
};

struct CliOutput {
  int exit_code = -1;
  std::string err;
};

CliOutput run_scraperd(const test::TempDir& dir, const std::vector<std::string>& args) {
  CliOutput o;
  pid_t pid = test::spawn(args, dir.file("stdout"), dir.file("stderr"));
  test::Reaper reaper(pid);
  o.exit_code = test::wait_exit(pid);
  o.err = test::slurp(dir.file("stderr"));
  return o;
}

}  // namespace

TEST_CASE("an HTTPS server that resets after reading the request: read or tls, no SIGPIPE",
          "[transport]") {
  DefaultSigpipe sigpipe_kills;
  test::TestCerts certs;
  test::TlsResetServer server(certs.server_cert, certs.server_key);
  daemon::FetchRequest req;
  req.url = server.url("/reset");
  req.ca_file = certs.ca_cert;
  req.timeout = 5s;
  for (int i = 0; i < 3; ++i) {
    auto r = daemon::fetch_blocking(req);
    INFO("kind '" << r.error_kind << "' (" << r.error_message << "), status " << r.status);
    CHECK((r.error_kind == "read" || r.error_kind == "tls"));
    CHECK(r.status == 0);
    CHECK(r.body.empty());
    CHECK(r.elapsed < 4s);
  }
  // The handshake succeeded and the request went out each time: the reset came after it.
  CHECK(server.requests() >= 3);
}

TEST_CASE("scraperd run --once: an https job whose server resets, beside an ordinary job",
          "[transport][cli]") {
  test::TestCerts certs;
  test::TlsResetServer reset(certs.server_cert, certs.server_key);
  test::HttpServer plain;
  plain.server().Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("<p>fine</p>", "text/html");
  });
  plain.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml",
                       "api: {listen: ''}\n"
                       "defaults: {robots: ignore, retries: {max: 0}, timeout: 5s}\n"
                       "jobs:\n"
                       "  - name: reset\n    every: 1h\n    url: '" +
                           reset.url("/") + "'\n    tls: {ca_file: '" + certs.ca_cert +
                           "'}\n"
                           "  - name: plain\n    every: 1h\n    url: '" +
                           plain.url("/") + "'\n");
  auto db = dir.file("r.db");
  auto o = run_scraperd(dir, {"run", "--once", "--config", cfg, "--db", db});
  INFO(o.err);
  REQUIRE(o.exit_code == 3);  // the reset job failed; 141 would be a SIGPIPE
  CHECK(reset.requests() >= 1);
  CHECK(test::sql1(db, "SELECT count(*) FROM results WHERE job = 'reset'") == "0");
  auto e = test::sql(db, "SELECT kind, message FROM errors WHERE job = 'reset'");
  REQUIRE(e.size() == 1);
  INFO(e[0]["message"]);
  CHECK((e[0]["kind"] == "read" || e[0]["kind"] == "tls"));
  CHECK(test::sql1(db, "SELECT count(*) FROM errors WHERE job = 'plain'") == "0");
  CHECK(test::sql1(db, "SELECT group_concat(status) FROM results WHERE job = 'plain'") == "200");
  CHECK(test::sql1(db, "SELECT count(*) FROM runs WHERE status = 'running'") == "0");
  CHECK(test::sql1(db, "SELECT count(*) FROM runs") == "2");
}

TEST_CASE(
    "tls: ca_file trusts a private CA that the system store does not, and verify_tls false "
    "takes any certificate",
    "[transport]") {
  test::TestCerts certs;
  test::TlsHttpServer signed_by_ca(certs.server_cert, certs.server_key);
  test::TlsHttpServer self_signed(certs.self_cert, certs.self_key);
  for (auto* s : {&signed_by_ca, &self_signed}) {
    s->server().Get("/", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("secure hello", "text/plain");
    });
    s->start();
  }
  daemon::FetchRequest req;
  req.timeout = 5s;

  SECTION("the CA-signed server with ca_file: 200") {
    req.url = signed_by_ca.url("/");
    req.ca_file = certs.ca_cert;
    auto r = daemon::fetch_blocking(req);
    INFO(r.error_kind << ": " << r.error_message);
    CHECK(r.ok());
    CHECK(r.status == 200);
    CHECK(r.body == "secure hello");
  }
  SECTION("the CA-signed server without ca_file: tls") {
    req.url = signed_by_ca.url("/");
    auto r = daemon::fetch_blocking(req);
    CHECK(r.error_kind == "tls");
    CHECK(r.status == 0);
  }
  SECTION("the self-signed server, verify_tls false: 200, whatever its name") {
    req.url = self_signed.url("/");
    req.verify_tls = false;
    auto r = daemon::fetch_blocking(req);
    INFO(r.error_kind << ": " << r.error_message);
    CHECK(r.ok());
    CHECK(r.status == 200);
    CHECK(r.body == "secure hello");
  }
  SECTION("the self-signed server, verified, with or without the CA: tls") {
    req.url = self_signed.url("/");
    CHECK(daemon::fetch_blocking(req).error_kind == "tls");
    req.ca_file = certs.ca_cert;
    CHECK(daemon::fetch_blocking(req).error_kind == "tls");
  }
  SECTION("a ca_file that does not exist: tls, not a crash or a trust-all") {
    req.url = signed_by_ca.url("/");
    req.ca_file = certs.ca_cert + ".missing";
    auto r = daemon::fetch_blocking(req);
    CHECK(r.error_kind == "tls");
    CHECK(r.status == 0);
  }
}

TEST_CASE("HTTP/2 is negotiated by ALPN, and http2 false keeps HTTP/1.1", "[transport]") {
  test::TestCerts certs;
  test::Nghttpd h2(certs.server_cert, certs.server_key, {{"hello.txt", "hello over h2\n"}});
  test::TlsHttpServer h1(certs.server_cert, certs.server_key);  // no ALPN: HTTP/1.1 only
  h1.server().Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hello over 1.1", "text/plain");
  });
  h1.start();
  daemon::FetchRequest req;
  req.timeout = 5s;
  req.ca_file = certs.ca_cert;

  SECTION("nghttpd: version 2") {
    req.url = h2.url("/hello.txt");
    auto r = daemon::fetch_blocking(req);
    INFO(r.error_kind << ": " << r.error_message);
    CHECK(r.ok());
    CHECK(r.status == 200);
    CHECK(r.body == "hello over h2\n");
    CHECK(r.http_version == "2");
  }
  SECTION("nghttpd, five fetches at once on one Fetcher: all version 2") {
    Loop loop;
    daemon::Fetcher fetcher(loop.io);
    std::vector<Timed> out(5);
    req.url = h2.url("/hello.txt");
    for (auto& t : out) loop.start(timed_fetch(fetcher, req, &t));
    loop.run();
    for (auto& t : out) {
      INFO(t.result.error_kind << ": " << t.result.error_message);
      CHECK(t.result.status == 200);
      CHECK(t.result.body == "hello over h2\n");
      CHECK(t.result.http_version == "2");
    }
  }
  SECTION("nghttpd, http2 false: HTTP/2 is not offered, so this HTTP/2-only server fails") {
    req.url = h2.url("/hello.txt");
    req.http2 = false;
    auto r = daemon::fetch_blocking(req);
    CHECK_FALSE(r.ok());
    CHECK(r.http_version != "2");
  }
  SECTION("an HTTP/1.1 TLS server, http2 false: version 1.1") {
    req.url = h1.url("/");
    req.http2 = false;
    auto r = daemon::fetch_blocking(req);
    INFO(r.error_kind << ": " << r.error_message);
    CHECK(r.status == 200);
    CHECK(r.http_version == "1.1");
  }
  SECTION("an HTTP/1.1 TLS server, http2 true: ALPN falls back to 1.1") {
    req.url = h1.url("/");
    auto r = daemon::fetch_blocking(req);
    INFO(r.error_kind << ": " << r.error_message);
    CHECK(r.status == 200);
    CHECK(r.body == "hello over 1.1");
    CHECK(r.http_version == "1.1");
  }
}

TEST_CASE("http_version reports what the server answered: 1.0 and 1.1 over plain HTTP",
          "[transport]") {
  RawServer raw([](RawServer& self, int fd, const std::string& head) {
    std::string version = path_of(head) == "/old" ? "1.0" : "1.1";
    self.send(fd,
              "HTTP/" + version + " 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    return false;
  });
  daemon::FetchRequest req;
  req.timeout = 5s;
  req.url = raw.url("/old");
  auto r = daemon::fetch_blocking(req);
  CHECK(r.status == 200);
  CHECK(r.http_version == "1.0");
  req.url = raw.url("/new");
  r = daemon::fetch_blocking(req);
  CHECK(r.status == 200);
  CHECK(r.http_version == "1.1");
}

TEST_CASE("a 304 on a kept-open connection comes back at once", "[transport]") {
  // Keep-alive on, 5 s: a client that waited for the server to close would take 5 s.
  test::HttpServer srv;
  srv.server().set_keep_alive_timeout(5);
  std::atomic<int> not_modified{0};
  srv.server().Get("/page", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_header_value("If-None-Match") == "\"v1\"") {
      ++not_modified;
      res.status = 304;
      res.set_header("ETag", "\"v1\"");
      return;
    }
    res.set_header("ETag", "\"v1\"");
    res.set_content(std::string(5000, 'p'), "text/plain");
  });
  srv.start(100);
  // A raw server's 304 that carries the Content-Length of the 200 it stands for (RFC 9110
  // allows it; a 304 has no body all the same), on a connection it keeps open.
  RawServer raw([](RawServer& self, int fd, const std::string&) {
    return self.send(fd,
                     "HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 1234\r\n"
                     "Connection: keep-alive\r\n\r\n");
  });

  daemon::FetchRequest first, conditional;
  first.url = conditional.url = srv.url("/page");
  first.timeout = conditional.timeout = 10s;
  conditional.headers = {{"If-None-Match", "\"v1\""}};
  {
    Loop loop;
    daemon::Fetcher fetcher(loop.io);
    std::vector<Timed> out;
    loop.start(fetch_in_order(fetcher, {first, conditional, conditional}, &out));
    loop.run();
    REQUIRE(out.size() == 3);
    CHECK(out[0].result.status == 200);
    for (std::size_t i = 1; i < 3; ++i) {
      INFO("conditional fetch " << i << ": " << out[i].result.error_kind << " "
                                << out[i].result.error_message);
      CHECK(out[i].result.ok());
      CHECK(out[i].result.status == 304);
      CHECK(out[i].result.body.empty());
      CHECK(out[i].took_ms < 1000);
      WARN("304 on a kept-open connection (httplib): " << out[i].took_ms << " ms");
    }
  }
  CHECK(not_modified == 2);

  conditional.url = raw.url("/page");
  auto start = SteadyClock::now();
  auto r = daemon::fetch_blocking(conditional);
  double took = ms_since(start);
  INFO(r.error_kind << ": " << r.error_message);
  CHECK(r.ok());
  CHECK(r.status == 304);
  CHECK(r.body.empty());
  CHECK(took < 1000);
  WARN("304 with a Content-Length, connection kept open: " << took << " ms");
}

TEST_CASE("a proxy carries the request that names it, not the direct ones on the same Fetcher",
          "[transport][proxy]") {
  std::mutex mu;
  std::vector<std::string> origin_saw;
  test::HttpServer origin;
  origin.server().set_keep_alive_timeout(2);
  origin.server().Get("/x", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    origin_saw.push_back(req.path);
    res.set_content("x", "text/plain");
  });
  origin.start(100);
  test::ProxyServer proxy;
  daemon::FetchRequest direct, proxied;
  direct.url = proxied.url = origin.url("/x");
  direct.timeout = proxied.timeout = 5s;
  proxied.proxy = proxy.url();
  {
    Loop loop;
    daemon::Fetcher fetcher(loop.io);
    std::vector<Timed> out;
    // Direct first: its kept-alive connection to the origin must not carry the proxied one,
    // nor the proxy's connection the direct one after it.
    loop.start(fetch_in_order(fetcher, {direct, proxied, direct}, &out));
    loop.run();
    REQUIRE(out.size() == 3);
    for (auto& t : out) {
      INFO(t.result.error_kind << ": " << t.result.error_message);
      CHECK(t.result.status == 200);
      CHECK(t.result.body == "x");
    }
  }
  CHECK(proxy.requests() ==
        std::vector<std::string>{"GET http://127.0.0.1:" + std::to_string(origin.port()) +
                                 "/x HTTP/1.1"});
  std::lock_guard lock(mu);
  CHECK(origin_saw.size() == 3);
}

TEST_CASE("an https URL goes through an HTTP proxy with CONNECT", "[transport][proxy]") {
  test::TestCerts certs;
  test::TlsHttpServer origin(certs.server_cert, certs.server_key);
  origin.server().Get("/s", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("tunnelled", "text/plain");
  });
  origin.start();
  test::ProxyServer proxy;
  daemon::FetchRequest req;
  req.url = origin.url("/s");
  req.timeout = 5s;
  req.ca_file = certs.ca_cert;
  req.proxy = proxy.url();
  auto r = daemon::fetch_blocking(req);
  INFO(r.error_kind << ": " << r.error_message);
  CHECK(r.status == 200);
  CHECK(r.body == "tunnelled");
  auto seen = proxy.requests();
  REQUIRE(seen.size() == 1);
  CHECK_THAT(seen[0],
             Catch::StartsWith("CONNECT 127.0.0.1:" + std::to_string(origin.port()) + " HTTP/1."));
}

TEST_CASE("an https:// proxy (TLS to the proxy) trusted through ca_file", "[transport][proxy]") {
  test::TestCerts certs;
  test::HttpServer origin;
  origin.server().Get("/p", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("via tls proxy", "text/plain");
  });
  origin.start();
  test::ProxyServer proxy(test::ProxyServer::Mode::kHttp, certs.server_cert, certs.server_key);
  REQUIRE_THAT(proxy.url(), Catch::StartsWith("https://"));
  daemon::FetchRequest req;
  req.url = origin.url("/p");
  req.timeout = 5s;
  req.ca_file = certs.ca_cert;
  req.proxy = proxy.url();
  auto r = daemon::fetch_blocking(req);
  INFO(r.error_kind << ": " << r.error_message);
  CHECK(r.status == 200);
  CHECK(r.body == "via tls proxy");
  CHECK(proxy.seen("GET " + origin.url("/p")) == 1);
}

TEST_CASE("socks5:// sends the address resolved here, socks5h:// the host name",
          "[transport][proxy]") {
  test::HttpServer origin;
  origin.server().Get("/s", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("socks", "text/plain");
  });
  origin.start();
  test::ProxyServer socks(test::ProxyServer::Mode::kSocks5);
  const std::string port = std::to_string(origin.port());
  daemon::FetchRequest req;
  req.timeout = 5s;

  req.url = origin.url("/s");
  req.proxy = "socks5://" + socks.address();
  auto r = daemon::fetch_blocking(req);
  INFO(r.error_kind << ": " << r.error_message);
  CHECK(r.status == 200);
  CHECK(r.body == "socks");
  CHECK(socks.requests() == std::vector<std::string>{"CONNECT 127.0.0.1:" + port});

  // The name goes to the proxy unresolved (the proxy resolves localhost to reach the origin).
  req.url = "http://localhost:" + port + "/s";
  req.proxy = "socks5h://" + socks.address();
  r = daemon::fetch_blocking(req);
  INFO(r.error_kind << ": " << r.error_message);
  CHECK(r.status == 200);
  CHECK(r.body == "socks");
  CHECK(socks.requests() ==
        std::vector<std::string>{"CONNECT 127.0.0.1:" + port, "CONNECT localhost:" + port});
}

TEST_CASE("scraperd run --once: the job with proxy: goes through it, its neighbour does not",
          "[transport][proxy][cli]") {
  std::mutex mu;
  std::vector<std::string> origin_saw;
  test::HttpServer origin;
  origin.server().set_keep_alive_timeout(2);
  origin.server().Get(R"(/(direct|proxied)/(\d+))",
                      [&](const httplib::Request& req, httplib::Response& res) {
                        std::lock_guard lock(mu);
                        origin_saw.push_back(req.path);
                        res.set_content("ok", "text/plain");
                      });
  origin.start(100);
  test::ProxyServer proxy;
  test::TempDir dir;
  // One request at a time to the origin (its host:port is shared): a connection kept alive by
  // one job is there for the other's next request.
  auto cfg = dir.write("jobs.yaml",
                       "api: {listen: ''}\n"
                       "defaults: {robots: ignore, retries: {max: 0}, timeout: 5s,\n"
                       "           per_host: {rate: 1000/s, burst: 100, concurrency: 1}}\n"
                       "jobs:\n"
                       "  - name: direct\n    every: 1h\n    url: '" +
                           origin.url("/direct/{1..3}") +
                           "'\n"
                           "  - name: proxied\n    every: 1h\n    url: '" +
                           origin.url("/proxied/{1..2}") + "'\n    proxy: '" + proxy.url() + "'\n");
  auto db = dir.file("p.db");
  auto o = run_scraperd(dir, {"run", "--once", "--config", cfg, "--db", db});
  INFO(o.err);
  REQUIRE(o.exit_code == 0);
  CHECK(test::sql1(db, "SELECT count(*) FROM results") == "5");
  auto seen = proxy.requests();
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::string>{"GET " + origin.url("/proxied/1") + " HTTP/1.1",
                                         "GET " + origin.url("/proxied/2") + " HTTP/1.1"});
  std::lock_guard lock(mu);
  CHECK(origin_saw.size() == 5);
}

TEST_CASE("Authorization and Cookie from headers do not follow a redirect to another origin",
          "[transport]") {
  std::mutex mu;
  std::map<std::string, std::string> seen;  // "A /path" → "auth|cookie"
  test::HttpServer a, b;
  auto record = [&](const std::string& who, const httplib::Request& req) {
    std::lock_guard lock(mu);
    seen[who + " " + req.path] =
        req.get_header_value("Authorization") + "|" + req.get_header_value("Cookie");
  };
  b.server().Get("/landing", [&](const httplib::Request& req, httplib::Response& res) {
    record("B", req);
    res.set_content("b", "text/plain");
  });
  b.start();
  const std::string to_b = b.url("/landing");
  a.server().Get("/to-b", [&, to_b](const httplib::Request& req, httplib::Response& res) {
    record("A", req);
    res.set_redirect(to_b);  // same host, another port: another origin
  });
  a.server().Get("/to-a", [&](const httplib::Request& req, httplib::Response& res) {
    record("A", req);
    res.set_redirect("/landing");
  });
  a.server().Get("/landing", [&](const httplib::Request& req, httplib::Response& res) {
    record("A", req);
    res.set_content("a", "text/plain");
  });
  a.start();
  daemon::FetchRequest req;
  req.timeout = 5s;
  req.headers = {{"Authorization", "Bearer s3cret"}, {"Cookie", "session=42"}};

  req.url = a.url("/to-b");
  auto r = daemon::fetch_blocking(req);
  CHECK(r.status == 200);
  CHECK(r.body == "b");
  CHECK(r.final_url == to_b);
  req.url = a.url("/to-a");
  r = daemon::fetch_blocking(req);
  CHECK(r.status == 200);
  CHECK(r.body == "a");

  std::lock_guard lock(mu);
  CHECK(seen["A /to-b"] == "Bearer s3cret|session=42");
  CHECK(seen["B /landing"] == "|");  // neither crossed to the other origin
  CHECK(seen["A /to-a"] == "Bearer s3cret|session=42");
  CHECK(seen["A /landing"] == "Bearer s3cret|session=42");  // both kept within the origin
}

TEST_CASE("a CookieJar carries a cookie set on a redirect to later requests, and no jar sends none",
          "[transport]") {
  test::HttpServer srv;
  srv.server().set_keep_alive_timeout(2);
  srv.server().Get("/login", [](const httplib::Request&, httplib::Response& res) {
    res.set_header("Set-Cookie", "sid=abc123; Path=/");
    res.set_redirect("/echo");
  });
  srv.server().Get("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("cookie=[" + req.get_header_value("Cookie") + "]", "text/plain");
  });
  srv.start(100);
  daemon::FetchRequest login, echo;
  login.url = srv.url("/login");
  echo.url = srv.url("/echo");
  login.timeout = echo.timeout = 5s;
  {
    Loop loop;
    daemon::Fetcher fetcher(loop.io);
    daemon::CookieJar jar, fresh;
    std::vector<Timed> out;
    login.cookies = echo.cookies = &jar;
    daemon::FetchRequest fresh_echo = echo, no_jar_login = login, no_jar_echo = echo;
    fresh_echo.cookies = &fresh;
    no_jar_login.cookies = no_jar_echo.cookies = nullptr;
    loop.start(fetch_in_order(fetcher, {login, echo, fresh_echo, no_jar_login, no_jar_echo}, &out));
    loop.run();
    REQUIRE(out.size() == 5);
    for (auto& t : out) CHECK(t.result.status == 200);
    CHECK(out[0].result.body == "cookie=[sid=abc123]");  // set by the 302, sent on its target
    CHECK(out[1].result.body == "cookie=[sid=abc123]");  // the jar's next request
    CHECK(out[2].result.body == "cookie=[]");            // another jar
    CHECK(out[3].result.body == "cookie=[]");            // no jar: not even across the redirect
    CHECK(out[4].result.body == "cookie=[]");
  }
}

TEST_CASE("a User-Agent in the job's headers is the one User-Agent line sent", "[transport]") {
  RawServer raw([](RawServer& self, int fd, const std::string&) {
    self.send(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
    return false;
  });
  auto job_request = [&](const std::string& headers) {
    auto loaded =
        config::load_string("jobs:\n  - name: ua\n    every: 1h\n    url: '" + raw.url("/ua") +
                                "'\n    user_agent: 'configured/1.0'\n" + headers,
                            "ua.yaml");
    for (const auto& e : loaded.errors) FAIL(e.str());
    return daemon::request_for(loaded.config->jobs.at(0), raw.url("/ua"));
  };
  for (const std::string headers :
       {"    headers: {User-Agent: 'from-headers/2.0'}\n",
        "    headers: {user-agent: 'from-headers/2.0', X-Other: 'y'}\n", ""}) {
    INFO(headers);
    auto req = job_request(headers);
    req.timeout = 5s;
    auto before = raw.heads().size();
    auto r = daemon::fetch_blocking(req);
    CHECK(r.status == 200);
    auto heads = raw.heads();
    REQUIRE(heads.size() == before + 1);
    auto [count, value] = header_lines(heads.back(), "User-Agent");
    INFO(heads.back());
    CHECK(count == 1);
    CHECK(value == (headers.empty() ? "configured/1.0" : "from-headers/2.0"));
  }
}

TEST_CASE("Accept-Encoding offers gzip, and a gzip body comes back decoded", "[transport]") {
  std::string page;
  for (int i = 0; i < 2000; ++i) page += "line " + std::to_string(i) + " of a compressible page\n";
  const std::string packed = test::gzip(page);
  REQUIRE(packed.size() < page.size() / 4);
  RawServer raw([&](RawServer& self, int fd, const std::string&) {
    self.send(fd,
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Encoding: gzip\r\n"
              "Content-Length: " +
                  std::to_string(packed.size()) + "\r\nConnection: close\r\n\r\n" + packed);
    return false;
  });
  // cpp-httplib compresses when the request says it may (gzip or brotli, its choice).
  std::mutex mu;
  std::string httplib_saw;
  test::HttpServer srv;
  srv.server().Get("/page", [&](const httplib::Request& req, httplib::Response& res) {
    {
      std::lock_guard lock(mu);
      httplib_saw = req.get_header_value("Accept-Encoding");
    }
    res.set_content(page, "text/plain");
  });
  srv.start();

  daemon::FetchRequest req;
  req.timeout = 5s;
  req.url = raw.url("/gz");
  auto r = daemon::fetch_blocking(req);
  INFO(r.error_kind << ": " << r.error_message);
  CHECK(r.status == 200);
  CHECK(r.body.size() == page.size());
  CHECK(r.body == page);
  auto heads = raw.heads();
  REQUIRE(heads.size() == 1);
  auto [count, accept] = header_lines(heads[0], "Accept-Encoding");
  CHECK(count == 1);
  CHECK_THAT(accept, Catch::Contains("gzip"));

  req.url = srv.url("/page");
  r = daemon::fetch_blocking(req);
  CHECK(r.status == 200);
  CHECK(r.body == page);
  std::lock_guard lock(mu);
  CHECK_THAT(httplib_saw, Catch::Contains("gzip"));
}

namespace {

// Waits `at_least`, then until `condition` holds (looked at every 10 ms, for 10 s at most), then
// records the time and calls `act`.
asio::awaitable<void> when_then(std::function<bool()> condition, std::chrono::milliseconds at_least,
                                std::function<void()> act, SteadyClock::time_point* acted_at) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor, at_least);
  co_await timer.async_wait(asio::use_awaitable);
  auto give_up = SteadyClock::now() + 10s;
  while (!condition() && SteadyClock::now() < give_up) {
    timer.expires_after(10ms);
    co_await timer.async_wait(asio::use_awaitable);
  }
  *acted_at = SteadyClock::now();
  act();
}

}  // namespace

TEST_CASE("cancel(group) ends that group's transfers at once as cancelled while the others go on",
          "[transport]") {
  test::HostileServer silent;  // /silent reads the request and never answers
  test::HttpServer slow;
  slow.server().Get("/slow", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(1500ms);
    res.set_content("slow but sure", "text/plain");
  });
  std::atomic<int> slow_seen{0};
  slow.server().set_pre_routing_handler([&](const httplib::Request&, httplib::Response&) {
    ++slow_seen;
    return httplib::Server::HandlerResponse::Unhandled;
  });
  slow.start();

  Loop loop;
  daemon::Fetcher fetcher(loop.io);
  daemon::FetchRequest hang, other;
  hang.url = silent.url("/silent");
  hang.timeout = 20s;
  hang.group = 7;
  other.url = slow.url("/slow");
  other.timeout = 20s;
  other.group = 8;
  std::vector<Timed> hung(3);
  Timed answered;
  for (auto& t : hung) loop.start(timed_fetch(fetcher, hang, &t));
  loop.start(timed_fetch(fetcher, other, &answered));
  SteadyClock::time_point cancelled_at;
  std::size_t in_flight_before = 0, in_flight_after = 0;
  // About 200 ms in, once every request has reached its server: cancel group 7.
  loop.start(when_then([&] { return silent.requests() >= 3 && slow_seen >= 1; }, 200ms,
                       [&] {
                         in_flight_before = fetcher.in_flight();
                         fetcher.cancel(7);
                         in_flight_after = fetcher.in_flight();
                       },
                       &cancelled_at));
  auto start = SteadyClock::now();
  loop.run();
  double total = ms_since(start);

  CHECK(silent.requests() == 3);
  CHECK(in_flight_before == 4);
  CHECK(in_flight_after == 1);
  for (auto& t : hung) {
    INFO(t.result.error_kind << ": " << t.result.error_message);
    REQUIRE(t.done);
    CHECK(t.result.error_kind == "cancelled");
    CHECK(t.result.status == 0);
    double after_cancel = ms(t.ended - cancelled_at);
    CHECK(after_cancel < 1000);  // at once; the timeout was 20 s
    WARN("cancelled " << after_cancel << " ms after cancel(7)");
  }
  INFO(answered.result.error_kind << ": " << answered.result.error_message);
  CHECK(answered.result.ok());
  CHECK(answered.result.status == 200);
  CHECK(answered.result.body == "slow but sure");
  CHECK(answered.ended > cancelled_at);  // it was in flight when group 7 was cancelled
  CHECK(total < 10000);
}

TEST_CASE("close() ends every transfer as cancelled, and every fetch after it at once",
          "[transport]") {
  test::HostileServer silent;
  Loop loop;
  daemon::Fetcher fetcher(loop.io);
  daemon::FetchRequest hang;
  hang.url = silent.url("/silent");
  hang.timeout = 20s;
  std::vector<Timed> hung(3);
  for (std::size_t i = 0; i < hung.size(); ++i) {
    daemon::FetchRequest r = hang;
    r.group = i + 1;  // three groups, and close() takes them all
    loop.start(timed_fetch(fetcher, r, &hung[i]));
  }
  SteadyClock::time_point closed_at;
  Timed late;
  loop.start(when_then([&] { return silent.requests() >= 3; }, 200ms,
                       [&] {
                         fetcher.close();
                         loop.start(timed_fetch(fetcher, hang, &late));
                       },
                       &closed_at));
  loop.run();
  for (auto& t : hung) {
    INFO(t.result.error_kind << ": " << t.result.error_message);
    REQUIRE(t.done);
    CHECK(t.result.error_kind == "cancelled");
    CHECK(ms(t.ended - closed_at) < 1000);
  }
  REQUIRE(late.done);
  CHECK(late.result.error_kind == "cancelled");
  CHECK(late.took_ms < 500);  // not sent at all
  CHECK(silent.requests() == 3);
  CHECK(fetcher.in_flight() == 0);
}

TEST_CASE("a close-delimited body that stalls past the timeout is never a result", "[transport]") {
  // Headers without Content-Length or chunking (the body ends when the connection closes),
  // some of the body, then nothing: the connection stays open past the client's deadline.
  RawServer stall([](RawServer& self, int fd, const std::string& head) {
    std::size_t n = std::stoul(path_of(head).substr(std::string("/stall/").size()));
    std::string status = n % 2 ? "HTTP/1.1 200 OK\r\nConnection: close\r\n" : "HTTP/1.0 200 OK\r\n";
    if (self.send(fd, status + "Content-Type: text/plain\r\n\r\n" + std::string(n * 100, 'b')))
      self.hold(30s);
    return false;
  });
  Loop loop;
  daemon::Fetcher fetcher(loop.io);
  std::vector<Timed> out(20);
  for (std::size_t i = 0; i < out.size(); ++i) {
    daemon::FetchRequest req;
    req.url = stall.url("/stall/" + std::to_string(i));
    req.timeout = 1s;
    loop.start(timed_fetch(fetcher, req, &out[i]));
  }
  auto start = SteadyClock::now();
  loop.run();
  CHECK(ms_since(start) < 10000);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const auto& r = out[i].result;
    INFO("stall " << i << ": kind '" << r.error_kind << "' (" << r.error_message << "), status "
                  << r.status << ", " << r.body.size() << " bytes");
    CHECK((r.error_kind == "timeout" || r.error_kind == "read"));
    CHECK_FALSE(r.ok());
    CHECK(r.status == 0);
    CHECK(r.body.empty());
  }
}

TEST_CASE("SIGTERM with 1,000 transfers in flight: exit 0, one final row per URL",
          "[transport][cli]") {
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < 4096 && files.rlim_max > files.rlim_cur) {
    files.rlim_cur = std::min<rlim_t>(files.rlim_max, 8192);
    ::setrlimit(RLIMIT_NOFILE, &files);  // the server here holds 1,000, so does the child
  }
  HangServer hang;
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml",
                       "concurrency: 1000\nshutdown_timeout: 1s\napi: {listen: ''}\n"
                       "jobs:\n  - name: hang\n    every: 1s\n    robots: ignore\n"
                       "    retries: {max: 0}\n    timeout: 60s\n    url: '" +
                           hang.url("/hang/{1..1000}") +
                           "'\n    per_host: {rate: 100000/s, burst: 10000, concurrency: 1000}\n");
  auto db = dir.file("h.db");
  pid_t pid = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);
  bool most = test::eventually([&] { return hang.requests() >= 950; }, 60s);
  INFO(hang.requests() << " requests seen, " << hang.open_connections() << " connections open; "
                       << test::slurp(dir.file("e")));
  REQUIRE(most);
  std::this_thread::sleep_for(300ms);  // the stragglers
  WARN(hang.requests() << " of 1000 requests in flight at SIGTERM");
  auto start = SteadyClock::now();
  ::kill(pid, SIGTERM);
  int rc = test::wait_exit(pid);
  double took = ms_since(start);
  INFO(test::slurp(dir.file("e")));
  CHECK(rc == 0);
  CHECK(took < 8000);  // shutdown_timeout 1 s, then rows and exit
  WARN("exit " << took << " ms after SIGTERM");
  // Every URL exactly once, in results or errors.
  const std::string finals =
      "(SELECT url FROM results WHERE job = 'hang' UNION ALL "
      "SELECT url FROM errors WHERE job = 'hang')";
  CHECK(test::sql1(db, "SELECT count(*) FROM " + finals) == "1000");
  CHECK(test::sql1(db, "SELECT count(DISTINCT url) FROM " + finals) == "1000");
  // Nothing ever answered: all of them are cancelled rows.
  CHECK(test::sql1(db, "SELECT count(*) FROM errors WHERE kind = 'cancelled'") == "1000");
  CHECK(test::sql1(db, "SELECT count(*) FROM runs WHERE status = 'running'") == "0");
  CHECK(test::sql1(db, "SELECT count(*) FROM runs WHERE status = 'cancelled'") == "1");
}
