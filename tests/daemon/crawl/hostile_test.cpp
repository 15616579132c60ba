// The hostile world: misbehaving servers end in a bounded, classified error or a sane result
// within the job's deadline, never a crash, a hang or unbounded memory. The figures of
// docs/reliability.md come from this table (`daemon_tests "[hostile]" -s` prints them).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "daemon/extract/extract.h"
#include "daemon/crawl/fetch.h"
#include "tests/support/hostile_server.h"
#include "tests/support/http_server.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using namespace std::chrono_literals;

namespace {

// Resets the kernel's peak-RSS mark of this process (Linux ≥ 4.0), so the next peak_rss_kb()
// measures from now.
void reset_peak_rss() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

// Peak resident memory of this process since the last reset (kB), from /proc.
long peak_rss_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

struct Case {
  const char* path;
  const char* kind;  // expected error kind; "" when a response is expected
  int status;        // expected status when kind is "" (or with kind http)
  const char* what;
};

constexpr Case kCases[] = {
    {"/drip", "timeout", 0, "a body dripping a byte every 100 ms"},
    {"/drip-headers", "timeout", 0, "headers dripping a byte a second"},
    {"/silent", "timeout", 0, "accepts, reads the request, never answers"},
    {"/endless", "too_large", 0, "an endless chunked body"},
    {"/huge-length", "too_large", 0, "Content-Length: 10 GB"},
    {"/gzip-bomb", "too_large", 0, "64 MB of zeros gzipped to 64 KB"},
    {"/short-body", "read", 0, "Content-Length 1000, 10 bytes, then close"},
    {"/long-body", "", 200, "Content-Length 10, 1000 bytes sent: the 10 are the body"},
    {"/bad-status", "read", 0, "a malformed status line"},
    {"/not-http", "read", 0, "an SSH banner instead of HTTP"},
    // curl bounds one header line (100 KB); fetch.cpp's header callback bounds their total
    // (256 KB).
    {"/long-header", "too_large", 0, "one header line of 1 MB"},
    {"/endless-headers", "too_large", 0, "header lines without end"},
    {"/big-headers", "", 200, "200 KB of headers in 1 KB lines"},
    {"/bad-chunk", "read", 0, "a chunk size that is not hex"},
    {"/reset", "read", 0, "a reset (RST) in the middle of the body"},
    {"/close", "read", 0, "a close before any header"},
    {"/redirect-loop", "redirect_loop", 0, "two URLs redirecting to each other"},
    {"/redirect-ftp", "http", 301, "a redirect to ftp://"},
    {"/empty", "", 200, "an empty 200"},
    {"/binary", "", 200, "64 KB of binary bytes labelled text/html"},
    {"/latin1", "", 200, "windows-1252 bytes with no charset"},
    {"/status-999", "", 999, "status 999"},
    {"/no-length-close", "", 200, "HTTP/1.0, body until the connection closes"},
};

}  // namespace

TEST_CASE("hostile servers: each misbehaviour ends classified, within the deadline", "[hostile]") {
  test::HostileServer hostile;
  daemon::FetchRequest req;
  req.connect_timeout = 1s;
  req.timeout = 2s;
  req.max_body = 1024 * 1024;
  req.user_agent = "scraperd-test";
  // A job that extracts: what comes back must not upset the extractor either.
  std::vector<config::Field> fields(2);
  fields[0].name = "title";
  fields[0].xpath = "//h1";
  fields[1].name = "links";
  fields[1].xpath = "//a/@href";
  fields[1].all = true;
  daemon::FieldExtractor extractor(fields);

  for (const auto& c : kCases) {
    DYNAMIC_SECTION(c.path) {
      req.url = hostile.url(c.path);
      reset_peak_rss();  // the server's own 64 MB bomb input is not the client's memory
      long before = peak_rss_kb();
      auto start = std::chrono::steady_clock::now();
      auto r = daemon::fetch_blocking(req);
      auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      INFO(c.what << ": kind '" << r.error_kind << "' (" << r.error_message << "), status "
                  << r.status << ", " << r.body.size() << " bytes, " << took << " s");
      CHECK(r.error_kind == c.kind);
      if (c.status) CHECK(r.status == c.status);
      CHECK(took < 6.0);  // the 2 s deadline, with room for a loaded machine
      CHECK(r.body.size() <= req.max_body);
      if (r.ok()) {
        auto e = extractor.extract(r.body, r.content_type);
        CHECK(e.problem.empty());
      }
      long grew_mb = (peak_rss_kb() - before) / 1024;
      CHECK(grew_mb < 64);  // max_body is 1 MB: nothing may be held whole
      WARN(c.path << "  " << (r.ok() ? "status " + std::to_string(r.status) : r.error_kind) << "  "
                  << static_cast<int>(took * 1000) << " ms  +" << grew_mb << " MB peak  (" << c.what
                  << ")");
    }
  }
}

TEST_CASE("hostile network: refused, unresolvable, self-signed TLS, TLS to a plain port",
          "[hostile]") {
  test::HostileServer plain;
  daemon::FetchRequest req;
  req.connect_timeout = 1s;
  req.timeout = 2s;
  req.user_agent = "scraperd-test";

  req.url = "http://127.0.0.1:" + std::to_string(test::refused_port()) + "/";
  CHECK(daemon::fetch_blocking(req).error_kind == "connect");

  req.url = "http://no-such-host.invalid/";
  auto r = daemon::fetch_blocking(req);
  CHECK(r.error_kind == "dns");
  CHECK(r.elapsed < 4s);

  // A self-signed certificate: refused by the system CAs, kind tls.
  test::TempDir dir;
  auto key = dir.file("key.pem"), cert = dir.file("cert.pem");
  std::string make_cert =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
      "-keyout " +
      key + " -out " + cert + " 2>/dev/null";
  REQUIRE(std::system(make_cert.c_str()) == 0);  // the test's own tool, not the daemon's
  httplib::SSLServer tls(cert.c_str(), key.c_str());
  REQUIRE(tls.is_valid());
  tls.Get("/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hi", "text/plain");
  });
  int tls_port = tls.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { tls.listen_after_bind(); });
  while (!tls.is_running()) std::this_thread::sleep_for(1ms);
  req.url = "https://127.0.0.1:" + std::to_string(tls_port) + "/";
  r = daemon::fetch_blocking(req);
  tls.stop();
  serving.join();
  CHECK(r.error_kind == "tls");
  CHECK_THAT(r.error_message, Catch::Contains("TLS"));

  // TLS to a port that speaks plain HTTP: the handshake fails.
  req.url = "https://127.0.0.1:" + std::to_string(plain.port()) + "/empty";
  r = daemon::fetch_blocking(req);
  CHECK(r.error_kind == "tls");
  CHECK(r.elapsed < 4s);
}
