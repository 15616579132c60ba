// The engine's hot pure parts: token bucket decisions, CSS → XPath translation, field
// extraction from a page of W1's site (libxml2 parse + two XPath queries), and fields plus
// links from a page of W4's site (one parse for both).
#include <benchmark/benchmark.h>

#include <chrono>
#include <string>

#include "config/config.h"
#include "config/css.h"
#include "daemon/crawl/frontier.h"
#include "daemon/extract/extract.h"

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

// W4's page (bench/site_server.cpp: ~5 KB, a title, a .price, 9 links in a list, then
// filler paragraphs), with W4's job: title and .price by CSS, follow a[href].
std::string w4_page() {
  std::string body =
      "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Page 4242</title></head>\n"
      "<body><h1>Item 4242</h1>\n<div class=\"item\"><span class=\"price\">612.37</span></div>\n"
      "<ul class=\"links\">\n";
  for (int i = 0; i < 9; ++i)
    body += "<li><a href=\"/p/" + std::to_string(4243 + 7919 * i % 100000) + "\">see also " +
            std::to_string(i) + "</a></li>\n";
  body += "</ul>\n";
  static const char* words[] = {"lorem",      "ipsum", "dolor", "sit", "amet",    "consectetur",
                                "adipiscing", "elit",  "sed",   "do",  "eiusmod", "tempor"};
  std::string text;
  for (int i = 0; text.size() < 4600; ++i) {
    if (i % 16 == 0) text += i ? "</p>\n<p>" : "<p>";
    text += words[(i * 7 + 3) % 12];
    text += ' ';
  }
  return body + text + "</p>\n</body></html>\n";
}

void BM_ExtractPageWithLinks(benchmark::State& state) {
  std::vector<config::Field> fields(2);
  fields[0].name = "title";
  fields[0].css = "title";
  fields[0].xpath = config::css_to_xpath("title").xpath;
  fields[1].name = "price";
  fields[1].css = ".price";
  fields[1].xpath = config::css_to_xpath(".price").xpath;
  config::Follow follow;
  follow.selector = "a[href]";
  follow.xpath = config::css_to_xpath("a[href]").xpath;
  daemon::FieldExtractor extractor(fields);
  daemon::LinkFinder finder(follow);
  const std::string page = w4_page(), url = "http://127.0.0.1:8080/p/4242";
  for (auto _ : state) {
    auto p = daemon::read_page(&extractor, &finder, page, "text/html; charset=utf-8", url, 64);
    if (!p.extracted.missing.empty() || p.links.size() != 9)
      state.SkipWithError("a field or a link is missing");
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(page.size()));
}
BENCHMARK(BM_ExtractPageWithLinks);

void BM_ContentHash(benchmark::State& state) {
  std::string page = site_page();
  for (auto _ : state) benchmark::DoNotOptimize(daemon::content_hash(page));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(page.size()));
}
BENCHMARK(BM_ContentHash);

}  // namespace

BENCHMARK_MAIN();
