#include "storage/writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <vector>

#include "storage/sqlite.h"

namespace scraperd::storage {
namespace {

// The write connection and its prepared statements, owned by the writer thread.
class Sink {
 public:
  explicit Sink(const std::string& path)
      : db_(path, sqlite::Db::Mode::kReadWrite),
        insert_result_(db_,
                       "INSERT INTO results (job, url, status, bytes, elapsed_ms, fetched_at) "
                       "VALUES (?, ?, ?, ?, ?, ?)"),
        insert_error_(db_,
                      "INSERT INTO errors (job, url, kind, status, message, elapsed_ms, "
                      "fetched_at) VALUES (?, ?, ?, ?, ?, ?, ?)") {
    db_.exec("PRAGMA synchronous=NORMAL");
    db_.exec("PRAGMA foreign_keys=ON");
  }

  // All rows or none: a failure rolls the transaction back and throws.
  void commit(const std::vector<Row>& batch) {
    db_.exec("BEGIN IMMEDIATE");
    try {
      for (const Row& row : batch) std::visit([this](const auto& r) { insert(r); }, row);
      db_.exec("COMMIT");
    } catch (...) {
      sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
      insert_result_.reset();
      insert_error_.reset();
      throw;
    }
  }

 private:
  void insert(const ResultRow& r) {
    auto& s = insert_result_;
    s.bind(1, r.job);
    s.bind(2, r.url);
    s.bind(3, std::int64_t{r.status});
    s.bind(4, r.bytes);
    s.bind(5, r.elapsed_ms);
    s.bind(6, format_time(r.fetched_at));
    s.step();
    s.reset();
  }

  void insert(const ErrorRow& r) {
    auto& s = insert_error_;
    s.bind(1, r.job);
    s.bind(2, r.url);
    s.bind(3, r.kind);
    if (r.status)
      s.bind(4, std::int64_t{*r.status});
    else
      s.bind_null(4);
    s.bind(5, r.message);
    s.bind(6, r.elapsed_ms);
    s.bind(7, format_time(r.fetched_at));
    s.step();
    s.reset();
  }

  sqlite::Db db_;
  sqlite::Stmt insert_result_;
  sqlite::Stmt insert_error_;
};

}  // namespace

Writer::Writer(const std::string& path, Options options) : path_(path), options_(options) {
  migrate(path_);
  thread_ = std::thread([this] { run(); });
}

Writer::~Writer() {
  close();
}

void Writer::push(Row row) {
  std::unique_lock lock(mu_);
  not_full_.wait(lock, [&] { return queue_.size() < options_.capacity; });
  queue_.push_back(std::move(row));
  not_empty_.notify_one();
}

bool Writer::try_push(Row& row) {
  std::lock_guard lock(mu_);
  if (queue_.size() >= options_.capacity) return false;
  queue_.push_back(std::move(row));
  not_empty_.notify_one();
  return true;
}

void Writer::close() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  not_empty_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::uint64_t Writer::committed() const {
  std::lock_guard lock(mu_);
  return committed_;
}

void Writer::run() {
  std::unique_ptr<Sink> sink;
  std::vector<Row> batch;
  auto backoff = std::chrono::milliseconds(100);
  int failures = 0;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      not_empty_.wait(lock, [&] { return !queue_.empty() || closing_ || !batch.empty(); });
      if (queue_.empty() && batch.empty()) return;  // closing, and everything is committed
      // A batch that failed to commit is retried first; new rows join it up to max_batch.
      size_t n =
          std::min(queue_.size(), options_.max_batch - std::min(batch.size(), options_.max_batch));
      std::move(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n),
                std::back_inserter(batch));
      queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    }
    not_full_.notify_all();
    try {
      if (!sink) sink = std::make_unique<Sink>(path_);
      sink->commit(batch);
      {
        std::lock_guard lock(mu_);
        committed_ += batch.size();
      }
      batch.clear();
      backoff = std::chrono::milliseconds(100);
      failures = 0;
    } catch (const Error& e) {
      ++failures;
      bool closing;
      {
        std::lock_guard lock(mu_);
        closing = closing_;
      }
      // While running, keep the rows and retry for as long as it takes; at shutdown, give up
      // after a bounded number of attempts rather than hang the exit.
      if (closing && failures >= 5) {
        spdlog::critical("database {}: {} rows could not be committed at shutdown: {}", path_,
                         batch.size(), e.what());
        batch.clear();
        continue;
      }
      spdlog::error("database {}: commit of {} rows failed ({}); retrying in {} ms", path_,
                    batch.size(), e.what(), backoff.count());
      if ((e.code() & 0xff) != SQLITE_BUSY) sink.reset();  // reopen: the connection may be broken
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
    }
  }
}

}  // namespace scraperd::storage
