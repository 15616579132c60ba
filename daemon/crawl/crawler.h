// Crawler: runs jobs. One run fetches every URL of the job (and, for `follow` jobs, the links
// it finds, within follow.max_pages and max_depth) as coroutines of one TaskGroup, each URL
// through Politeness (robots.txt, the host's limits, retries), its fields and links read on
// the CPU pool (extract/), and ends as one result row or one final error row with a kind;
// the run itself as a runs row (started, progress, finished). Knows nothing of schedules: the
// scheduler calls run().
//
//   Crawler crawler(io.get_executor(), {politeness, notifier, rows, states, cpu_pool,
//                                       metrics, last_error}, config.concurrency);
//   co_await crawler.run(job, due);
//
// Loop-thread only.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/thread_pool.hpp>
#include <chrono>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.h"
#include "daemon/core/metrics.h"
#include "daemon/core/row_sink.h"
#include "daemon/core/task_group.h"
#include "daemon/crawl/fingerprints.h"
#include "daemon/crawl/politeness.h"
#include "daemon/crawl/url_queue.h"
#include "daemon/crawl/url_state.h"
#include "daemon/extract/extract.h"
#include "daemon/notify/notifier.h"

namespace scraperd::daemon {

// What the crawler uses; all outlive it.
struct CrawlerParts {
  Politeness& politeness;
  Notifier& notifier;
  RowSink& rows;
  UrlStates& states;
  asio::thread_pool& cpu_pool;  // parsing pages
  Metrics& metrics;
  std::string& last_error;  // the daemon's last error line (systemd STATUS=, webhooks)
};

class Crawler {
 public:
  Crawler(asio::any_io_executor executor, CrawlerParts parts, int concurrency);

  // One run of `job`, due at `due`; returns when every URL has its row and the run its
  // runs row.
  asio::awaitable<void> run(const config::Job& job, std::chrono::system_clock::time_point due);

  // Called about once a second: queues the counters of each run going on whose counters
  // moved (RunProgress; skipped when the writer's queue is full, the next call catches up)
  // and returns a line per run for the terminal ("shop: 12/20 URLs, 8.1/s, 1 failed").
  std::vector<std::string> progress();

  // What every run so far came to: run --once's last line and exit status.
  struct Totals {
    std::int64_t urls = 0, ok = 0, changed = 0, failed = 0;
    std::map<std::string, std::int64_t> kinds;  // failed URLs by error kind
  };
  const Totals& totals() const { return totals_; }

  // The stop was cut short (Fetcher::close): requests cut off say `why` in their rows.
  void abandon(std::string why) { abandon_reason_ = std::move(why); }

 private:
  // One run of a job: its counts, its fetches, and for `follow` jobs the URLs seen so far.
  // At most max_active_ fetch coroutines live at once; the rest of the run's URLs wait as
  // plain strings (the job's own by index, followed links packed in `pending`), so a job of
  // 100,000 URLs does not hold 100,000 coroutine frames. A follow run keeps the fingerprints
  // of the URLs it has seen, not the URLs (fingerprints.h).
  struct Run {
    explicit Run(const config::Job& j) : job(j) {}
    const config::Job& job;
    std::int64_t run_id = 0;
    int ok = 0;
    int failed = 0;
    int cancelled = 0;
    TaskGroup* fetches = nullptr;
    int active = 0;                          // fetch coroutines alive
    std::size_t next_own = 0;                // the next of job.urls to start
    UrlQueue pending;                        // followed links to start
    FingerprintSet seen;                     // follow jobs: every URL of the run, its own too
    std::unique_ptr<LinkFinder> links;       // set for follow jobs
    std::unique_ptr<FieldExtractor> fields;  // set for jobs with `extract`
    std::unique_ptr<CookieJar> cookies;      // set for jobs with `cookies: true`
    int urls() const { return static_cast<int>(links ? seen.size() : job.urls.size()); }
    // For the end-of-run summary: results whose content changed, and per error kind the URLs
    // that ended in it and the first of them ("URL: message").
    int changed = 0;
    std::map<std::string, std::pair<int, std::string>> failures;
    Steady::time_point started = Steady::now();
    std::tuple<int, int, int> reported{0, 0, 0};  // ok, failed, urls last sent as RunProgress
  };

  // crawler.cpp: the run as a whole.
  void pump(Run& run);
  asio::awaitable<void> fetch_task(Run& run, std::string url, int depth);
  void queue_links(Run& run, std::vector<std::string> links, const std::string& url, int depth);
  static std::size_t follow_budget(const Run& run);
  void count_failure(Run& run, const std::string& kind, const std::string& url,
                     const std::string& message);
  asio::awaitable<void> cancelled(Run& run, const std::string& url, int attempt,
                                  storage::Clock::time_point at, std::string what,
                                  Steady::duration elapsed = {});
  void log_summary(const Run& run, Steady::duration took);

  // page.cpp: one URL.
  // What a fetch knows of its URL's last state: the memo in memory and, when the fetch needs
  // them, the validators, fields and links of its url_state row.
  struct Before {
    std::optional<UrlMemo> memo;    // nullopt: nothing known of the URL
    bool read = false;              // the row was asked for
    std::optional<KnownUrl> state;  // the row, when read and up to date
  };
  asio::awaitable<void> fetch_one(Run& run, std::string url, int depth);
  asio::awaitable<void> read_state(const Run& run, const std::string& key, Before& before);
  FetchRequest make_request(Run& run, const std::string& url, const Before& before) const;
  asio::awaitable<void> succeeded(Run& run, const std::string& url, int depth, const FetchResult& r,
                                  storage::Clock::time_point fetched_at, Before& before);

  asio::any_io_executor executor_;
  CrawlerParts parts_;
  const int max_active_;     // fetch coroutines alive per run
  std::list<Run*> running_;  // runs going on, for progress()
  Totals totals_;
  std::string abandon_reason_;
};

}  // namespace scraperd::daemon
