// Private to storage/: where storage::Writer commits its batches. One implementation per
// database engine (SQLite: writer.cpp, PostgreSQL: pg_writer.cpp), chosen by the locator.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "storage/store.h"

namespace scraperd::storage {

// Run keys (RunStarted::key) to the ids the database gave those runs. Owned by the writer
// thread; outlives a Backend (a broken connection is reopened, the runs go on).
struct RunIds {
  static constexpr std::size_t kFinishedKept = 4096;
  std::unordered_map<std::int64_t, std::int64_t> ids;
  std::vector<std::int64_t> added, finished;  // by the batch being committed
  std::deque<std::int64_t> done;              // keys of finished runs, oldest first

  // A COMMIT whose answer was lost with the connection (PostgreSQL): it may have landed. The
  // next attempt looks its token up before it writes the batch's first `rows` rows again.
  struct Unsure {
    std::string token;
    std::size_t rows = 0;
    std::vector<std::int64_t> added, finished;
  };
  std::optional<Unsure> unsure;

  // The id the database gave the run of `key`; nullopt for 0 (rows written outside a run)
  // or a run whose RunStarted row never made it (dropped at shutdown).
  std::optional<std::int64_t> ref(std::int64_t key) const {
    auto it = ids.find(key);
    return it != ids.end() ? std::optional(it->second) : std::nullopt;
  }
  // A batch begins / was rolled back (its runs' ids with it) / was committed.
  void begin() {
    added.clear();
    finished.clear();
  }
  void rolled_back() {
    for (auto key : added) ids.erase(key);
  }
  // A finished run's key is kept a while for rows that come after RunFinished (a change
  // notification's delivery), then forgotten.
  void committed() {
    for (auto key : finished) {
      done.push_back(key);
      if (done.size() > kFinishedKept) {
        ids.erase(done.front());
        done.pop_front();
      }
    }
  }
};

class Backend {
 public:
  virtual ~Backend() = default;
  // All rows or none: a failure rolls the transaction back (RunIds too) and throws Error.
  virtual void commit(const std::vector<Row>& batch) = 0;
  // Deletes up to `limit` rows older than `cutoff` from one table per call, in its own
  // transaction; returns how many rows went (0: nothing left to prune).
  virtual int prune(Clock::time_point cutoff, int limit) = 0;
};

}  // namespace scraperd::storage
