// UrlStates: what the daemon knows of each URL it fetched (its url_state row): the validators
// for the next conditional GET, the content hash that tells a change, the fields of that
// content (for change notifications and a 304's row) and, for follow jobs, its links (a 304
// leads on to the same pages). Read from the database at start, kept in step with the rows
// written. By job, then URL, so a job's name is not repeated for each of its URLs
// (docs/performance.md: W1 memory). Loop-thread only.
#pragma once

#include <map>
#include <string>
#include <unordered_map>
#include <utility>

#include "storage/store.h"

namespace scraperd::daemon {

struct KnownUrl {
  std::string etag;
  std::string last_modified;
  std::string content_hash;
  std::string data;   // the fields of that content
  std::string links;  // follow jobs: the links of that content (JSON array)

  bool operator==(const KnownUrl&) const = default;
};

class UrlStates {
 public:
  UrlStates() = default;
  explicit UrlStates(std::map<std::pair<std::string, std::string>, storage::UrlState> rows);

  // Null when nothing is known of `url` (as stored: secrets shown as ${NAME}).
  const KnownUrl* find(const std::string& job, const std::string& url) const;
  // The state to update, made empty when new.
  KnownUrl& at(const std::string& job, const std::string& url) { return known_[job][url]; }

 private:
  std::unordered_map<std::string, std::unordered_map<std::string, KnownUrl>> known_;
};

}  // namespace scraperd::daemon
