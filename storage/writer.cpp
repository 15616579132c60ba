#include "storage/writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <unordered_map>
#include <vector>

#include "storage/backend.h"
#include "storage/pg.h"
#include "storage/pg_store.h"
#include "storage/sqlite.h"

namespace scraperd::storage {
namespace {

// The SQLite backend: the write connection and its prepared statements, owned by the writer
// thread.
class SqliteBackend : public Backend {
 public:
  SqliteBackend(const std::string& path, std::int64_t max_pages, RunIds& runs)
      : runs_(runs),
        db_(path, sqlite::Db::Mode::kReadWrite),
        insert_result_(db_,
                       "INSERT INTO results (run_id, job, url, final_url, status, bytes, "
                       "elapsed_ms, fetched_at, content_hash, changed, data) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        insert_error_(db_,
                      "INSERT INTO errors (run_id, job, url, attempt, kind, status, message, "
                      "elapsed_ms, fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        insert_run_(db_,
                    "INSERT INTO runs (job, due_at, started_at, status, urls) "
                    "VALUES (?, ?, ?, 'running', ?)"),
        finish_run_(db_,
                    "UPDATE runs SET finished_at = ?, status = ?, ok = ?, failed = ?, "
                    "urls = coalesce(nullif(?, 0), urls) WHERE id = ?"),
        progress_run_(db_,
                      "UPDATE runs SET ok = ?, failed = ?, urls = max(urls, ?) "
                      "WHERE id = ? AND status = 'running'"),
        insert_skipped_(db_,
                        "INSERT INTO runs (job, due_at, started_at, finished_at, status) "
                        "VALUES (?1, ?2, ?2, ?2, 'skipped')"),
        set_due_(db_, "UPDATE jobs SET next_due = ? WHERE name = ?"),
        set_url_state_(db_,
                       "INSERT INTO url_state (job, url, etag, last_modified, content_hash, "
                       "data, links) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (job, url) "
                       "DO UPDATE SET etag = excluded.etag, last_modified = "
                       "excluded.last_modified, content_hash = excluded.content_hash, "
                       "data = excluded.data, links = excluded.links"),
        upsert_job_(db_,
                    "INSERT INTO jobs (name, schedule, urls, first_seen, last_seen) "
                    "VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (name) DO UPDATE SET "
                    "schedule = excluded.schedule, urls = excluded.urls, "
                    "last_seen = excluded.last_seen") {
    db_.exec("PRAGMA synchronous=NORMAL");
    // A checkpoint every 10,000 WAL pages (~40 MB) rather than SQLite's 1,000: the writer's
    // inserts in random key order (url_state, results' (job, url) index) dirty a leaf per
    // row, and a leaf written by several commits between two checkpoints is copied back once.
    db_.exec("PRAGMA wal_autocheckpoint=10000");
    db_.exec("PRAGMA foreign_keys=ON");
    if (max_pages > 0) db_.exec(("PRAGMA max_page_count=" + std::to_string(max_pages)).c_str());
  }

  // Deletes up to `limit` rows older than `cutoff` from one table per call, in its own
  // transaction; returns how many rows went. Runs go last, once no row refers to them.
  int prune(Clock::time_point cutoff, int limit) override {
    static constexpr const char* kSteps[] = {
        "DELETE FROM results WHERE id IN (SELECT id FROM results WHERE fetched_at < ?1 LIMIT ?2)",
        "DELETE FROM errors WHERE id IN (SELECT id FROM errors WHERE fetched_at < ?1 LIMIT ?2)",
        "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE started_at < ?1 AND status <> "
        "'running' AND NOT EXISTS (SELECT 1 FROM results WHERE run_id = runs.id) AND NOT EXISTS "
        "(SELECT 1 FROM errors WHERE run_id = runs.id) LIMIT ?2)",
    };
    for (const char* sql : kSteps) {
      sqlite::Stmt s(db_, sql);
      db_.exec("BEGIN IMMEDIATE");
      try {
        s.run(format_time(cutoff), limit);
        db_.exec("COMMIT");
      } catch (...) {
        sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
      }
      if (int n = sqlite3_changes(db_.get()); n > 0) return n;
    }
    db_.exec("PRAGMA incremental_vacuum");  // give the freed pages back to the file system
    return 0;
  }

