// Crawler, the run as a whole: its runs rows, the URLs it starts (pump), the links it
// follows, its summary. One URL's path is in page.cpp.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/crawl/crawler.h"

namespace scraperd::daemon {
namespace {

double seconds(Steady::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

Crawler::Crawler(asio::any_io_executor executor, CrawlerParts parts, int concurrency)
    : executor_(std::move(executor)), parts_(parts), max_active_(std::max(16, 2 * concurrency)) {}

asio::awaitable<void> Crawler::run(const config::Job& job,
                                   std::chrono::system_clock::time_point due) {
  auto start = Steady::now();
  Run run(job);
  run.run_id = parts_.rows.new_run_key();
  parts_.metrics.run_started(
      std::chrono::duration<double>(std::chrono::system_clock::now() - due).count());
  storage::Row started =
      storage::RunStarted{run.run_id, job.name, due, std::chrono::system_clock::now(),
                          static_cast<int>(job.urls.size())};
  co_await parts_.rows.store(std::move(started));
  // Listed while it runs, for progress(); off the list before RunFinished is queued.
  struct Listed {
    Listed(std::list<Run*>& l, Run* r) : list(l), at(l.insert(l.end(), r)) {}
    ~Listed() { list.erase(at); }
    Listed(const Listed&) = delete;
    Listed& operator=(const Listed&) = delete;
    std::list<Run*>& list;
    std::list<Run*>::iterator at;
  };
  std::optional<Listed> listed(std::in_place, running_, &run);
  TaskGroup fetches(executor_, "job '" + job.name + "'");
  run.fetches = &fetches;
  if (!job.extract.empty()) run.fields = std::make_unique<FieldExtractor>(job.extract);
  if (job.cookies) run.cookies = std::make_unique<CookieJar>();
  if (job.follow) {
    run.links = std::make_unique<LinkFinder>(*job.follow);
    for (const auto& url : job.urls) run.seen.insert(fingerprint(url));
  }
  pump(run);
  co_await fetches.wait();
  listed.reset();
  const char* status = run.cancelled > 0 ? "cancelled"
                       : run.failed == 0 ? "ok"
                       : run.ok == 0     ? "failed"
                                         : "partial";
  parts_.metrics.run_ended(job.name, status);
  storage::Row finished =
      storage::RunFinished{run.run_id, std::chrono::system_clock::now(), status,
                           run.ok,     run.failed + run.cancelled,       run.urls()};
  co_await parts_.rows.store(std::move(finished));
  log_summary(run, Steady::now() - start);
  RunOutcome outcome{run.run_id, run.ok, run.failed, run.cancelled, parts_.last_error};
  co_await parts_.notifier.run_ended(job, std::move(outcome));
}

// Starts fetches of the run's waiting URLs while there is room.
void Crawler::pump(Run& run) {
  while (run.active < max_active_) {
    if (run.next_own < run.job.urls.size()) {
      ++run.active;
      run.fetches->spawn(fetch_task(run, run.job.urls[run.next_own++], 0));
    } else if (auto next = run.pending.pop()) {
      ++run.active;
      run.fetches->spawn(fetch_task(run, std::move(next->url), next->depth));
    } else {
      break;
    }
  }
}

asio::awaitable<void> Crawler::fetch_task(Run& run, std::string url, int depth) {
  struct Done {  // also when fetch_one throws
    Crawler* crawler;
    Run& run;
    ~Done() {
      --run.active;
      crawler->pump(run);
    }
  } done{this, run};
  co_await fetch_one(run, std::move(url), depth);
}

// URLs a follow run may hold in all: follow.max_pages, or its own URLs if more.
std::size_t Crawler::follow_budget(const Run& run) {
  return std::max(run.job.urls.size(), static_cast<std::size_t>(run.job.follow->max_pages));
}

// Queues the new ones of `links` (found on `url`, at `depth`) into the run, within budget.
void Crawler::queue_links(Run& run, std::vector<std::string> links, const std::string& url,
                          int depth) {
  const std::size_t budget = follow_budget(run);
  int added = 0;
  for (auto& link : links) {
    if (run.seen.size() >= budget) break;
    if (!run.seen.insert(fingerprint(link))) continue;
    run.pending.push(link, depth + 1);
    ++added;
  }
  spdlog::debug("job '{}': {}: {} links, {} new (depth {})", run.job.name, parts_.rows.shown(url),
                links.size(), added, depth + 1);
  pump(run);
}

// A URL of the run ended in an error of `kind`: counted for the run's summary; the URL
// itself is logged at debug only (the summary names the first one of each kind).
void Crawler::count_failure(Run& run, const std::string& kind, const std::string& url,
                            const std::string& message) {
  ++run.failed;
  const std::string shown_url = parts_.rows.shown(url), shown_message = parts_.rows.shown(message);
  if (auto& [n, first] = run.failures[kind]; n++ == 0) first = shown_url + ": " + shown_message;
  spdlog::debug("job '{}': {}: {}: {}", run.job.name, shown_url, kind, shown_message);
}

// A URL the daemon's stop kept from its end: a `cancelled` error row.
asio::awaitable<void> Crawler::cancelled(Run& run, const std::string& url, int attempt,
                                         storage::Clock::time_point at, std::string what,
                                         Steady::duration elapsed) {
  ++run.cancelled;
  if (auto& [n, first] = run.failures["cancelled"]; n++ == 0)
    first = parts_.rows.shown(url) + ": " + what;
  storage::Row row =
      storage::ErrorRow{.run_id = run.run_id,
                        .job = run.job.name,
                        .url = url,
                        .attempt = attempt,
                        .kind = "cancelled",
                        .status = std::nullopt,
                        .message = "the daemon is stopping; " + what,
                        .elapsed_ms = std::chrono::duration<double, std::milli>(elapsed).count(),
                        .fetched_at = at};
  co_await parts_.rows.store(std::move(row));
}

// The end of a run in a line, then a line per error kind; at warning when every URL
// failed. Also adds the run to the totals of run --once.
void Crawler::log_summary(const Run& run, Steady::duration took) {
  const int failed = run.failed + run.cancelled;
  std::string kinds;
  for (const auto& [kind, f] : run.failures)
    kinds += fmt::format("{}{} {}", kinds.empty() ? "" : ", ", kind, f.first);
  const auto level = run.ok == 0 && failed > 0 ? spdlog::level::warn : spdlog::level::info;
  spdlog::log(level, "job '{}': {} URL{}: {} ok, {} changed, {} failed{} in {:.1f} s", run.job.name,
              run.urls(), run.urls() == 1 ? "" : "s", run.ok, run.changed, failed,
              kinds.empty() ? "" : " (" + kinds + ")", seconds(took));
  for (const auto& [kind, f] : run.failures)
    spdlog::log(level, "job '{}': {} {} failed with {}: {}{}", run.job.name, f.first,
                f.first == 1 ? "URL" : "URLs", kind, f.second,
                f.first > 1 ? fmt::format(" (and {} more)", f.first - 1) : "");
  totals_.urls += run.urls();
  totals_.ok += run.ok;
  totals_.changed += run.changed;
  totals_.failed += failed;
  for (const auto& [kind, f] : run.failures) totals_.kinds[kind] += f.first;
}

std::vector<std::string> Crawler::progress() {
  std::vector<std::string> lines;
  for (Run* run : running_) {
    std::tuple<int, int, int> now{run->ok, run->failed + run->cancelled, run->urls()};
    if (now != run->reported) {
      storage::Row row =
          storage::RunProgress{run->run_id, std::get<0>(now), std::get<1>(now), std::get<2>(now)};
      if (parts_.rows.try_store(row)) run->reported = now;
    }
    const int done = run->ok + run->failed + run->cancelled;
    const double secs = std::max(seconds(Steady::now() - run->started), 0.001);
    std::string line =
        fmt::format("{}: {}/{} URLs, {:.1f}/s", run->job.name, done, run->urls(), done / secs);
    if (int failed = run->failed + run->cancelled; failed > 0)
      line += fmt::format(", {} failed", failed);
    lines.push_back(std::move(line));
  }
  return lines;
}

}  // namespace scraperd::daemon
