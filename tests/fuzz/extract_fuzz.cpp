// libFuzzer target: a CSS selector (the first line) and a page (the rest) through the CSS
// translator (HTML and XML readings), the field extractor (the page read as HTML and as XML,
// with a namespace registered) and the link finder: never a crash, a hang or a sanitizer
// report, and the fields are always one valid JSON object; a parse that stops early once
// first-match fields are settled gives what the whole page gives. Seeds: `make fuzz` pairs the
// pages of tests/pages with tests/fuzz/selectors.txt; tests/fuzz/css.dict holds the grammar's
// tokens.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "config/css.h"
#include "daemon/extract/extract.h"

using namespace scraperd;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto newline = input.find('\n');
  std::string_view css = input.substr(0, newline);
  std::string_view page = newline == std::string_view::npos ? "" : input.substr(newline + 1);

  auto t = config::css_to_xpath(css);
  if (t.error.empty() == t.xpath.empty()) __builtin_trap();  // exactly one of the two
  auto x = config::css_to_xpath(css, config::Markup::kXml);
  if (x.error.empty() != t.error.empty()) __builtin_trap();  // the readings accept the same
  if (!t.error.empty()) return 0;

  std::vector<config::Field> fields(4);
  for (auto& f : fields) f.namespaces = {{"ns", "urn:fuzz"}};
  fields[0].css = std::string(css);
  fields[0].name = "text";
  fields[0].xpath = t.xpath;
  fields[1].name = "numbers";
  fields[1].xpath = t.xpath;
  fields[1].all = true;
  fields[1].type = config::Field::Type::kNumber;
  fields[2].name = "href";
  fields[2].xpath = t.xpath;
  fields[2].attr = "href";
  fields[2].regex = "([0-9]+)";
  fields[3].name = "digits";
  fields[3].regex = "([0-9]+)";
  fields[3].all = true;
  fields[3].type = config::Field::Type::kInt;
  daemon::FieldExtractor extractor(fields);
  for (const char* type : {"text/html", "application/xml"}) {
    auto e = extractor.extract(page, type);
    auto j = nlohmann::json::parse(e.data, nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.size() != fields.size()) __builtin_trap();
  }

  config::Follow follow;
  follow.xpath = t.xpath;
  follow.same_host = false;
  daemon::LinkFinder finder(follow);
  for (const auto& link : finder.find(page, "text/html", "http://fuzz.example/a/b", 50))
    if (link.rfind("http", 0) != 0) __builtin_trap();  // only http(s) URLs come out

  // First-match fields alone may stop the HTML parse early (settled.h); asking for links too
  // makes it read the whole page. Both must give the same fields.
  std::vector<config::Field> first(2);
  first[0].name = "text";
  first[0].xpath = t.xpath;
  first[1].name = "href";
  first[1].xpath = t.xpath;
  first[1].attr = "href";
  daemon::FieldExtractor first_only(first);
  const std::string url = "http://fuzz.example/a/b";
  auto early = daemon::read_page(&first_only, nullptr, page, "text/html", url, 50);
  auto whole = daemon::read_page(&first_only, &finder, page, "text/html", url, 50);
  if (whole.stopped_early) __builtin_trap();
  if (early.extracted.data != whole.extracted.data ||
      early.extracted.missing != whole.extracted.missing)
    __builtin_trap();
  return 0;
}
