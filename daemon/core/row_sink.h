// RowSink: how every stage hands rows to the storage writer without blocking the loop.
//
//   storage::Row row = storage::ErrorRow{...};  // named: GCC 12 and co_await temporaries
//   co_await rows.store(std::move(row));
//
// Values of ${VAR}s (secrets) never reach the database: URLs and messages get the ${NAME}
// back (shown()). A full writer queue makes the storing coroutine wait, off the loop.
// Loop-thread only.
#pragma once

#include <asio/awaitable.hpp>
#include <asio/thread_pool.hpp>
#include <string>
#include <utility>
#include <vector>

#include "storage/writer.h"

namespace scraperd::daemon {

class RowSink {
 public:
  using Secrets = std::vector<std::pair<std::string, std::string>>;  // value, ${NAME}

  RowSink(storage::Writer& writer, asio::thread_pool& pool, Secrets secrets)
      : writer_(writer), pool_(pool), secrets_(std::move(secrets)) {}

  asio::awaitable<void> store(storage::Row row);
  // Queues `row` if there is room; false (and nothing queued) when the queue is full.
  bool try_store(storage::Row& row);

  // `text` with every secret's value replaced by its ${NAME}: for rows and logs.
  std::string shown(const std::string& text) const;
  // The secrets of a config loaded later (a reload); the old ones stay (rows of runs still
  // going on may carry them).
  void add_secrets(const Secrets& secrets);

  std::int64_t new_run_key() { return writer_.new_run_key(); }

 private:
  void redact(storage::Row& row) const;

  storage::Writer& writer_;
  asio::thread_pool& pool_;
  Secrets secrets_;
};

}  // namespace scraperd::daemon
