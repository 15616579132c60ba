// RetryLoop: the one loop of attempts behind every request the daemon sends (a page, a
// robots.txt, a webhook). Each attempt waits for its host (Frontier: rate, caps, pauses), is
// sent on the loop (Fetcher), and after a failure the loop
//   - pauses the host when a 429 or 503 says Retry-After, and tries again without using up a
//     retry (at most retries.max_stall of such pauses per request);
//   - otherwise backs off (retry.h) and tries again while retries are left and the failure is
//     worth it;
//   - otherwise gives up.
// Each failed attempt can leave a row (the caller says which). The pure rules are in retry.h.
//
//   RetryPlan plan{.host = "example.com:443", .limits = job.per_host, .retries = job.retries,
//                  .request = [&] { return request_for(job, url); },
//                  .done = [](const FetchResult& r) { return r.ok() && r.status < 400; },
//                  .failed = [&](const Attempt& a) { return error_row(a); }};
//   Sent sent = co_await loop.send(plan);
#pragma once

#include <asio/awaitable.hpp>
#include <functional>
#include <optional>
#include <random>
#include <string>

#include "config/config.h"
#include "daemon/core/metrics.h"
#include "daemon/core/naps.h"
#include "daemon/core/row_sink.h"
#include "daemon/crawl/fetch.h"
#include "daemon/crawl/frontier.h"
#include "daemon/render/render.h"
#include "storage/writer.h"

namespace scraperd::daemon {

// A failed attempt, for its row and log line.
struct Attempt {
  int number = 1;                      // 1-based
  storage::Clock::time_point sent_at;  // when it went out, after its wait for its host
  const FetchResult& result;
  // What happens next, to append to the message: "; retry 1 of 3 in 1.2s", "; Retry-After:
  // host:80 paused for 5s", "; Retry-After '...' is not seconds or a date: ignored" ...
  std::string next;
  bool last = false;  // no other attempt follows
};

struct RetryPlan {
  std::string host;  // host:port, the frontier's key
  config::PerHost limits;
  config::Retries retries;
  // The job the requests metric counts this request under; empty: not counted (a
  // robots.txt, a webhook).
  std::string counted_job;
  std::function<FetchRequest()> request;  // each attempt's request
  // Set for `render: chromium` jobs: each attempt is loaded in the browser (render/), not
  // fetched; everything else (the host's turn, retries, rows) is the same.
  const config::Render* render = nullptr;
  std::function<bool(const FetchResult&)> done;  // true: this response needs no retry
  std::function<std::optional<storage::Row>(const Attempt&)> failed;  // its row, if any
};

// How a request's attempts ended.
struct Sent {
  enum class End {
    kDone,          // a response `done` accepted: `result`
    kFailed,        // the last attempt failed: `result`, its row stored
    kNotSent,       // stopping: attempt `attempt` was never sent
    kCut,           // stopping cut attempt `attempt` short (Fetcher::close): `result`
    kRetryNotSent,  // stopping during the wait before attempt `attempt`
  };
  End end = End::kDone;
  FetchResult result;
  int attempt = 1;
  storage::Clock::time_point sent_at;  // of attempt `attempt` (not sent: when it stopped)
};

class RetryLoop {
 public:
  // `renderer`: for plans with `render`; may be null when none has.
  RetryLoop(Frontier& frontier, Fetcher& fetcher, render::Renderer* renderer, Naps& naps,
            RowSink& rows, Metrics& metrics)
      : frontier_(frontier),
        fetcher_(fetcher),
        renderer_(renderer),
        naps_(naps),
        rows_(rows),
        metrics_(metrics) {}

  asio::awaitable<Sent> send(const RetryPlan& plan);

 private:
  Frontier& frontier_;
  Fetcher& fetcher_;
  render::Renderer* renderer_;
  Naps& naps_;
  RowSink& rows_;
  Metrics& metrics_;
  std::mt19937_64 random_{std::random_device{}()};
};

}  // namespace scraperd::daemon
