// Crawler, one URL: cleared by Politeness (robots.txt), sent with its attempts (the
// RetryLoop), read on the CPU pool, and ended as a result row or a final error row.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

#include "config/url.h"
#include "daemon/core/blocking.h"
#include "daemon/crawl/crawler.h"

namespace scraperd::daemon {
namespace {

double millis(Steady::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// A body without fields larger than this is hashed on the pool, not on the loop (FNV-1a
// takes ~1 ms a megabyte).
constexpr std::size_t kHashOnLoop = 64 * 1024;

// True when the job sends header `name` itself (any case).
bool sets_header(const config::Job& job, std::string_view name) {
  return std::any_of(job.headers.begin(), job.headers.end(), [&](const auto& h) {
    return std::equal(h.first.begin(), h.first.end(), name.begin(), name.end(),
                      [](char a, char b) { return std::tolower(a) == std::tolower(b); });
  });
}

}  // namespace

// Attempts until a response that is not an error, a failure that is not worth another try,
// or no retries left. Every failed attempt is an error row (with its attempt number, and what
// happens next in the message); the URL ends as one result row or as a final error row.
// `depth`: link hops from the job's own URLs (0 for them).
asio::awaitable<void> Crawler::fetch_one(Run& run, std::string url, int depth) {
  const config::Job& job = run.job;
  auto target = config::parse_url(url);  // validated when the config was loaded
  Clearance clearance = co_await parts_.politeness.clear(job, *target);
  if (clearance.verdict == Clearance::Verdict::kStopping) {
    co_await cancelled(run, url, 1, storage::Clock::now(), "the request was not sent");
    co_return;
  }
  if (clearance.verdict == Clearance::Verdict::kRefused) {
    count_failure(run, clearance.kind, url, clearance.message);
    storage::Row row = storage::ErrorRow{.run_id = run.run_id,
                                         .job = job.name,
                                         .url = url,
                                         .attempt = 1,
                                         .kind = clearance.kind,
                                         .status = std::nullopt,
                                         .message = clearance.message,
                                         .elapsed_ms = 0,
                                         .fetched_at = storage::Clock::now()};
    co_await parts_.rows.store(std::move(row));
    co_return;
  }

  // What is known of the URL; its stored row is read now when the request needs its
  // validators, or a change would be notified with the fields it had.
  const std::string key = parts_.rows.shown(url);  // the URL as stored
  Before before;
  if (const UrlMemo* memo = parts_.states.find(job.name, key)) before.memo = *memo;
  if (before.memo && ((before.memo->validators() && job.method == "GET" && job.conditional) ||
                      (job.notify && job.notify->on_change)))
    co_await read_state(run, key, before);

  RetryPlan plan;
  plan.host = host_key(*target);
  plan.limits = clearance.limits;
  plan.retries = job.retries;
  plan.counted_job = job.name;
  plan.request = [this, &run, &url, &before] { return make_request(run, url, before); };
  if (job.render.chromium) plan.render = &job.render;  // after the same politeness
  plan.done = [](const FetchResult& r) { return r.ok() && r.status < 400; };
  plan.failed = [this, &run, &url](const Attempt& a) -> std::optional<storage::Row> {
    const FetchResult& r = a.result;
    storage::ErrorRow e{
        .run_id = run.run_id,
        .job = run.job.name,
        .url = url,
        .attempt = a.number,
        .kind = r.ok() ? "http" : r.error_kind,
        .status = std::nullopt,
        .message = (r.ok() ? "HTTP status " + std::to_string(r.status) : r.error_message) + a.next,
        .elapsed_ms = millis(r.elapsed),
        .fetched_at = a.sent_at};
    if (r.status > 0) e.status = r.status;
    if (a.last) {
      parts_.last_error =
          fmt::format("job '{}': {} {}", run.job.name, e.kind, parts_.rows.shown(url));
      count_failure(run, e.kind, url, e.message);
    } else {
      spdlog::debug("job '{}': {}: {}: {}", run.job.name, parts_.rows.shown(url), e.kind,
                    parts_.rows.shown(e.message));
    }
    return e;
  };
  Sent sent = co_await parts_.politeness.send(plan);
  switch (sent.end) {
    case Sent::End::kDone:
      co_await succeeded(run, url, depth, sent.result, sent.sent_at, before);
      break;
    case Sent::End::kFailed:  // its row is stored
      break;
    case Sent::End::kNotSent:
      co_await cancelled(run, url, sent.attempt, sent.sent_at, "the request was not sent");
      break;
    case Sent::End::kCut:
      co_await cancelled(run, url, sent.attempt, sent.sent_at,
                         "the response did not come in time (" + abandon_reason_ + ")",
                         sent.result.elapsed);
      break;
    case Sent::End::kRetryNotSent:
      co_await cancelled(run, url, sent.attempt, sent.sent_at, "the retry was not sent");
      break;
  }
}

// Reads `key`'s url_state row into `before`, off the loop. A row not written yet, or one that
// cannot be read, leaves before.state empty: the fetch then goes as for a URL never seen
// (no validators), which costs a full response, never a wrong one.
asio::awaitable<void> Crawler::read_state(const Run& run, const std::string& key, Before& before) {
  if (before.read || !before.memo) co_return;
  before.read = true;
  const UrlStates& states = parts_.states;
  const std::string& job = run.job.name;
  const UrlMemo memo = *before.memo;
  auto read = [&states, &job, &key, memo]() -> std::optional<KnownUrl> {
    try {
      return states.read(job, key, memo);
    } catch (const storage::Error& e) {
      spdlog::warn("job '{}': cannot read the state of {} ({}); fetched as new", job, key,
                   e.what());
      return std::nullopt;
    }
  };
  before.state = co_await run_blocking(parts_.cpu_pool, std::move(read));
}

FetchRequest Crawler::make_request(Run& run, const std::string& url, const Before& before) const {
  const config::Job& job = run.job;
  FetchRequest request = request_for(job, url);
  request.cookies = run.cookies.get();
  request.group = static_cast<std::uint64_t>(run.run_id);
  // A conditional GET with what the last full response said, unless the job sets these.
  const KnownUrl* v = before.state ? &*before.state : nullptr;
  if (v && job.method == "GET" && job.conditional) {
    if (!v->etag.empty() && !sets_header(job, "If-None-Match"))
      request.headers.emplace_back("If-None-Match", v->etag);
    if (!v->last_modified.empty() && !sets_header(job, "If-Modified-Since"))
      request.headers.emplace_back("If-Modified-Since", v->last_modified);
  }
  return request;
}

// A response that is not an error: its fields and links are read on the pool, then the
// result row (unless `store: on_change` and nothing changed), the URL's new state, and the
// links the run goes on to. `before`: what fetch_one knew of the URL.
asio::awaitable<void> Crawler::succeeded(Run& run, const std::string& url, int depth,
                                         const FetchResult& r,
                                         storage::Clock::time_point fetched_at, Before& before) {
  const config::Job& job = run.job;
  const std::string key = parts_.rows.shown(url);       // the URL as stored
  const bool full = r.status >= 200 && r.status < 300;  // a 304 has no body to read
  // A 304 is the content of the stored row (read before the request, unless the job sent
  // its own If-None-Match or If-Modified-Since).
  if (!full) co_await read_state(run, key, before);
  const KnownUrl* stored = before.state ? &*before.state : nullptr;
  const bool may_follow =
      run.links && depth < job.follow->max_depth && run.seen.size() < follow_budget(run);
  const bool follow = may_follow && r.status == 200 && is_html(r.content_type);
  // What the page says: its fields and links, and the hash of its content (its fields, or
  // the whole body when it has none), read on the pool; only a small body without fields is
  // hashed on the loop.
  struct Page {
    Extracted extracted;
    std::vector<std::string> links;
    std::string hash;
  };
  Page page;
  if (full && (run.fields || follow || r.body.size() > kHashOnLoop)) {
    const std::string page_url = r.final_url.empty() ? url : r.final_url;
    const FieldExtractor* fields = run.fields.get();
    const LinkFinder* finder = follow ? run.links.get() : nullptr;
    // Twice the page budget: enough new links even if every URL seen so far is among them.
    const std::size_t limit = 2 * follow_budget(run);
    auto read = [fields, finder, &r, &page_url, limit] {
      Page p;
      if (fields || finder) {
        PageRead pr = read_page(fields, finder, r.body, r.content_type, page_url, limit);
        p.extracted = std::move(pr.extracted);
        p.links = std::move(pr.links);
      }
      p.hash = content_hash(fields ? p.extracted.data : r.body);
      return p;
    };
    page = co_await run_blocking(parts_.cpu_pool, std::move(read));
  } else if (full) {
    page.hash = content_hash(r.body);
  }
  // A follow job keeps each page's links, so that a 304 (the page as it was) leads on to
  // the same pages as its last full response did.
  std::string links;
  if (follow) {
    links =
        nlohmann::json(page.links).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    queue_links(run, std::move(page.links), url, depth);
  } else if (may_follow && r.status == 304 && stored && !stored->links.empty()) {
    links = stored->links;
    auto list = nlohmann::json::parse(links, nullptr, false);
    std::vector<std::string> again;
    if (list.is_array())
      for (const auto& link : list)
        if (link.is_string()) again.push_back(link.get<std::string>());
    queue_links(run, std::move(again), url, depth);
  }

  if (!page.extracted.problem.empty()) {  // e.g. json fields and a body that is not JSON
    parts_.last_error = fmt::format("job '{}': parse {}", job.name, key);
    count_failure(run, "parse", url, page.extracted.problem);
    storage::Row row = storage::ErrorRow{.run_id = run.run_id,
                                         .job = job.name,
                                         .url = url,
                                         .attempt = 1,
                                         .kind = "parse",
                                         .status = r.status,
                                         .message = page.extracted.problem,
                                         .elapsed_ms = millis(r.elapsed),
                                         .fetched_at = fetched_at};
    co_await parts_.rows.store(std::move(row));
    co_return;
  }
  if (!page.extracted.missing.empty()) {
    std::string names;
    bool required = false;
    for (const auto& n : page.extracted.missing) {
      names += (names.empty() ? "" : ", ") + n;
      for (const auto& f : job.extract) required = required || (f.required && f.name == n);
    }
    spdlog::log(required ? spdlog::level::warn : spdlog::level::info,
                "job '{}': {}: matched nothing: {}", job.name, key, names);
  }

  ++run.ok;
  parts_.metrics.success(job.name, std::chrono::system_clock::now());
  // The content hash before this fetch (memory has it even when the row was not read).
  const std::string before_hash = stored        ? stored->content_hash
                                  : before.memo ? content_hash_of(*before.memo)
                                                : "";
  std::string hash =
      full ? std::move(page.hash) : before_hash;  // 304: the content is the one we have
  const bool changed = full && hash != before_hash;
  if (changed && !before_hash.empty()) parts_.metrics.changed(job.name);
  if (changed) ++run.changed;
  // A change of content seen before (the first fetch of a URL is not news). The fields it
  // had come from the stored row (empty in the rare case it was not written yet).
  if (changed && !before_hash.empty() && job.notify && job.notify->on_change)
    run.fetches->spawn(parts_.notifier.changed(job, run.run_id, url,
                                               stored ? stored->data : std::string(), before_hash,
                                               page.extracted.data, hash));
  if (changed || !job.store_on_change) {
    storage::Row row = storage::ResultRow{.run_id = run.run_id,
                                          .job = job.name,
                                          .url = url,
                                          .final_url = r.final_url,
                                          .status = r.status,
                                          .bytes = static_cast<std::int64_t>(r.body.size()),
                                          .elapsed_ms = millis(r.elapsed),
                                          .fetched_at = fetched_at,
                                          .content_hash = hash,
                                          .changed = changed,
                                          // a 304 carries the current value forward
                                          .data = full     ? page.extracted.data
                                                  : stored ? stored->data
                                                           : std::string()};
    co_await parts_.rows.store(std::move(row));
  }
  // The URL's new state: a full response's validators, content and links; a 304's stored
  // row, its validators refreshed when it sent some. Written only when it differs from the
  // row before (one row per page, not two, when nothing changed).
  if (!full && !stored) co_return;  // a 304 whose row is not written yet: nothing to update
  KnownUrl next;
  if (full) {
    // The links serve a later 304 only: none can come for a response without validators
    // (unless the job sends its own), so its links are not kept (W4: a row a third the size).
    const bool may_answer_304 =
        (job.conditional && (!r.etag.empty() || !r.last_modified.empty())) ||
        sets_header(job, "If-None-Match") || sets_header(job, "If-Modified-Since");
    if (!may_answer_304) links.clear();
    next = KnownUrl{r.etag, r.last_modified, hash, page.extracted.data, std::move(links)};
  } else {
    next = *stored;
    if (!r.etag.empty() || !r.last_modified.empty()) {
      next.etag = r.etag;
      next.last_modified = r.last_modified;
    }
  }
  const UrlMemo memo = memo_of(next);
  if (before.memo && *before.memo == memo) co_return;
  parts_.states.set(job.name, key, memo);
  storage::Row row = storage::UrlState{.job = job.name,
                                       .url = url,
                                       .etag = std::move(next.etag),
                                       .last_modified = std::move(next.last_modified),
                                       .content_hash = std::move(next.content_hash),
                                       .data = std::move(next.data),
                                       .links = std::move(next.links)};
  co_await parts_.rows.store(std::move(row));
}

}  // namespace scraperd::daemon
