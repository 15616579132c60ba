// storage::Writer: many producers, one thread that owns the write connection.
//
// Rows go into a bounded queue; a full queue makes push() wait, so nothing is ever dropped.
// The writer thread takes everything queued (up to max_batch) and commits it in one
// transaction, so batches grow by themselves under load and a lone row is committed at once.
// A failed commit (SQLITE_BUSY, a full disk, a PostgreSQL server gone) is logged, the batch kept,
// and retried with backoff. With Options::keep set, the same thread prunes old rows in small
// transactions between commits, so readers and producers never wait long.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>

#include "storage/store.h"

namespace scraperd::storage {

// The SQLite writer's page cache for a database of `bytes`, in KiB: SQLite's 2 MB plus 1/64
// of the file, at most 16 MB (the writer re-sizes it every 64 commits).
std::int64_t writer_cache_kib(std::int64_t bytes);

class Writer {
 public:
  struct Options {
    size_t capacity = 10'000;  // rows queued before push() waits
    size_t max_batch = 5'000;  // rows per transaction
    // Group commit: a transaction starts at most this long after the previous one ended
    // (sooner when max_batch rows wait), so a steady stream of rows makes few large
    // transactions instead of many small ones (docs/performance.md). Rows wait no longer.
    std::chrono::milliseconds linger{5};
    std::chrono::milliseconds keep{0};  // prune results, errors, runs older than this; 0: never
    std::chrono::milliseconds prune_every = std::chrono::minutes(10);
    std::int64_t max_pages = 0;  // SQLite only: PRAGMA max_page_count; 0: SQLite's default
                                 // (tests use it to make the database "full")
  };

  // Opens and migrates `path` (a SQLite file, or a postgresql:// URL: is_postgres), then
  // starts the writer thread. Throws Error when the database cannot be opened or migrated.
  // A lost PostgreSQL connection is a failed commit like any other: the batch is kept, the
  // connection reopened and the commit retried with backoff.
  explicit Writer(const std::string& path) : Writer(path, Options{}) {}
  Writer(const std::string& path, Options options);
  ~Writer();  // close()
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Queues a row, waiting while the queue is full. Thread-safe. REQUIRES: close() not called.
  void push(Row row);

  // Queues a row if there is room; otherwise returns false and leaves `row` as it was.
  bool try_push(Row& row);

  // Commits every queued row, then stops the thread. Idempotent.
  void close();

  // Rows committed so far.
  std::uint64_t committed() const;

  // Rows waiting to be committed: queued, and in the batch being committed (or retried).
  std::size_t queued() const;

  // The last commit failure, or "" once commits succeed again.
  std::string last_error() const;

  // Failed commit attempts in a row, now (0 once a commit succeeds), and in all.
  int failing() const;
  std::uint64_t commit_failures() const;

  // Rows given up at shutdown because their commit kept failing. After close(): 0 means every
  // row pushed is in the database.
  std::uint64_t dropped() const;

  // A fresh key for a RunStarted row, unique in this process (not an id: the database gives
  // the run its id when the row is committed; see RunStarted). Thread-safe.
  std::int64_t new_run_key();

 private:
  void run();
  void wake_writer();  // REQUIRES: mu_ held, a row just queued

  const std::string path_;  // a SQLite file or a postgresql:// URL (is_postgres)
  const std::string name_;  // path_ without a password, for logs
  const Options options_;

  mutable std::mutex mu_;
  std::condition_variable not_empty_;  // GUARDED_BY(mu_) state below changed
  std::condition_variable not_full_;
  std::deque<Row> queue_;        // GUARDED_BY(mu_)
  bool closing_ = false;         // GUARDED_BY(mu_)
  std::uint64_t committed_ = 0;  // GUARDED_BY(mu_)
  std::string last_error_;       // GUARDED_BY(mu_)
  std::size_t in_batch_ = 0;     // GUARDED_BY(mu_) rows taken off the queue, not yet committed
  int failing_ = 0;              // GUARDED_BY(mu_)
  std::uint64_t commit_failures_ = 0;  // GUARDED_BY(mu_)
  std::uint64_t dropped_ = 0;          // GUARDED_BY(mu_)

  std::atomic<std::int64_t> next_run_key_{1};
  std::thread thread_;
};

}  // namespace scraperd::storage