  // All rows or none: a failure rolls the transaction back and throws.
  void commit(const std::vector<Row>& batch) override {
    runs_.begin();
    db_.exec("BEGIN IMMEDIATE");
    try {
      for (const Row& row : batch) std::visit([this](const auto& r) { insert(r); }, row);
      db_.exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      runs_.rolled_back();
      for (auto* s : {&insert_result_, &insert_error_, &insert_run_, &finish_run_, &progress_run_,
                      &insert_skipped_, &set_due_, &set_url_state_, &upsert_job_})
        s->reset();
      throw;
    }
    runs_.committed();
    // After the commit: the batch is in, so a failure to size the cache is no failed commit.
    try {
      size_cache();
    } catch (const std::exception& e) {
      spdlog::debug("writer: page cache not re-sized: {}", e.what());
    }
  }

 private:
  std::optional<std::int64_t> run_ref(std::int64_t key) const { return runs_.ref(key); }

  // The page cache grows with the database (writer_cache_kib), looked at every 64 commits.
  // Once the b-trees' upper pages outgrow 2 MB, every commit reads them again from the OS
  // (W4 at a million pages: 41 KB read per page stored with 2 MB, 26 KB with 8 MB); a small
  // database keeps the small cache (W1's RSS).
  void size_cache() {
    if (commits_++ % 64 != 0) return;
    sqlite::Stmt bytes(db_,
                       "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size");
    bytes.step();
    const std::int64_t kib = writer_cache_kib(bytes.int64(0));
    db_.exec(("PRAGMA cache_size=-" + std::to_string(kib)).c_str());
  }

  void insert(const ResultRow& r) {
    auto final_url =
        r.final_url.empty() || r.final_url == r.url ? std::nullopt : std::optional(r.final_url);
    auto text = [](const std::string& v) { return v.empty() ? std::nullopt : std::optional(v); };
    std::optional<int> changed;
    if (r.changed) changed = *r.changed ? 1 : 0;
    insert_result_.run(run_ref(r.run_id), r.job, r.url, final_url, r.status, r.bytes, r.elapsed_ms,
                       format_time(r.fetched_at), text(r.content_hash), changed, text(r.data));
  }
  void insert(const ErrorRow& r) {
    insert_error_.run(run_ref(r.run_id), r.job, r.url, r.attempt, r.kind, r.status, r.message,
                      r.elapsed_ms, format_time(r.fetched_at));
  }
  void insert(const RunStarted& r) {
    insert_run_.run(r.job, format_time(r.due_at), format_time(r.started_at), r.urls);
    runs_.ids[r.key] = sqlite3_last_insert_rowid(db_.get());
    runs_.added.push_back(r.key);
  }
  void insert(const RunFinished& r) {
    finish_run_.run(format_time(r.finished_at), r.status, r.ok, r.failed, r.urls, run_ref(r.key));
    runs_.finished.push_back(r.key);
  }
  void insert(const RunProgress& r) {
    if (auto id = run_ref(r.key)) progress_run_.run(r.ok, r.failed, r.urls, *id);
  }
  void insert(const RunSkipped& r) { insert_skipped_.run(r.job, format_time(r.due_at)); }
  void insert(const JobDue& r) { set_due_.run(format_time(r.next_due), r.name); }
  void insert(const UrlState& r) {
    auto text = [](const std::string& s) { return s.empty() ? std::nullopt : std::optional(s); };
    set_url_state_.run(r.job, r.url, text(r.etag), text(r.last_modified), text(r.content_hash),
                       text(r.data), text(r.links));
  }
  void insert(const JobSeen& r) {
    upsert_job_.run(r.name, r.schedule, r.urls, format_time(r.seen_at));
  }

  RunIds& runs_;
  sqlite::Db db_;
  sqlite::Stmt insert_result_, insert_error_, insert_run_, finish_run_, progress_run_,
      insert_skipped_, set_due_, set_url_state_, upsert_job_;
  std::uint64_t commits_ = 0;
};

}  // namespace

Writer::Writer(const std::string& path, Options options)
    : path_(path), name_(pg::redact(path)), options_(options) {
  migrate(path_);
  if (is_postgres(path_)) {
    pg::close_interrupted_runs(path_);
  } else {
    sqlite::Db db(path_, sqlite::Db::Mode::kReadWrite);
    // Runs a previous process left unfinished (it was killed) are closed as interrupted.
    sqlite::Stmt(db,
                 "UPDATE runs SET status = 'interrupted', finished_at = ? "
                 "WHERE status = 'running'")
        .run(format_time(Clock::now()));
  }
  thread_ = std::thread([this] { run(); });
}

std::int64_t Writer::new_run_key() {
  return next_run_key_++;
}

Writer::~Writer() {
  close();
}

void Writer::push(Row row) {
  std::unique_lock lock(mu_);
  not_full_.wait(lock, [&] { return queue_.size() < options_.capacity; });
  queue_.push_back(std::move(row));
  wake_writer();
}

bool Writer::try_push(Row& row) {
  std::lock_guard lock(mu_);
  if (queue_.size() >= options_.capacity) return false;
  queue_.push_back(std::move(row));
  wake_writer();
  return true;
}

// The writer waits for a first row, or (lingering) for a full batch: only those wake it.
void Writer::wake_writer() {
  if (queue_.size() == 1 || queue_.size() == options_.max_batch) not_empty_.notify_one();
}

void Writer::close() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  not_empty_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::int64_t writer_cache_kib(std::int64_t bytes) {
  return std::clamp<std::int64_t>(2048 + bytes / 1024 / 64, 2048, 16384);
}

std::uint64_t Writer::committed() const {
  std::lock_guard lock(mu_);
  return committed_;
}

std::size_t Writer::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size() + in_batch_;
}

