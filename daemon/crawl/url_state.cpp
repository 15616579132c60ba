#include "daemon/crawl/url_state.h"

namespace scraperd::daemon {

UrlStates::UrlStates(std::map<std::pair<std::string, std::string>, storage::UrlState> rows) {
  for (auto& [key, row] : rows)
    known_[key.first][key.second] =
        KnownUrl{std::move(row.etag), std::move(row.last_modified), std::move(row.content_hash),
                 std::move(row.data), std::move(row.links)};
}

const KnownUrl* UrlStates::find(const std::string& job, const std::string& url) const {
  auto j = known_.find(job);
  if (j == known_.end()) return nullptr;
  auto u = j->second.find(url);
  return u == j->second.end() ? nullptr : &u->second;
}

}  // namespace scraperd::daemon
