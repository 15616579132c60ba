// The retry loop alone: a Frontier, a Fetcher and a real in-process server; no job run, no
// scheduler. Rows of failed attempts go to a real SQLite file.
#include "daemon/crawl/retry_loop.h"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/thread_pool.hpp>
#include <atomic>
#include <catch2/catch.hpp>

#include "tests/support/http_server.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using namespace std::chrono_literals;
using daemon::Sent;

namespace {

struct Loop {
  Loop()
      : writer(dir.file("r.db")),
        rows(writer, pool, {}),
        frontier(io.get_executor(), 8),
        fetcher(io),
        naps(io.get_executor()),
        retry(frontier, fetcher, nullptr, naps, rows, metrics) {}

  // A plan for `url` with `retries` retries, a backoff of 10 ms; each failed attempt a row.
  daemon::RetryPlan plan(const std::string& url, int retries) {
    daemon::RetryPlan p;
    p.host = url.substr(7, url.find('/', 7) - 7);  // http://HOST:PORT/...
    p.retries.max = retries;
    p.retries.backoff = 10ms;
    p.retries.max_backoff = 10ms;
    p.request = [url] {
      daemon::FetchRequest r;
      r.url = url;
      return r;
    };
    p.done = [](const daemon::FetchResult& r) { return r.ok() && r.status < 400; };
    p.failed = [url](const daemon::Attempt& a) -> std::optional<storage::Row> {
      return storage::ErrorRow{.run_id = 0,
                               .job = "j",
                               .url = url,
                               .attempt = a.number,
                               .kind = "http",
                               .status = a.result.status,
                               .message = "HTTP status " + std::to_string(a.result.status) + a.next,
                               .elapsed_ms = 0,
                               .fetched_at = a.sent_at};
    };
    return p;
  }

  Sent send(const daemon::RetryPlan& plan_to_send) {
    Sent sent;
    auto body = [](daemon::RetryLoop* r, const daemon::RetryPlan* p,
                   Sent* out) -> asio::awaitable<void> { *out = co_await r->send(*p); };
    asio::co_spawn(io, body(&retry, &plan_to_send, &sent), asio::detached);
    io.restart();
    io.run_for(20s);
    return sent;
  }

  // The failed attempts' messages, once every row is committed (the writer closes).
  std::vector<std::string> messages() {
    writer.close();
    std::vector<std::string> out;
    for (auto& row : test::sql(dir.file("r.db"), "SELECT message FROM errors ORDER BY id"))
      out.push_back(row["message"]);
    return out;
  }

  test::TempDir dir;
  storage::Writer writer;
  asio::io_context io;
  asio::thread_pool pool{1};
  daemon::RowSink rows;
  daemon::Metrics metrics;
  daemon::Frontier frontier;
  daemon::Fetcher fetcher;
  daemon::Naps naps;
  daemon::RetryLoop retry;
};

}  // namespace

TEST_CASE("retry loop: retryable failures are tried again, each failed attempt a row",
          "[retry_loop]") {
  std::atomic<int> hits{0};
  test::HttpServer site;
  site.server().Get("/flaky", [&](const httplib::Request&, httplib::Response& res) {
    res.status = ++hits <= 2 ? 503 : 200;
    res.set_content("ok", "text/plain");
  });
  site.server().Get("/missing",
                    [&](const httplib::Request&, httplib::Response& res) { res.status = 404; });
  site.start();
  Loop loop;

  Sent sent = loop.send(loop.plan(site.url("/flaky"), 3));
  CHECK(sent.end == Sent::End::kDone);
  CHECK(sent.attempt == 3);
  CHECK(sent.result.status == 200);

  Sent missing = loop.send(loop.plan(site.url("/missing"), 3));  // 404: not worth a retry
  CHECK(missing.end == Sent::End::kFailed);
  CHECK(missing.attempt == 1);

  auto messages = loop.messages();
  REQUIRE(messages.size() == 3);
  CHECK_THAT(messages[0], Catch::StartsWith("HTTP status 503; retry 1 of 3 in"));
  CHECK_THAT(messages[1], Catch::StartsWith("HTTP status 503; retry 2 of 3 in"));
  CHECK(messages[2] == "HTTP status 404");
}

TEST_CASE("retry loop: Retry-After pauses the host without using a retry, and a stop ends it",
          "[retry_loop]") {
  std::atomic<int> hits{0};
  test::HttpServer site;
  site.server().Get("/busy", [&](const httplib::Request&, httplib::Response& res) {
    if (++hits == 1) {
      res.status = 429;
      res.set_header("Retry-After", "1");
    } else {
      res.status = 200;
    }
  });
  site.server().Get("/down",
                    [&](const httplib::Request&, httplib::Response& res) { res.status = 503; });
  site.start();
  Loop loop;

  Sent sent = loop.send(loop.plan(site.url("/busy"), 0));  // no retries, yet a second attempt
  CHECK(sent.end == Sent::End::kDone);
  CHECK(sent.attempt == 2);

  // Stopping while it waits to retry: the retry is not sent.
  auto plan = loop.plan(site.url("/down"), 5);
  plan.retries.backoff = 10s;
  plan.retries.max_backoff = 10s;
  Sent stopped;
  auto body = [](daemon::RetryLoop* r, const daemon::RetryPlan* p,
                 Sent* out) -> asio::awaitable<void> { *out = co_await r->send(*p); };
  asio::co_spawn(loop.io, body(&loop.retry, &plan, &stopped), asio::detached);
  loop.io.restart();
  loop.io.run_for(500ms);
  loop.naps.stop();
  loop.io.run_for(2s);
  CHECK(stopped.end == Sent::End::kRetryNotSent);
  // Most often at attempt 2; the backoff has full jitter (up to 10 s), so a retry or two may
  // have gone out in the 500 ms before the stop. Each is an error row; none after the stop.
  CHECK(stopped.attempt >= 2);

  auto messages = loop.messages();
  REQUIRE(messages.size() == static_cast<std::size_t>(stopped.attempt));
  CHECK_THAT(messages[0], Catch::StartsWith("HTTP status 429; Retry-After: 127.0.0.1:") &&
                              Catch::EndsWith("paused for 1s"));
  for (std::size_t i = 1; i < messages.size(); ++i)
    CHECK_THAT(messages[i],
               Catch::StartsWith("HTTP status 503; retry " + std::to_string(i) + " of 5 in"));
}
