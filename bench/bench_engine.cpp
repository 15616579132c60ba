// The engine's hot pure parts: token bucket decisions, CSS → XPath translation, and field
// extraction from a page of the benchmark site (libxml2 parse + two XPath queries).
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "config/config.h"
#include "config/css.h"
#include "daemon/extract/extract.h"
#include "daemon/crawl/frontier.h"

namespace {

using namespace scraperd;

// A bucket that always has a token: the cost of one decision (refill + take).
void BM_TokenBucketTake(benchmark::State& state) {
  auto now = daemon::Steady::now();
  daemon::TokenBucket bucket(1e9, 1'000'000, now);
  for (auto _ : state) {
    now += std::chrono::nanoseconds(1);
    benchmark::DoNotOptimize(bucket.take(now));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TokenBucketTake);

// An empty bucket: the decision says how long to wait.
void BM_TokenBucketRefuse(benchmark::State& state) {
  auto now = daemon::Steady::now();
  daemon::TokenBucket bucket(1.0, 1, now);
  bucket.take(now);
  for (auto _ : state) benchmark::DoNotOptimize(bucket.take(now));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TokenBucketRefuse);

void BM_CssToXpath(benchmark::State& state) {
  const char* selectors[] = {"h1", "ul.items > li:nth-child(2n+1) a[href^='/p/']::attr(href)",
                             "div#main .price:not(.old), span.sale ~ em::text"};
  const char* css = selectors[state.range(0)];
  for (auto _ : state) benchmark::DoNotOptimize(config::css_to_xpath(css));
  state.SetLabel(css);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CssToXpath)->DenseRange(0, 2);

// About 10 KB, shaped like bench/gen_site.py's pages: a title, 12 items with a .price.
std::string site_page() {
  std::string items;
  for (int i = 0; i < 12; ++i) {
    items += "<li class=\"item\"><h2><a href=\"/p/" + std::to_string(i * 97) + ".html\">item " +
             std::to_string(i) + "</a></h2><p class=\"desc\">";
    for (int w = 0; w < 90; ++w) items += "saffron ";
    items += "</p><span class=\"price\">" + std::to_string(10 + i) + ".99</span></li>";
  }
  return "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Page 1</title></head>"
         "<body><h1>Page 1</h1><ul class=\"items\">" +
         items + "</ul><nav></nav></body></html>\n";
}

void BM_ExtractPage(benchmark::State& state) {
  std::vector<config::Field> fields(2);
  fields[0].name = "title";
  fields[0].xpath = "//title";
  fields[1].name = "price";
  fields[1].xpath = "(//span[@class='price'])[1]";
  fields[1].type = config::Field::Type::kNumber;
  daemon::FieldExtractor extractor(fields);
  std::string page = site_page();
  for (auto _ : state) {
    auto e = extractor.extract(page, "text/html; charset=utf-8");
    if (!e.missing.empty()) state.SkipWithError("a field is missing");
    benchmark::DoNotOptimize(e);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(page.size()));
}
BENCHMARK(BM_ExtractPage);

void BM_ContentHash(benchmark::State& state) {
  std::string page = site_page();
  for (auto _ : state) benchmark::DoNotOptimize(daemon::content_hash(page));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(page.size()));
}
BENCHMARK(BM_ContentHash);

}  // namespace

BENCHMARK_MAIN();
