// Sets and maps keyed by a URL's 64-bit fingerprint instead of the URL itself, for what grows
// with a crawl (the URLs a run has seen, what is known of each URL fetched): 8 bytes a key in
// one flat array (open addressing, linear probing, at most 3/4 full), no node or string per
// URL. Two URLs with the same fingerprint count as one: with 64 bits, ~3 × 10⁻⁸ for the
// first such pair in a million URLs, ~3 × 10⁻⁶ in ten million (crawlers such as Heritrix
// and BUbiNG make the same trade). docs/performance.md, W4.
//
//   FingerprintSet seen;
//   if (seen.insert(fingerprint(url))) queue(url);
//
// Not thread-safe.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <utility>

namespace scraperd::daemon {

// Never 0 (the tables' empty slot).
inline std::uint64_t fingerprint(std::string_view text) {
  // libstdc++'s std::hash of a string is a 64-bit Murmur-style hash: in memory only, never
  // stored, so its value may change with the library.
  std::uint64_t h = std::hash<std::string_view>{}(text);
  return h == 0 ? 1 : h;
}

// A map from fingerprint to a small trivially copyable V (value-initialised when new).
template <typename V>
class FingerprintMap {
 public:
  FingerprintMap() = default;
  FingerprintMap(FingerprintMap&&) noexcept = default;
  FingerprintMap& operator=(FingerprintMap&&) noexcept = default;

  std::size_t size() const { return size_; }
  // Bytes held by the table (what it costs in memory).
  std::size_t bytes() const { return capacity_ * sizeof(Slot); }

  // Null when `key` is absent.
  V* find(std::uint64_t key) {
    if (capacity_ == 0) return nullptr;
    Slot& s = slots_[probe(key)];
    return s.key == key ? &s.value : nullptr;
  }
  const V* find(std::uint64_t key) const { return const_cast<FingerprintMap*>(this)->find(key); }

  // The value of `key`, and whether it was just added.
  std::pair<V*, bool> insert(std::uint64_t key) {
    if ((size_ + 1) * 4 > capacity_ * 3) grow();
    Slot& s = slots_[probe(key)];
    if (s.key == key) return {&s.value, false};
    s.key = key;
    s.value = V{};
    ++size_;
    return {&s.value, true};
  }

 private:
  struct Slot {
    std::uint64_t key = 0;  // 0: empty
    [[no_unique_address]] V value{};
  };

  // The slot of `key`, or the empty one where it would go. REQUIRES: capacity_ > 0.
  std::size_t probe(std::uint64_t key) const {
    const std::size_t mask = capacity_ - 1;
    // Fibonacci hashing: the product's high bits spread any keys over the table.
    std::size_t i = static_cast<std::size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
    while (slots_[i].key != 0 && slots_[i].key != key) i = (i + 1) & mask;
    return i;
  }

  void grow() {
    const std::size_t old_capacity = capacity_;
    std::unique_ptr<Slot[]> old = std::move(slots_);
    capacity_ = old_capacity == 0 ? 64 : old_capacity * 2;
    shift_ = 64 - std::countr_zero(capacity_);
    slots_ = std::make_unique<Slot[]>(capacity_);
    for (std::size_t i = 0; i < old_capacity; ++i)
      if (old[i].key != 0) slots_[probe(old[i].key)] = old[i];
  }

  std::unique_ptr<Slot[]> slots_;
  std::size_t capacity_ = 0;  // a power of two, or 0
  int shift_ = 64;            // 64 - log2(capacity_)
  std::size_t size_ = 0;
};

// The keys alone.
class FingerprintSet {
 public:
  std::size_t size() const { return map_.size(); }
  std::size_t bytes() const { return map_.bytes(); }
  bool contains(std::uint64_t key) const { return map_.find(key) != nullptr; }
  // True when `key` was not in the set yet.
  bool insert(std::uint64_t key) { return map_.insert(key).second; }

 private:
  struct None {};
  FingerprintMap<None> map_;
};

}  // namespace scraperd::daemon
