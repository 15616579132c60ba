#include "daemon/crawl/url_queue.h"

#include <algorithm>
#include <cstring>

namespace scraperd::daemon {
namespace {

constexpr std::size_t kBlock = 64 * 1024;
constexpr std::size_t kHeader = 2 * sizeof(std::uint32_t);  // length, depth

}  // namespace

void UrlQueue::push(std::string_view url, int depth) {
  const std::size_t need = kHeader + url.size();
  if (blocks_.empty() || blocks_.back().capacity - blocks_.back().end < need) {
    const std::size_t capacity = std::max(kBlock, need);  // a URL longer than a block: its own
    blocks_.push_back(Block{std::make_unique<char[]>(capacity), capacity, 0});
  }
  Block& b = blocks_.back();
  const std::uint32_t header[2] = {static_cast<std::uint32_t>(url.size()),
                                   static_cast<std::uint32_t>(depth)};
  std::memcpy(b.data.get() + b.end, header, kHeader);
  std::memcpy(b.data.get() + b.end + kHeader, url.data(), url.size());
  b.end += need;
  ++size_;
}

std::optional<UrlQueue::Item> UrlQueue::pop() {
  if (size_ == 0) return std::nullopt;
  while (head_ == blocks_.front().end) {  // a block used up (written in full before the next)
    blocks_.pop_front();
    head_ = 0;
  }
  const Block& b = blocks_.front();
  std::uint32_t header[2];
  std::memcpy(header, b.data.get() + head_, kHeader);
  Item item{std::string(b.data.get() + head_ + kHeader, header[0]), static_cast<int>(header[1])};
  head_ += kHeader + header[0];
  --size_;
  if (size_ == 0) {  // nothing left: give every block back
    blocks_.clear();
    head_ = 0;
  }
  return item;
}

std::size_t UrlQueue::bytes() const {
  std::size_t n = 0;
  for (const auto& b : blocks_) n += b.capacity;
  return n;
}

}  // namespace scraperd::daemon
