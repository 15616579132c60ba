// UrlStates: what the daemon knows of each URL it fetched. The URL's url_state row in the
// database holds it all (the validators for the next conditional GET, the content hash that
// tells a change, the fields of that content for change notifications and a 304's row and,
// for follow jobs, its links, which a 304 leads on to); memory holds 24 bytes a URL, a
// UrlMemo under the URL's fingerprint: enough to tell whether a fetch changed anything and
// whether the row is worth reading before the next one. A fetch reads the row (off the loop,
// read()) only when it needs it: to send validators, or to notify a change.
// docs/performance.md, W4: a million URLs fetched cost ~48 MB here, not ~700 MB.
//
// Memory is loop-thread only; read() may run on any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "daemon/crawl/fingerprints.h"
#include "storage/store.h"

namespace scraperd::daemon {

// A url_state row without its key.
struct KnownUrl {
  std::string etag;
  std::string last_modified;
  std::string content_hash;
  std::string data;   // the fields of that content
  std::string links;  // follow jobs: the links of that content (JSON array)
};

// A row in 16 bytes: two rows with the same memo are the same (up to 64-bit hash collisions).
struct UrlMemo {
  std::uint64_t content = 0;  // the content hash (16 hex digits) as a number; 0: none
  std::uint64_t rest = 0;     // a hash of the validators and links; bit 0: it has validators

  bool validators() const { return (rest & 1) != 0; }
  bool operator==(const UrlMemo&) const = default;
};

UrlMemo memo_of(const KnownUrl& row);
// The content hash a memo holds, as stored ("" for none).
std::string content_hash_of(const UrlMemo& memo);

class UrlStates {
 public:
  UrlStates() = default;  // no database: nothing to read
  explicit UrlStates(const std::string& db_path);

  // Reads every stored row, one at a time, into memory. Throws storage::Error.
  void load();

  // Null when nothing is known of `url` (as stored: secrets shown as ${NAME}). The pointer
  // lives until the next set().
  const UrlMemo* find(const std::string& job, const std::string& url) const;
  // `url`'s row is now `row` (and is being written).
  void set(const std::string& job, const std::string& url, const UrlMemo& memo);

  // The stored row of (job, url) if it is the one memory knows (`memo`); nullopt when there is
  // none or it is not written yet. Blocking (SQLite): call it off the loop. Thread-safe.
  std::optional<KnownUrl> read(const std::string& job, const std::string& url,
                               const UrlMemo& memo) const;

  std::size_t size() const;
  std::size_t bytes() const;  // held in memory by the tables

 private:
  std::unordered_map<std::string, FingerprintMap<UrlMemo>> jobs_;
  std::string db_path_;
  std::unique_ptr<storage::UrlStateReader> reader_;  // thread-safe
};

}  // namespace scraperd::daemon