int Writer::failing() const {
  std::lock_guard lock(mu_);
  return failing_;
}

std::uint64_t Writer::commit_failures() const {
  std::lock_guard lock(mu_);
  return commit_failures_;
}

std::uint64_t Writer::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

std::string Writer::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

void Writer::run() {
  std::unique_ptr<Backend> sink;
  RunIds runs;
  std::vector<Row> batch;
  auto backoff = std::chrono::milliseconds(100);
  int failures = 0;
  bool pruning = false;
  auto next_prune = std::chrono::steady_clock::now();
  auto last_commit = next_prune;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      auto ready = [&] { return !queue_.empty() || closing_ || !batch.empty(); };
      if (!pruning) {  // between prune steps, take what is queued without waiting
        if (options_.keep.count() > 0)
          not_empty_.wait_until(lock, next_prune, ready);
        else
          not_empty_.wait(lock, ready);
      }
      if (closing_ && queue_.empty() && batch.empty()) return;  // everything is committed
      if (batch.empty() && queue_.size() < options_.max_batch)
        not_empty_.wait_until(lock, last_commit + options_.linger,
                              [&] { return closing_ || queue_.size() >= options_.max_batch; });
      // A batch that failed to commit is retried first; new rows join it up to max_batch.
      size_t room = options_.max_batch - std::min(batch.size(), options_.max_batch);
      size_t n = std::min(queue_.size(), room);
      std::move(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n),
                std::back_inserter(batch));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
      in_batch_ = batch.size();
    }
    not_full_.notify_all();
    try {
      if (!sink)
        sink = is_postgres(path_)
                   ? pg::open_backend(path_, runs)
                   : std::make_unique<SqliteBackend>(path_, options_.max_pages, runs);
      if (!batch.empty()) {
        sink->commit(batch);
        last_commit = std::chrono::steady_clock::now();
        std::lock_guard lock(mu_);
        committed_ += batch.size();
        last_error_.clear();
        failing_ = 0;
        in_batch_ = 0;
        batch.clear();
      }
      backoff = std::chrono::milliseconds(100);
      failures = 0;
      auto now = std::chrono::steady_clock::now();
      if (options_.keep.count() > 0 && (pruning || now >= next_prune)) {
        pruning = sink->prune(Clock::now() - options_.keep, 1000) > 0;
        if (!pruning) next_prune = now + options_.prune_every;
      }
    } catch (const Error& e) {
      ++failures;
      bool closing;
      {
        std::lock_guard lock(mu_);
        closing = closing_;
        last_error_ = e.what();
        if (!batch.empty()) {  // a failed prune step alone is not a failing commit
          ++failing_;
          ++commit_failures_;
        }
      }
      pruning = false;
      // While running, keep the rows and retry for as long as it takes; at shutdown, give up
      // after a bounded number of attempts rather than hang the exit.
      if (closing && failures >= 5) {
        spdlog::critical("database {}: {} rows could not be committed at shutdown: {}", name_,
                         batch.size(), e.what());
        {
          std::lock_guard lock(mu_);
          dropped_ += batch.size();
          in_batch_ = 0;
        }
        batch.clear();
        continue;
      }
      spdlog::error("database {}: commit of {} rows failed ({}); keeping them, retrying in {} ms",
                    name_, batch.size(), e.what(), backoff.count());
      if ((e.code() & 0xff) != SQLITE_BUSY) sink.reset();  // reopen: the connection may be broken
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }
}

}  // namespace scraperd::storage
