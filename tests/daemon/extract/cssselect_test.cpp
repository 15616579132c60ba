// cssselect's own test suite (github.com/scrapy/cssselect, tests/test_cssselect.py), ported as
// data: its fixtures are files under tests/pages/cssselect/ and its selector → expected ids (or
// count) cases are tables beside them. Each selector goes through our translator and the field
// extractor, the way a job's `css:` field does; a failure names the selector.
#include "daemon/extract/extract.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "config/css.h"

using namespace scraperd;

namespace {

const std::string kDir = std::string(SCRAPERD_SOURCE_DIR) + "/tests/pages/cssselect/";

std::string file(const std::string& name) {
  std::ifstream in(kDir + name, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  REQUIRE_FALSE(s.str().empty());
  return s.str();
}

struct Case {
  int line = 0;
  std::string selector, expected, flag;
};

// Lines of `name`: selector TAB expected [TAB flag]; '#' starts a comment line.
std::vector<Case> cases(const std::string& name) {
  std::vector<Case> out;
  std::istringstream in(file(name));
  int n = 0;
  for (std::string line; std::getline(in, line);) {
    ++n;
    if (line.empty() || line[0] == '#') continue;
    Case c;
    c.line = n;
    std::istringstream cols(line);
    std::getline(cols, c.selector, '\t');
    std::getline(cols, c.expected, '\t');
    std::getline(cols, c.flag, '\t');
    INFO(name << ":" << n);
    REQUIRE((c.flag.empty() || c.flag == "html-only" || c.flag == "error" || c.flag == "refused"));
    REQUIRE_FALSE(c.expected.empty());
    out.push_back(c);
  }
  return out;
}

// The ids (or "nil") of the elements `selector` selects in `page`, as a `css` field with
// `attr: id` and `all: true` reads them; "-" for none. Empty with an error for a selector the
// translator refuses.
std::string ids(const std::string& selector, const std::string& page,
                const std::string& content_type, std::string* error = nullptr) {
  auto t = config::css_to_xpath(selector);
  if (!t.error.empty()) {
    if (error) *error = t.error;
    return {};
  }
  std::vector<config::Field> fields(1);
  fields[0].name = "ids";
  fields[0].css = selector;
  fields[0].xpath = t.xpath;
  fields[0].attr = "id";
  fields[0].all = true;
  daemon::FieldExtractor extractor(fields);
  auto e = extractor.extract(page, content_type);
  REQUIRE(e.problem.empty());
  std::string out;
  const auto data = nlohmann::json::parse(e.data);
  for (const auto& id : data["ids"])
    out += (out.empty() ? "" : " ") + (id == "" ? std::string("nil") : id.get<std::string>());
  return out.empty() ? "-" : out;
}

// `xpath` evaluated from <body> instead of the document (cssselect's Shakespeare test selects
// from body): each alternative of a group gets the path to body in front.
std::string from_body(const std::string& xpath) {
  std::string out = "//body/";
  int depth = 0;
  char quote = 0;
  for (std::size_t i = 0; i < xpath.size(); ++i) {
    char c = xpath[i];
    if (quote) {
      quote = c == quote ? 0 : quote;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '[' || c == '(') {
      ++depth;
    } else if (c == ']' || c == ')') {
      --depth;
    } else if (depth == 0 && xpath.compare(i, 3, " | ") == 0) {
      out += " | //body/";
      i += 2;
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

TEST_CASE("cssselect's HTML_IDS cases, read as HTML", "[extract][cssselect]") {
  const std::string page = file("html_ids.html");
  auto all = cases("html_ids.cases");
  REQUIRE(all.size() >= 120);
  for (const auto& c : all) {
    INFO("html_ids.cases:" << c.line << ": " << c.selector);
    std::string error;
    std::string got = ids(c.selector, page, "text/html", &error);
    if (c.flag == "error" || c.flag == "refused") {
      CHECK_FALSE(error.empty());
    } else {
      INFO(error);
      CHECK(got == c.expected);
    }
  }
}

TEST_CASE("cssselect's HTML_IDS cases, read as XML", "[extract][cssselect]") {
  const std::string page = file("html_ids.html");
  for (const auto& c : cases("html_ids.cases")) {
    if (c.flag == "error" || c.flag == "refused") continue;
    INFO("html_ids.cases:" << c.line << ": " << c.selector);
    // cssselect's generic (XML) translation: case-sensitive, and the HTML pseudo-classes
    // select nothing.
    CHECK(ids(c.selector, page, "application/xml") == (c.flag == "html-only" ? "-" : c.expected));
  }
}

TEST_CASE("cssselect's Shakespeare counts, from <body>", "[extract][cssselect]") {
  const std::string page = file("shakespeare.html");
  auto all = cases("shakespeare.cases");
  REQUIRE(all.size() >= 45);
  for (const auto& c : all) {
    INFO("shakespeare.cases:" << c.line << ": " << c.selector);
    auto t = config::css_to_xpath(c.selector);
    INFO(t.error);
    REQUIRE(t.error.empty());
    std::vector<config::Field> fields(1);
    fields[0].name = "n";
    fields[0].xpath = "count(" + from_body(t.xpath) + ")";
    fields[0].type = config::Field::Type::kInt;
    INFO(fields[0].xpath);
    auto data =
        nlohmann::json::parse(daemon::FieldExtractor(fields).extract(page, "text/html").data);
    CHECK(data["n"] == std::stoi(c.expected));
  }
}

TEST_CASE("cssselect's :lang() cases on an XML document", "[extract][cssselect]") {
  const std::string page = file("xmllang_ids.xml");
  for (const auto& c : cases("xmllang_ids.cases")) {
    INFO("xmllang_ids.cases:" << c.line << ": " << c.selector);
    CHECK(ids(c.selector, page, "application/xml") == c.expected);
  }
}

TEST_CASE("cssselect's parse errors are refused, with what is wrong", "[extract][cssselect]") {
  auto all = cases("parse_errors.cases");
  REQUIRE(all.size() >= 35);
  for (const auto& c : all) {
    INFO("parse_errors.cases:" << c.line << ": '" << c.selector << "'");
    REQUIRE((c.expected == "refused" || c.expected == "accepted"));
    auto t = config::css_to_xpath(c.selector);
    INFO(t.error);
    CHECK(t.error.empty() == (c.expected == "accepted"));
  }
}
