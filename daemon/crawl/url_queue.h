// UrlQueue: the links a follow run found and has not started yet, first in first out, packed
// one after another into 64 KiB blocks: a URL costs its length and 8 bytes, where a
// std::deque of (std::string, int) costs ~90 bytes for a typical URL (docs/performance.md,
// W4). A block is freed once every URL in it has been taken.
//
//   UrlQueue q;
//   q.push("https://example.com/a", 1);
//   while (auto next = q.pop()) start(next->url, next->depth);
//
// Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace scraperd::daemon {

class UrlQueue {
 public:
  struct Item {
    std::string url;
    int depth = 0;
  };

  void push(std::string_view url, int depth);
  std::optional<Item> pop();
  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  // Bytes held in blocks.
  std::size_t bytes() const;

 private:
  struct Block {
    std::unique_ptr<char[]> data;
    std::size_t capacity = 0;
    std::size_t end = 0;  // bytes written
  };
  std::deque<Block> blocks_;
  std::size_t head_ = 0;  // the next record's offset in blocks_.front()
  std::size_t size_ = 0;
};

}  // namespace scraperd::daemon
