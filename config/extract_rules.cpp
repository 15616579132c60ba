// What to take from a page: `extract` fields, `follow`, and the selectors they are written
// in (CSS translated to XPath, XPath 1.0, PCRE2 regular expressions, XML namespaces), each
// compiled once at load so a bad one is reported at its line.
#include <libxml/xpath.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <tuple>

#include "config/css.h"
#include "config/loader.h"
#include "config/text.h"

namespace scraperd::config::detail {

namespace {

std::string compile_regex(const std::string& pattern) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                                 PCRE2_UTF, &code, &offset, nullptr);
  if (re) {
    pcre2_code_free(re);
    return "";
  }
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return std::string(reinterpret_cast<char*>(buf)) + " at offset " + std::to_string(offset);
}

void quiet_xml_errors(void*, const char*, ...) {}

bool xpath_compiles(const std::string& expr) {
  xmlSetGenericErrorFunc(nullptr, quiet_xml_errors);
  xmlSetStructuredErrorFunc(nullptr, nullptr);
  xmlXPathCompExprPtr comp = xmlXPathCompile(reinterpret_cast<const xmlChar*>(expr.c_str()));
  if (!comp) return false;
  xmlXPathFreeCompExpr(comp);
  return true;
}

}  // namespace

std::optional<std::string> Loader::regex(const Yaml& node, const std::string& what) {
  auto text = string(node, what);
  if (!text) return std::nullopt;
  if (valid_regexes_.contains(*text)) return text;  // generated files repeat patterns
  if (auto err = compile_regex(*text); !err.empty()) {
    error(node, what + " is not a valid regular expression: " + err);
    return std::nullopt;
  }
  valid_regexes_.insert(*text);
  return text;
}

// A CSS selector node → {as written, its XPath translation}.
std::optional<std::pair<std::string, std::string>> Loader::css(const Yaml& node,
                                                               const std::string& what) {
  auto text = string(node, what + " css");
  if (!text) return std::nullopt;
  auto t = css_to_xpath(*text);
  if (!t.error.empty()) {
    error(node, what + " css '" + node.Scalar() + "': " + t.error);
    return std::nullopt;
  }
  return std::pair{*text, t.xpath};
}

// `namespaces`: prefix → URI for the names of XPath and CSS selectors, in the order written.
std::optional<std::vector<std::pair<std::string, std::string>>> Loader::namespaces(
    const Yaml& node, const std::string& what) {
  if (!node.IsMap()) {
    error(node,
          what + " must be a mapping of prefix: URI, like {atom: http://www.w3.org/2005/Atom}");
    return std::nullopt;
  }
  std::vector<std::pair<std::string, std::string>> out;
  bool ok = true;
  for (const auto& kv : node.entries) {
    auto prefix = string(kv.first, what + " prefix");
    auto uri = string(kv.second, what + " URI of '" + kv.first.Scalar() + "'");
    if (!prefix || !uri) {
      ok = false;
      continue;
    }
    bool name = !prefix->empty() &&
                (std::isalpha(static_cast<unsigned char>((*prefix)[0])) || (*prefix)[0] == '_');
    for (char c : *prefix)
      name =
          name && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
    if (!name || lower(*prefix).starts_with("xml")) {
      error(kv.first, what + ": '" + kv.first.Scalar() +
                          "' is not a usable prefix (letters, digits, '_', '-', '.'; not xml...)");
      ok = false;
    } else if (uri->empty()) {
      error(kv.second, what + ": the URI of '" + *prefix + "' is empty");
      ok = false;
    } else if (std::any_of(out.begin(), out.end(), [&](auto& p) { return p.first == *prefix; })) {
      error(kv.first, what + ": duplicate prefix '" + *prefix + "'");
      ok = false;
    } else {
      out.emplace_back(*prefix, *uri);
    }
  }
  if (!ok) return std::nullopt;
  return out;
}

// A selector from a `css:` or `xpath:` key of `node`, as {as written, XPath to evaluate};
// two empty strings when there is neither.
std::optional<std::pair<std::string, std::string>> Loader::selector(const Yaml& node,
                                                                    const std::string& what) {
  if (const auto& c = node["css"]; c) return css(c, what);
  if (const auto& x = node["xpath"]; x) {
    auto text = string(x, what + " xpath");
    if (!text) return std::nullopt;
    if (!valid_xpaths_.contains(*text)) {
      if (!xpath_compiles(*text)) {
        error(x, what + " xpath '" + x.Scalar() + "' is not a valid XPath 1.0 expression");
        return std::nullopt;
      }
      valid_xpaths_.insert(*text);
    }
    return std::pair{*text, *text};
  }
  return std::pair{std::string(), std::string()};
}

