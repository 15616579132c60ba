#include "daemon/extract.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <libxml/HTMLparser.h>
#include <libxml/xpath.h>
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <mutex>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "config/url.h"

namespace scraperd::daemon {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

struct DocFree {
  void operator()(xmlDoc* d) const { xmlFreeDoc(d); }
};
struct ContextFree {
  void operator()(xmlXPathContext* c) const { xmlXPathFreeContext(c); }
};
struct ObjectFree {
  void operator()(xmlXPathObject* o) const { xmlXPathFreeObject(o); }
};
struct CompFree {
  void operator()(xmlXPathCompExpr* c) const { xmlXPathFreeCompExpr(c); }
};
struct XmlFree {
  void operator()(xmlChar* s) const { xmlFree(s); }
};

// libxml2 wants xmlInitParser() once, before threads use it.
void init_libxml() {
  static std::once_flag once;
  std::call_once(once, [] { xmlInitParser(); });
}

// Compiled XPath, one per expression per thread: compiled expressions are not shared
// between threads.
xmlXPathCompExpr* compiled(const std::string& xpath) {
  thread_local std::unordered_map<std::string, std::unique_ptr<xmlXPathCompExpr, CompFree>> cache;
  auto& slot = cache[xpath];
  if (!slot) slot.reset(xmlXPathCompile(reinterpret_cast<const xmlChar*>(xpath.c_str())));
  return slot.get();
}

std::string string_of(xmlNode* node) {
  std::unique_ptr<xmlChar, XmlFree> text;
  if (node->type == XML_ELEMENT_NODE) {
    text.reset(xmlGetProp(node, reinterpret_cast<const xmlChar*>("href")));
    if (!text) text.reset(xmlGetProp(node, reinterpret_cast<const xmlChar*>("src")));
  } else {
    text.reset(xmlNodeGetContent(node));
  }
  return text ? std::string(trim(reinterpret_cast<const char*>(text.get()))) : std::string();
}

// The nodes `xpath` selects in `doc`, as strings (see string_of).
std::vector<std::string> select(xmlDoc* doc, const std::string& xpath) {
  std::vector<std::string> out;
  auto* expr = compiled(xpath);
  if (!expr) return out;
  std::unique_ptr<xmlXPathContext, ContextFree> ctx(xmlXPathNewContext(doc));
  if (!ctx) return out;
  std::unique_ptr<xmlXPathObject, ObjectFree> result(xmlXPathCompiledEval(expr, ctx.get()));
  if (!result) return out;
  if (result->type == XPATH_NODESET && result->nodesetval) {
    for (int i = 0; i < result->nodesetval->nodeNr; ++i)
      out.push_back(string_of(result->nodesetval->nodeTab[i]));
  } else if (result->type == XPATH_STRING && result->stringval) {
    out.emplace_back(reinterpret_cast<const char*>(result->stringval));
  }
  return out;
}

struct Regex {
  pcre2_code* code = nullptr;
  explicit Regex(const std::string& pattern) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF,
                         &error, &offset, nullptr);
    if (!code) throw std::invalid_argument("bad pattern: " + pattern);  // validated at load
  }
  Regex(Regex&& o) noexcept : code(std::exchange(o.code, nullptr)) {}
  ~Regex() { pcre2_code_free(code); }
  bool search(const std::string& text) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, md,
                         nullptr);
    pcre2_match_data_free(md);
    return rc >= 0;
  }
};

}  // namespace

struct LinkFinder::Patterns {
  std::vector<Regex> allow, deny;
};

bool is_html(std::string_view content_type) {
  std::string type = lower(trim(content_type.substr(0, content_type.find(';'))));
  return type.empty() || type == "text/html" || type == "application/xhtml+xml";
}

std::string charset_of(std::string_view content_type) {
  std::string lowered = lower(content_type);
  auto at = lowered.find("charset=");
  if (at == std::string::npos) return {};
  std::string_view value = content_type.substr(at + 8);
  value = value.substr(0, value.find(';'));
  value = trim(value);
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'')) {
    value.remove_prefix(1);
    value.remove_suffix(1);
  }
  return std::string(value);
}

LinkFinder::LinkFinder(const config::Follow& follow)
    : follow_(follow), patterns_(std::make_unique<Patterns>()) {
  init_libxml();
  for (const auto& p : follow.allow) patterns_->allow.emplace_back(p);
  for (const auto& p : follow.deny) patterns_->deny.emplace_back(p);
}

LinkFinder::~LinkFinder() = default;

bool LinkFinder::accepts(const std::string& url, const std::string& page_url) const {
  auto target = config::parse_url(url);
  if (!target) return false;  // not http(s)
  if (follow_.same_host) {
    auto page = config::parse_url(page_url);
    if (!page || lower(page->host) != lower(target->host)) return false;
  }
  if (!patterns_->allow.empty() && std::none_of(patterns_->allow.begin(), patterns_->allow.end(),
                                                [&](const Regex& r) { return r.search(url); }))
    return false;
  return std::none_of(patterns_->deny.begin(), patterns_->deny.end(),
                      [&](const Regex& r) { return r.search(url); });
}

std::vector<std::string> LinkFinder::find(std::string_view html, std::string_view content_type,
                                          const std::string& page_url, std::size_t limit) const {
  std::vector<std::string> links;
  if (html.empty() || limit == 0) return links;
  std::string charset = charset_of(content_type);
  std::unique_ptr<xmlDoc, DocFree> doc(
      htmlReadMemory(html.data(), static_cast<int>(std::min<std::size_t>(html.size(), INT_MAX)),
                     page_url.c_str(), charset.empty() ? nullptr : charset.c_str(),
                     HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                         HTML_PARSE_NONET | HTML_PARSE_COMPACT));
  if (!doc) return links;

  std::string base = page_url;
  if (auto bases = select(doc.get(), "//base[@href][1]"); !bases.empty() && !bases[0].empty())
    if (auto resolved = config::resolve_url(page_url, bases[0]); resolved) base = *resolved;

  std::unordered_set<std::string> seen;
  for (const auto& ref : select(doc.get(), follow_.xpath)) {
    if (ref.empty()) continue;
    auto url = config::resolve_url(base, ref);
    if (!url || !seen.insert(*url).second) continue;
    if (!accepts(*url, page_url)) continue;
    links.push_back(std::move(*url));
    if (links.size() >= limit) break;
  }
  return links;
}

}  // namespace scraperd::daemon
