// What a crawl keeps per URL: fingerprint tables, the packed queue of waiting links, and
// UrlStates over a real database (memory holds memos; rows are read when a fetch needs them).
#include <catch2/catch.hpp>
#include <set>
#include <string>

#include "daemon/crawl/fingerprints.h"
#include "daemon/crawl/url_queue.h"
#include "daemon/crawl/url_state.h"
#include "storage/writer.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using namespace scraperd::daemon;

TEST_CASE("a fingerprint set holds a million URLs in a flat table", "[crawl][memory]") {
  FingerprintSet seen;
  const int n = 1'000'000;
  for (int i = 0; i < n; ++i)
    REQUIRE(seen.insert(fingerprint("http://127.0.0.1:8080/p/" + std::to_string(i))));
  CHECK(seen.size() == static_cast<std::size_t>(n));
  // Every one is found again, and inserting it again says so.
  for (int i = 0; i < n; i += 997) {
    const auto fp = fingerprint("http://127.0.0.1:8080/p/" + std::to_string(i));
    CHECK(seen.contains(fp));
    CHECK_FALSE(seen.insert(fp));
  }
  CHECK_FALSE(seen.contains(fingerprint("http://127.0.0.1:8080/p/" + std::to_string(n))));
  // 8 bytes a slot, at most 3/4 full: ~8-21 bytes a URL, never a node per URL.
  CHECK(seen.bytes() <= 2 * 1024 * 1024 * 8);
  CHECK(seen.bytes() >= n * 8);
}

TEST_CASE("a fingerprint map keeps each key's value through growth", "[crawl][memory]") {
  FingerprintMap<std::uint64_t> map;
  CHECK(map.find(fingerprint("x")) == nullptr);
  for (std::uint64_t i = 1; i <= 100'000; ++i) {
    auto [value, added] = map.insert(i * 7919);  // keys that are not hashes
    REQUIRE(added);
    *value = i;
  }
  for (std::uint64_t i = 1; i <= 100'000; ++i) {
    const std::uint64_t* value = map.find(i * 7919);
    REQUIRE(value != nullptr);
    REQUIRE(*value == i);
  }
  CHECK(map.find(3) == nullptr);
  CHECK(fingerprint("") != 0);
  auto [again, added] = map.insert(7919);
  CHECK_FALSE(added);
  CHECK(*again == 1);
}

TEST_CASE("the queue of waiting links is first in, first out, in packed blocks",
          "[crawl][memory]") {
  UrlQueue q;
  CHECK(q.empty());
  CHECK_FALSE(q.pop());
  const std::string long_url = "http://h/" + std::string(100'000, 'x');  // over a block
  for (int i = 0; i < 50'000; ++i) {
    q.push("http://127.0.0.1/p/" + std::to_string(i), i % 7);
    if (i == 20'000) q.push(long_url, 3);
  }
  CHECK(q.size() == 50'001);
  // ~27 bytes a URL here, in 64 KiB blocks (and the long one's own).
  CHECK(q.bytes() < 50'001 * 40 + 2 * 100'000);
  for (int i = 0; i < 50'000; ++i) {
    auto item = q.pop();
    REQUIRE(item);
    REQUIRE(item->url == "http://127.0.0.1/p/" + std::to_string(i));
    REQUIRE(item->depth == i % 7);
    if (i == 20'000) {
      auto big = q.pop();
      REQUIRE(big);
      CHECK(big->url == long_url);
      CHECK(big->depth == 3);
    }
  }
  CHECK(q.empty());
  CHECK(q.bytes() == 0);  // everything given back
  q.push("", 0);          // an empty string is a URL like another
  auto empty = q.pop();
  REQUIRE(empty);
  CHECK(empty->url.empty());
}

TEST_CASE("a memo tells rows apart and gives the content hash back", "[crawl][memory]") {
  KnownUrl a{"\"e1\"", "", "0123456789abcdef", R"({"t":1})", R"(["http://h/x"])"};
  CHECK(memo_of(a).validators());
  CHECK(content_hash_of(memo_of(a)) == "0123456789abcdef");
  KnownUrl b = a;
  b.data = R"({"t":2})";  // data follows the content hash: the memo does not keep it
  CHECK(memo_of(b) == memo_of(a));
  b = a;
  b.links = R"(["http://h/y"])";
  CHECK(memo_of(b) != memo_of(a));
  b = a;
  b.etag = "\"e2\"";
  CHECK(memo_of(b) != memo_of(a));
  b = a;
  b.etag.clear();
  CHECK_FALSE(memo_of(b).validators());
  b.last_modified = "Thu, 03 Dec 2026 10:00:00 GMT";
  CHECK(memo_of(b).validators());
  // Parts do not run into each other.
  CHECK(memo_of(KnownUrl{"ab", "", "", "", ""}) != memo_of(KnownUrl{"a", "b", "", "", ""}));
  CHECK(content_hash_of(memo_of(KnownUrl{})).empty());
}

TEST_CASE("url states: memos in memory, rows read from the database when up to date",
          "[crawl][memory][storage]") {
  test::TempDir dir;
  const std::string db = dir.file("u.db");
  KnownUrl v1{"\"1\"", "", "00000000000000aa", R"({"t":"one"})", ""};
  {
    storage::Writer writer(db);
    writer.push(storage::UrlState{"j", "http://h/a", v1.etag, v1.last_modified, v1.content_hash,
                                  v1.data, v1.links});
    writer.push(storage::UrlState{"j", "http://h/b", "", "", "00000000000000bb", "", ""});
    writer.close();
  }
  UrlStates states(db);
  states.load();
  CHECK(states.size() == 2);
  const UrlMemo* a = states.find("j", "http://h/a");
  REQUIRE(a != nullptr);
  CHECK(*a == memo_of(v1));
  CHECK(states.find("j", "http://h/c") == nullptr);
  CHECK(states.find("other", "http://h/a") == nullptr);
  const UrlMemo* b = states.find("j", "http://h/b");
  REQUIRE(b != nullptr);
  CHECK_FALSE(b->validators());
  CHECK(content_hash_of(*b) == "00000000000000bb");

  auto row = states.read("j", "http://h/a", memo_of(v1));
  REQUIRE(row);
  CHECK(row->data == v1.data);
  CHECK(row->etag == v1.etag);
  // Memory moved on (a newer row queued, not written yet): the stored one is not used.
  KnownUrl v2 = v1;
  v2.etag = "\"2\"";
  states.set("j", "http://h/a", memo_of(v2));
  CHECK(*states.find("j", "http://h/a") == memo_of(v2));
  CHECK_FALSE(states.read("j", "http://h/a", memo_of(v2)));
  CHECK_FALSE(states.read("j", "http://h/none", memo_of(v2)));

  // No database yet: nothing to read, no error.
  UrlStates fresh(dir.file("absent.db"));
  CHECK_FALSE(fresh.read("j", "http://h/a", memo_of(v1)));
}