void Loader::read_follow(const Yaml& node, Job& job) {
  check_keys(node, kFollowKeys, "in 'follow'");
  Follow follow;
  if (node["css"] && node["xpath"])
    error(node["xpath"], "'follow' takes 'css' or 'xpath', not both");
  auto sel = selector(node, "'follow'");
  if (!sel) return;
  if (sel->first.empty()) {
    follow.selector = "a[href]";
    follow.xpath = css_to_xpath(follow.selector).xpath;
  } else {
    std::tie(follow.selector, follow.xpath) = *sel;
  }
  if (const auto& s = node["same_host"]; s)
    if (auto v = boolean(s, "'follow.same_host'")) follow.same_host = *v;
  if (const auto& d = node["max_depth"]; d)
    if (auto v = integer(d, "'follow.max_depth'", 0, 100)) follow.max_depth = static_cast<int>(*v);
  if (const auto& p = node["max_pages"]; p)
    if (auto v = integer(p, "'follow.max_pages'", 1, 1'000'000))
      follow.max_pages = static_cast<int>(*v);
  for (auto [key, list] : {std::pair{"allow", &follow.allow}, std::pair{"deny", &follow.deny}}) {
    const auto& n = node[key];
    if (!n) continue;
    std::vector<Yaml> items;
    if (n.IsSequence())
      for (const auto& i : n.items) items.push_back(i);
    else
      items.push_back(n);
    for (const auto& i : items)
      if (auto re = regex(i, "'follow." + std::string(key) + "' pattern")) list->push_back(*re);
  }
  job.follow = std::move(follow);
}

void Loader::read_extract(const Yaml& node, Job& job) {
  job.extract.clear();
  for (const auto& kv : node.entries) {
    Field field;
    field.name = kv.first.Scalar();
    std::string what = "field '" + field.name + "'";
    const Yaml& spec = kv.second;
    if (spec.IsScalar()) {  // shorthand: a CSS selector
      auto sel = css(spec, what);
      if (!sel) continue;
      std::tie(field.css, field.xpath) = *sel;
      job.extract.push_back(std::move(field));
      continue;
    }
    if (!map(spec, what)) continue;
    check_keys(spec, kFieldKeys, "in " + what);
    int sources = (spec["css"] ? 1 : 0) + (spec["xpath"] ? 1 : 0) + (spec["json"] ? 1 : 0);
    if (sources > 1) {
      error(spec, what + " takes one of 'css', 'xpath' and 'json'");
      continue;
    }
    if (sources == 0 && !spec["regex"]) {
      error(spec, what + " needs 'css', 'xpath', 'json' or 'regex'");
      continue;
    }
    auto sel = selector(spec, what);
    if (!sel) continue;
    if (!sel->first.empty()) {
      if (spec["css"]) field.css = sel->first;
      field.xpath = sel->second;
    }
    if (const auto& j = spec["json"]; j) {
      auto ptr = string(j, what + " json");
      if (!ptr) continue;
      bool valid = ptr->empty() || (*ptr)[0] == '/';
      for (size_t i = 0; valid && i < ptr->size(); ++i)
        if ((*ptr)[i] == '~')
          valid = i + 1 < ptr->size() && ((*ptr)[i + 1] == '0' || (*ptr)[i + 1] == '1');
      if (!valid) {
        error(j, what + " json '" + j.Scalar() + "' is not a JSON Pointer (like /items/0/price)");
        continue;
      }
      field.json = *ptr;
    }
    if (const auto& r = spec["regex"]; r) {
      auto re = regex(r, what + " regex");
      if (!re) continue;
      field.regex = *re;
    }
    if (const auto& a = spec["attr"]; a) {
      if (field.xpath.empty())
        error(a, what + ": 'attr' needs a 'css' or 'xpath' selector");
      else if (auto v = string(a, what + " attr"))
        field.attr = *v;
    }
    if (const auto& a = spec["all"]; a)
      if (auto v = boolean(a, what + " all")) field.all = *v;
    if (const auto& n = spec["namespaces"]; n)
      if (auto v = namespaces(n, what + " namespaces")) field.namespaces = *v;
    if (const auto& q = spec["required"]; q)
      if (auto v = boolean(q, what + " required")) field.required = *v;
    if (const auto& t = spec["type"]; t) {
      if (auto v = one_of(t, what + " type", {"string", "int", "number", "bool"})) {
        field.type = *v == "int"      ? Field::Type::kInt
                     : *v == "number" ? Field::Type::kNumber
                     : *v == "bool"   ? Field::Type::kBool
                                      : Field::Type::kString;
      }
    }
    job.extract.push_back(std::move(field));
  }
}

// Each field takes the job's namespaces for the prefixes it does not set itself; a prefix a
// selector uses must be declared (`xml` always is).
void Loader::resolve_namespaces(const Yaml& node, Job& job) {
  for (auto& field : job.extract) {
    for (const auto& ns : job.namespaces)
      if (std::none_of(field.namespaces.begin(), field.namespaces.end(),
                       [&](auto& p) { return p.first == ns.first; }))
        field.namespaces.push_back(ns);
    for (const auto& prefix : xpath_prefixes(field.xpath)) {
      if (prefix == "xml" || std::any_of(field.namespaces.begin(), field.namespaces.end(),
                                         [&](auto& p) { return p.first == prefix; }))
        continue;
      const Yaml& spec = node["extract"][field.name];
      const Yaml& at = spec && spec.IsMap() ? (spec["css"] ? spec["css"] : spec["xpath"])
                       : spec               ? spec
                                            : node;
      error(at, "field '" + field.name + "' uses the namespace prefix '" + prefix +
                    "', which 'namespaces' does not declare");
    }
  }
}

}  // namespace scraperd::config::detail
