#include "daemon/crawl/url_state.h"

#include <charconv>
#include <cstdio>
#include <functional>

namespace scraperd::daemon {
namespace {

std::uint64_t mix(std::uint64_t h, std::string_view part) {
  // boost::hash_combine's step over 64 bits, with the part's length so that ("a","") and
  // ("","a") differ.
  const std::uint64_t v = std::hash<std::string_view>{}(part) + part.size();
  return h ^ (v + 0x9E3779B97F4A7C15ULL + (h << 6) + (h >> 2));
}

}  // namespace

UrlMemo memo_of(const KnownUrl& row) {
  UrlMemo memo;
  std::uint64_t content = 0;
  const auto& c = row.content_hash;
  if (c.size() == 16) {
    auto [end, ec] = std::from_chars(c.data(), c.data() + c.size(), content, 16);
    if (ec != std::errc() || end != c.data() + c.size()) content = 0;
  }
  memo.content = content;
  std::uint64_t rest = mix(mix(mix(0, row.etag), row.last_modified), row.links);
  const bool validators = !row.etag.empty() || !row.last_modified.empty();
  memo.rest = validators ? (rest | 1) : (rest & ~std::uint64_t{1});
  return memo;
}

std::string content_hash_of(const UrlMemo& memo) {
  if (memo.content == 0) return "";
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(memo.content));
  return hex;
}

UrlStates::UrlStates(const std::string& db_path)
    : db_path_(db_path), reader_(std::make_unique<storage::UrlStateReader>(db_path)) {}

void UrlStates::load() {
  if (db_path_.empty()) return;
  storage::for_each_url_state(db_path_, [this](const storage::UrlState& row) {
    KnownUrl known{row.etag, row.last_modified, row.content_hash, {}, row.links};
    set(row.job, row.url, memo_of(known));
  });
}

const UrlMemo* UrlStates::find(const std::string& job, const std::string& url) const {
  auto j = jobs_.find(job);
  return j == jobs_.end() ? nullptr : j->second.find(fingerprint(url));
}

void UrlStates::set(const std::string& job, const std::string& url, const UrlMemo& memo) {
  auto j = jobs_.find(job);
  if (j == jobs_.end()) j = jobs_.emplace(job, FingerprintMap<UrlMemo>{}).first;
  *j->second.insert(fingerprint(url)).first = memo;
}

std::optional<KnownUrl> UrlStates::read(const std::string& job, const std::string& url,
                                        const UrlMemo& memo) const {
  if (!reader_) return std::nullopt;
  std::optional<storage::UrlState> row = reader_->read(job, url);
  if (!row) return std::nullopt;
  KnownUrl known{std::move(row->etag), std::move(row->last_modified), std::move(row->content_hash),
                 std::move(row->data), std::move(row->links)};
  if (memo_of(known) != memo) return std::nullopt;  // the newer row is still in the queue
  return known;
}

std::size_t UrlStates::size() const {
  std::size_t n = 0;
  for (const auto& [job, map] : jobs_) n += map.size();
  return n;
}

std::size_t UrlStates::bytes() const {
  std::size_t n = 0;
  for (const auto& [job, map] : jobs_) n += map.bytes();
  return n;
}

}  // namespace scraperd::daemon
