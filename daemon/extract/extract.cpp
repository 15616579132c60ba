#include "daemon/extract/extract.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <libxml/HTMLparser.h>
#include <libxml/SAX2.h>
#include <libxml/globals.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlerror.h>
#include <libxml/xpath.h>
#include <libxml/xpathInternals.h>
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include "config/css.h"
#include "config/text.h"
#include "config/url.h"
#include "daemon/extract/settled.h"

namespace scraperd::daemon {
namespace {

using config::lower;
using config::trim;

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

// Page arenas. libxml2 allocates every node, attribute and string of a page on its own and
// frees them one by one with the document: a quarter of the daemon's CPU went to malloc and
// free (docs/performance.md). While a thread reads a page (an ArenaScope is alive), libxml2's
// allocations come from that thread's bump arena instead; freeing one does nothing, and the
// arena starts over when the outermost scope ends. Everything allocated in a scope must be
// freed before it ends and on the same thread: the document and every XPath object live
// inside one extract() or find() call. What outlives a page (compiled XPath, libxml2's own
// set-up) is allocated with the arena paused. A full arena falls back to malloc.
namespace arena {

constexpr std::size_t kSize = 1 << 20;
constexpr std::size_t kAlign = 16;  // what malloc guarantees; a header of this size holds n

// Plain data, so that reaching it is a TLS load: a thread_local with a destructor is reached
// through an init check on every access, and libxml2 allocates ~2,000 times per page.
struct State {
  char* base = nullptr;
  std::size_t used = 0;
  int depth = 0;  // active scopes; 0 = plain malloc
};
constinit thread_local State state;

// Gives the thread's arena back when the thread ends.
struct Owner {
  ~Owner() {
    delete[] state.base;
    state.base = nullptr;
  }
};

void ensure() {
  if (state.base) return;
  thread_local Owner owner;
  state.base = new char[kSize];
}

std::size_t rounded(std::size_t n) {
  return (n + kAlign - 1) & ~(kAlign - 1);
}

bool owns(const void* p) {
  const char* c = static_cast<const char*>(p);
  return state.base && c >= state.base && c < state.base + kSize;
}

std::size_t size_of(const void* p) {
  std::size_t n;
  std::memcpy(&n, static_cast<const char*>(p) - kAlign, sizeof n);
  return n;
}

void* allocate(std::size_t n) {
  if (state.depth > 0 && n < kSize && state.used + kAlign + rounded(n) <= kSize) {
    char* p = state.base + state.used;
    state.used += kAlign + rounded(n);
    std::memcpy(p, &n, sizeof n);
    return p + kAlign;
  }
  return std::malloc(n);
}

void release(void* p) {
  if (!owns(p)) std::free(p);
}

void* reallocate(void* p, std::size_t n) {
  if (!p) return allocate(n);
  if (!owns(p)) return std::realloc(p, n);
  char* c = static_cast<char*>(p);
  const std::size_t old = size_of(p);
  // The newest allocation (a growing buffer, typically) grows in place.
  if (state.depth > 0 && c + rounded(old) == state.base + state.used &&
      static_cast<std::size_t>(c - state.base) + rounded(n) <= kSize) {
    state.used = static_cast<std::size_t>(c - state.base) + rounded(n);
    std::memcpy(c - kAlign, &n, sizeof n);
    return p;
  }
  void* q = allocate(n);
  if (q) std::memcpy(q, p, std::min(old, n));
  return q;
}

char* duplicate(const char* s) {
  const std::size_t n = std::strlen(s) + 1;
  auto* p = static_cast<char*>(allocate(n));
  if (p) std::memcpy(p, s, n);
  return p;
}

// Makes libxml2 allocate through the functions above; runs before main, before any thread.
const bool installed = [] {
  xmlMemSetup(release, allocate, reallocate, duplicate);
  xmlInitParser();
  return true;
}();

}  // namespace arena

class ArenaScope {
 public:
  ArenaScope() {
    arena::ensure();
    ++arena::state.depth;
  }
  ~ArenaScope() {
    if (--arena::state.depth > 0) return;
    // libxml2 keeps the thread's last error, its strings allocated here, until the next error
    // or the thread's end (after the arena is freed): nothing may point into the arena.
    xmlResetLastError();
    arena::state.used = 0;
  }
  ArenaScope(const ArenaScope&) = delete;
  ArenaScope& operator=(const ArenaScope&) = delete;
};

// Allocations that must outlive the page (plain malloc) while a scope is alive.
class ArenaPause {
 public:
  ArenaPause() : depth_(std::exchange(arena::state.depth, 0)) {}
  ~ArenaPause() { arena::state.depth = depth_; }
  ArenaPause(const ArenaPause&) = delete;
  ArenaPause& operator=(const ArenaPause&) = delete;

 private:
  int depth_;
};

// Compiled XPath, one per expression per thread: compiled expressions are not shared
// between threads.
void ignore_error(void*, const char*, ...) {}
void ignore_structured_error(void*, xmlError*) {}

// libxml2 prints XPath and parser errors to stderr through per-thread handlers: silence them
// on each thread that uses it (a page is allowed to be broken; a bad selector is caught when
// the config loads).
void quiet_libxml_on_this_thread() {
  thread_local bool quiet = false;
  if (quiet) return;
  xmlSetGenericErrorFunc(nullptr, ignore_error);
  xmlSetStructuredErrorFunc(nullptr, ignore_structured_error);
  quiet = true;
}

xmlXPathCompExpr* compiled(const std::string& xpath) {
  quiet_libxml_on_this_thread();
  thread_local std::unordered_map<std::string, std::unique_ptr<xmlXPathCompExpr, CompFree>> cache;
  auto& slot = cache[xpath];
  if (!slot) {
    ArenaPause outlives_the_page;
    slot.reset(xmlXPathCompile(reinterpret_cast<const xmlChar*>(xpath.c_str())));
  }
  return slot.get();
}

// What a link selector yields: href (or src) of elements, the value of other nodes.
std::string link_of(xmlNode* node) {
  std::unique_ptr<xmlChar, XmlFree> text;
  if (node->type == XML_ELEMENT_NODE) {
    text.reset(xmlGetProp(node, reinterpret_cast<const xmlChar*>("href")));
    if (!text) text.reset(xmlGetProp(node, reinterpret_cast<const xmlChar*>("src")));
  } else {
    text.reset(xmlNodeGetContent(node));
  }
  return text ? std::string(trim(reinterpret_cast<const char*>(text.get()))) : std::string();
}

// Whitespace runs (spaces, tabs, newlines, NBSP) become one space; ends are trimmed.
std::string collapse(std::string_view s) {
  std::string out;
  bool space = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    bool nbsp = c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0xA0;
    if (std::isspace(c) || nbsp) {
      space = true;
      if (nbsp) ++i;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += static_cast<char>(c);
  }
  return out;
}

using Namespaces = std::vector<std::pair<std::string, std::string>>;

using XPathContext = std::unique_ptr<xmlXPathContext, ContextFree>;

// The nodes `xpath` selects in the document of `ctx` (the context node: the document, with
// `namespaces` registered), each turned into a string by `value`; an XPath that yields a
// string, number or boolean gives that one value. One context serves every query on a
// document (a new context registers XPath's ~30 functions in a hash table of its own).
template <typename Value>
std::vector<std::string> select(xmlXPathContext* ctx, const std::string& xpath, Value value,
                                const Namespaces& namespaces = {}) {
  std::vector<std::string> out;
  auto* expr = compiled(xpath);
  if (!expr) return out;
  ctx->node = reinterpret_cast<xmlNode*>(ctx->doc);
  ctx->contextSize = -1;
  ctx->proximityPosition = -1;
  xmlXPathRegisteredNsCleanup(ctx);
  for (const auto& [prefix, uri] : namespaces)
    xmlXPathRegisterNs(ctx, reinterpret_cast<const xmlChar*>(prefix.c_str()),
                       reinterpret_cast<const xmlChar*>(uri.c_str()));
  std::unique_ptr<xmlXPathObject, ObjectFree> result(xmlXPathCompiledEval(expr, ctx));
  if (!result) return out;
  if (result->type == XPATH_NODESET && result->nodesetval) {
    for (int i = 0; i < result->nodesetval->nodeNr; ++i)
      out.push_back(value(result->nodesetval->nodeTab[i]));
  } else if (result->type == XPATH_STRING || result->type == XPATH_NUMBER ||
             result->type == XPATH_BOOLEAN) {
    std::unique_ptr<xmlChar, XmlFree> text(xmlXPathCastToString(result.get()));
    if (text) out.emplace_back(reinterpret_cast<const char*>(text.get()));
  }
  return out;
}

std::vector<std::string> select(xmlXPathContext* ctx, const std::string& xpath) {
  return select(ctx, xpath, link_of);
}

using Doc = std::unique_ptr<xmlDoc, DocFree>;

struct ParserContextFree {
  void operator()(xmlParserCtxt* c) const { xmlFreeParserCtxt(c); }
};

// A first-match field an HTML parse waits for (daemon/extract/settled.h).
struct Watch {
  const std::string* xpath;
  const Namespaces* namespaces;
  const std::vector<std::string>* on_end_of;  // empty: any element's end
  std::size_t ends = 0;                       // ends of such elements so far
  std::size_t next = 1;                       // look at the end numbered this
  bool settled = false;
  // Made at the first look and kept for the parse (the document stays the same): a new one
  // per look would register XPath's ~60 functions in a new hash and free it each time.
  XPathContext context = nullptr;
};

// What an HTML parse that may stop early keeps (the parser context's _private).
struct StopWhenSettled {
  std::vector<Watch> watches;
  std::size_t open = 0;  // watches not settled yet
  bool stopped = false;
};

// A node of a document still being parsed that will not change any more: an attribute (set
// when its element starts), a closed element (not on the parser's stack; and not the
// document's first child, to which libxml2 appends what comes after the root's end), the
// text of a closed element.
bool complete(const xmlParserCtxt* ctxt, const xmlNode* node) {
  switch (node->type) {
    case XML_ATTRIBUTE_NODE: return true;
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE: return node->parent && complete(ctxt, node->parent);
    case XML_ELEMENT_NODE:
      if (node == ctxt->myDoc->children) return false;
      for (int i = 0; i < ctxt->nodeNr; ++i)
        if (ctxt->nodeTab[i] == node) return false;
      return true;
    default: return false;
  }
}

// Whether `w`'s first node in what is parsed so far is complete: then it is the whole page's.
bool settled(xmlParserCtxt* ctxt, Watch& w) {
  auto* expr = compiled(*w.xpath);
  if (!expr || !ctxt->myDoc) return false;
  if (!w.context) {
    w.context.reset(xmlXPathNewContext(ctxt->myDoc));
    if (!w.context) return false;
    for (const auto& [prefix, uri] : *w.namespaces)
      xmlXPathRegisterNs(w.context.get(), reinterpret_cast<const xmlChar*>(prefix.c_str()),
                         reinterpret_cast<const xmlChar*>(uri.c_str()));
  }
  xmlXPathContext* x = w.context.get();
  x->node = reinterpret_cast<xmlNode*>(ctxt->myDoc);
  std::unique_ptr<xmlXPathObject, ObjectFree> result(xmlXPathCompiledEval(expr, x));
  return result && result->type == XPATH_NODESET && result->nodesetval &&
         result->nodesetval->nodeNr > 0 && complete(ctxt, result->nodesetval->nodeTab[0]);
}

// The HTML parser's end of an element: builds the tree as usual, then looks at the fields
// that may settle on this element's end (at the 1st, 2nd, 4th, 8th... such end, so that a
// field that never settles costs O(page), not O(page²)), and stops the parser when all have.
void end_element(void* ctx, const xmlChar* name) {
  auto* ctxt = static_cast<xmlParserCtxt*>(ctx);
  xmlSAX2EndElement(ctx, name);
  auto* stop = static_cast<StopWhenSettled*>(ctxt->_private);
  if (!stop || stop->stopped) return;
  const char* n = reinterpret_cast<const char*>(name);
  for (Watch& w : stop->watches) {
    if (w.settled) continue;
    if (!w.on_end_of->empty() &&
        std::find(w.on_end_of->begin(), w.on_end_of->end(), n) == w.on_end_of->end())
      continue;
    if (++w.ends < w.next) continue;
    w.next = 2 * w.ends;
    if (settled(ctxt, w)) {
      w.settled = true;
      --stop->open;
    }
  }
  if (stop->open == 0) {
    stop->stopped = true;
    xmlStopParser(ctxt);
  }
}

// libxml2's recovering HTML parser: never fails on markup, never touches the network. The
// charset comes from the Content-Type header, else from the document's <meta>. With `stop`,
// the parse ends once its watches are settled: htmlReadMemory's own steps, with a hook on
// each element's end.
Doc parse_html(std::string_view html, std::string_view content_type, const char* url,
               StopWhenSettled* stop = nullptr) {
  quiet_libxml_on_this_thread();
  std::string charset = charset_of(content_type);
  const int size = static_cast<int>(std::min<std::size_t>(html.size(), INT_MAX));
  const int options = HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                      HTML_PARSE_NONET | HTML_PARSE_COMPACT;
  if (!stop)
    return Doc(htmlReadMemory(html.data(), size, url, charset.empty() ? nullptr : charset.c_str(),
                              options));
  std::unique_ptr<xmlParserCtxt, ParserContextFree> ctxt(
      xmlCreateMemoryParserCtxt(html.data(), size));
  if (!ctxt) return nullptr;
  htmlDefaultSAXHandlerInit();
  std::memcpy(ctxt->sax, &htmlDefaultSAXHandler, sizeof(xmlSAXHandlerV1));
  ctxt->sax->endElement = end_element;
  ctxt->_private = stop;
  htmlCtxtUseOptions(ctxt.get(), options);
  ctxt->html = 1;
  if (!charset.empty())
    if (xmlCharEncodingHandler* handler = xmlFindCharEncodingHandler(charset.c_str())) {
      xmlSwitchToEncoding(ctxt.get(), handler);
      if (ctxt->input->encoding) xmlFree(const_cast<xmlChar*>(ctxt->input->encoding));
      ctxt->input->encoding = xmlStrdup(reinterpret_cast<const xmlChar*>(charset.c_str()));
    }
  if (url && ctxt->input && !ctxt->input->filename)
    ctxt->input->filename =
        reinterpret_cast<char*>(xmlStrdup(reinterpret_cast<const xmlChar*>(url)));
  htmlParseDocument(ctxt.get());
  Doc doc(ctxt->myDoc);
  ctxt->myDoc = nullptr;
  return doc;
}

// libxml2's XML parser, recovering: a document that is not well-formed yields what could be
// read of it (as parsel's XML parser does). No network, no DTD loading, no XInclude; entity
// declarations are ignored (their references are left empty), so no entity can expand to
// gigabytes or read a local file. The charset comes from the Content-Type header, else from
// the document's own declaration. `problem` is set when not even a root element was found.
Doc parse_xml(std::string_view xml, std::string_view content_type, std::string& problem) {
  quiet_libxml_on_this_thread();
  if (trim(xml).empty()) return nullptr;
  std::unique_ptr<xmlParserCtxt, ParserContextFree> ctxt(xmlNewParserCtxt());
  if (!ctxt) return nullptr;
  ctxt->sax->entityDecl = nullptr;
  ctxt->sax->externalSubset = nullptr;
  std::string charset = charset_of(content_type);
  Doc doc(xmlCtxtReadMemory(ctxt.get(), xml.data(),
                            static_cast<int>(std::min<std::size_t>(xml.size(), INT_MAX)), nullptr,
                            charset.empty() ? nullptr : charset.c_str(),
                            XML_PARSE_RECOVER | XML_PARSE_NONET | XML_PARSE_NOERROR |
                                XML_PARSE_NOWARNING | XML_PARSE_NOCDATA | XML_PARSE_COMPACT));
  if (!doc || !xmlDocGetRootElement(doc.get())) {
    const xmlError& e = ctxt->lastError;
    problem = "the body is not XML";
    if (e.message) {
      problem += " (line " + std::to_string(e.line) + ": " + std::string(trim(e.message)) + ")";
    }
    return nullptr;
  }
  return doc;
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
  // The first capture group of each match (or the whole match); only the first unless `all`.
  std::vector<std::string> matches(const std::string& text, bool all) const {
    std::vector<std::string> out;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
    PCRE2_SIZE start = 0;
    while (start <= text.size()) {
      int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, 0,
                           md, nullptr);
      if (rc < 0) break;
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      int group = rc > 1 && ov[2] != PCRE2_UNSET ? 1 : 0;
      out.emplace_back(text.substr(ov[2 * group], ov[2 * group + 1] - ov[2 * group]));
      if (!all) break;
      start = ov[1] > ov[0] ? ov[1] : ov[1] + 1;  // an empty match moves on by one
    }
    pcre2_match_data_free(md);
    return out;
  }
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

bool is_xml(std::string_view content_type) {
  std::string type = lower(trim(content_type.substr(0, content_type.find(';'))));
  if (type == "application/xml" || type == "text/xml") return true;
  return type.ends_with("+xml") && type != "application/xhtml+xml" &&
         type.find('/') != std::string::npos;
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
  for (const auto& p : follow.allow) patterns_->allow.emplace_back(p);
  for (const auto& p : follow.deny) patterns_->deny.emplace_back(p);
}

LinkFinder::~LinkFinder() = default;

bool LinkFinder::accepts(const std::string& url, std::string_view page_host) const {
  auto target = config::parse_url(url);
  if (!target) return false;  // not http(s)
  if (follow_.same_host && (page_host.empty() || lower(target->host) != page_host)) return false;
  if (!patterns_->allow.empty() && std::none_of(patterns_->allow.begin(), patterns_->allow.end(),
                                                [&](const Regex& r) { return r.search(url); }))
    return false;
  return std::none_of(patterns_->deny.begin(), patterns_->deny.end(),
                      [&](const Regex& r) { return r.search(url); });
}

std::vector<std::string> LinkFinder::find(std::string_view html, std::string_view content_type,
                                          const std::string& page_url, std::size_t limit) const {
  return read_page(nullptr, this, html, content_type, page_url, limit).links;
}

struct FieldExtractor::Compiled {
  std::vector<std::optional<Regex>> regex;  // per field
  std::vector<std::string> xml_xpath;       // per field: what is evaluated on an XML document
  std::vector<Settles> settles;             // per field: when its HTML value is known
  // Every selector field is a first-match field without a regex whose XPath settles early
  // (and there is one): an HTML parse may stop once they have.
  bool stops_early = false;
};

FieldExtractor::FieldExtractor(const std::vector<config::Field>& fields)
    : fields_(fields), compiled_(std::make_unique<Compiled>()) {
  for (const auto& f : fields) {
    if (f.regex.empty())
      compiled_->regex.emplace_back();
    else
      compiled_->regex.emplace_back(std::in_place, f.regex);
    // CSS reads XML case-sensitively (config keeps the HTML translation); it translated once
    // already, so it translates again.
    std::string xml = f.xpath;
    if (!f.css.empty())
      if (auto t = config::css_to_xpath(f.css, config::Markup::kXml); t.error.empty())
        xml = t.xpath;
    compiled_->xml_xpath.push_back(std::move(xml));
    compiled_->settles.push_back(f.xpath.empty() ? Settles{} : settles(f.xpath));
  }
  // A regex reads the first node that matches it, not the first node; `all` reads them all.
  bool any = false, all = true;
  for (std::size_t i = 0; i < fields.size(); ++i) {
    if (fields[i].xpath.empty()) continue;
    any = true;
    all = all && !fields[i].all && fields[i].regex.empty() && compiled_->settles[i].early;
  }
  compiled_->stops_early = any && all;
}

FieldExtractor::~FieldExtractor() = default;

namespace {

// `text` as the field's type; null when it does not convert.
nlohmann::ordered_json typed(const std::string& text, config::Field::Type type) {
  using T = config::Field::Type;
  std::string t(trim(text));
  switch (type) {
    case T::kString: return collapse(text);
    case T::kInt: {
      long long n = 0;
      auto [end, ec] =
          std::from_chars(t.data() + (t.starts_with('+') ? 1 : 0), t.data() + t.size(), n);
      if (t.empty() || ec != std::errc() || end != t.data() + t.size()) return nullptr;
      return n;
    }
    case T::kNumber: {
      char* end = nullptr;
      double d = std::strtod(t.c_str(), &end);
      if (t.empty() || end != t.c_str() + t.size() || !std::isfinite(d)) return nullptr;
      return d;
    }
    case T::kBool: {
      std::string l = lower(t);
      if (l == "true" || l == "yes" || l == "on" || l == "1") return true;
      if (l == "false" || l == "no" || l == "off" || l == "0") return false;
      return nullptr;
    }
  }
  return nullptr;
}

// A JSON value as the text a regex or a type conversion reads.
std::string text_of(const nlohmann::json& v) {
  return v.is_string() ? v.get<std::string>() : v.dump();
}

}  // namespace

Extracted FieldExtractor::extract(std::string_view body, std::string_view content_type) const {
  return read_page(this, nullptr, body, content_type, {}, 0).extracted;
}

namespace {

// A page's documents, each parsed when first needed and once, with its XPath context.
struct Documents {
  std::string_view body;
  std::string_view content_type;
  const char* url;
  StopWhenSettled* stop;  // for the HTML document, or null
  Doc html = nullptr, xml = nullptr;
  XPathContext html_xpath = nullptr, xml_xpath = nullptr;  // declared after: freed before
  bool html_tried = false, xml_tried = false;

  static XPathContext context_of(xmlDoc* doc) {
    return XPathContext(doc ? xmlXPathNewContext(doc) : nullptr);
  }
  xmlXPathContext* as_html() {
    if (!html_tried) {
      html_tried = true;
      html = parse_html(body, content_type, url, stop);
      html_xpath = context_of(html.get());
    }
    return html_xpath.get();
  }
  xmlXPathContext* as_xml(std::string& problem) {
    if (!xml_tried) {
      xml_tried = true;
      xml = parse_xml(body, content_type, problem);  // null for an empty body: no nodes
      xml_xpath = context_of(xml.get());
    }
    return xml_xpath.get();
  }
};

std::vector<std::string> links_in(xmlXPathContext* doc, const config::Follow& follow,
                                  const LinkFinder& finder, const std::string& page_url,
                                  std::size_t limit) {
  std::vector<std::string> links;
  std::string base = page_url;
  if (auto bases = select(doc, "//base[@href][1]"); !bases.empty() && !bases[0].empty())
    if (auto resolved = config::resolve_url(page_url, bases[0]); resolved) base = *resolved;

  // Parsed once for all the links (same_host), not once per link.
  const auto page = config::parse_url(page_url);
  const std::string page_host = page ? lower(page->host) : std::string();
  std::unordered_set<std::string> seen;
  for (const auto& ref : select(doc, follow.xpath)) {
    if (ref.empty()) continue;
    auto url = config::resolve_url(base, ref);
    if (!url || !seen.insert(*url).second) continue;
    if (!finder.accepts(*url, page_host)) continue;
    links.push_back(std::move(*url));
    if (links.size() >= limit) break;
  }
  return links;
}

}  // namespace

PageRead read_page(const FieldExtractor* fields, const LinkFinder* links, std::string_view body,
                   std::string_view content_type, const std::string& page_url, std::size_t limit) {
  PageRead page;
  ArenaScope arena;  // before the documents: outlives them
  const bool xml = is_xml(content_type);
  StopWhenSettled stop;
  const bool may_stop = fields && !links && !xml && fields->compiled_->stops_early;
  if (may_stop) {
    for (std::size_t i = 0; i < fields->fields_.size(); ++i) {
      const config::Field& f = fields->fields_[i];
      if (f.xpath.empty()) continue;
      stop.watches.push_back(
          Watch{&f.xpath, &f.namespaces, &fields->compiled_->settles[i].on_end_of});
    }
    stop.open = stop.watches.size();
  }
  Documents docs{.body = body,
                 .content_type = content_type,
                 .url = page_url.empty() ? nullptr : page_url.c_str(),
                 .stop = may_stop ? &stop : nullptr};

  if (links && !body.empty() && limit > 0)
    if (xmlXPathContext* doc = docs.as_html())
      page.links = links_in(doc, links->follow_, *links, page_url, limit);
  if (!fields) return page;

  Extracted& out = page.extracted;
  const std::vector<config::Field>& fields_ = fields->fields_;
  const FieldExtractor::Compiled& compiled = *fields->compiled_;
  nlohmann::ordered_json data = nlohmann::ordered_json::object();
  nlohmann::json json;
  bool json_tried = false;
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    const config::Field& f = fields_[i];
    // The raw values, before regex and type.
    std::vector<std::string> raw;
    std::vector<nlohmann::json> json_values;  // kept typed when no regex or type applies
    if (!f.xpath.empty()) {
      if (xmlXPathContext* doc = xml ? docs.as_xml(out.problem) : docs.as_html()) {
        const std::string& xpath = xml ? compiled.xml_xpath[i] : f.xpath;
        raw = select(
            doc, xpath,
            [&f](xmlNode* node) {
              std::unique_ptr<xmlChar, XmlFree> text;
              if (node->type == XML_ELEMENT_NODE && !f.attr.empty())
                text.reset(xmlGetProp(node, reinterpret_cast<const xmlChar*>(f.attr.c_str())));
              else
                text.reset(xmlNodeGetContent(node));
              return text ? std::string(reinterpret_cast<const char*>(text.get())) : std::string();
            },
            f.namespaces);
      }
    } else if (!f.json.empty()) {
      if (!json_tried) {
        json_tried = true;
        json = nlohmann::json::parse(body, nullptr, false);
        if (json.is_discarded()) out.problem = "the body is not JSON";
      }
      if (!json.is_discarded()) {
        try {
          nlohmann::json::json_pointer pointer(f.json);
          if (json.contains(pointer)) {
            const auto& v = json.at(pointer);
            if (v.is_array() && f.all)
              for (const auto& item : v) json_values.push_back(item);
            else if (!v.is_null())
              json_values.push_back(v);
          }
        } catch (const nlohmann::json::exception&) {  // validated at load: not expected
        }
        for (const auto& v : json_values) raw.push_back(text_of(v));
      }
    } else {
      raw.emplace_back(body);
    }

    const auto& regex = compiled.regex[i];
    std::vector<nlohmann::ordered_json> values;
    if (regex) {
      for (const auto& r : raw) {
        for (auto& m : regex->matches(r, f.all)) values.push_back(typed(m, f.type));
        if (!f.all && !values.empty()) break;
      }
    } else if (!json_values.empty() && f.type == config::Field::Type::kString) {
      for (const auto& v : json_values)
        values.push_back(v.is_string() ? nlohmann::ordered_json(collapse(v.get<std::string>()))
                                       : nlohmann::ordered_json(v));
    } else {
      for (const auto& r : raw) values.push_back(typed(r, f.type));
    }
    if (!f.all && values.size() > 1) values.resize(1);

    if (f.all) {
      nlohmann::ordered_json list = nlohmann::ordered_json::array();
      for (auto& v : values)
        if (!v.is_null()) list.push_back(std::move(v));
      if (list.empty()) out.missing.push_back(f.name);
      data[f.name] = std::move(list);
    } else if (values.empty() || values[0].is_null()) {
      out.missing.push_back(f.name);
      data[f.name] = nullptr;
    } else {
      data[f.name] = std::move(values[0]);
    }
  }
  out.data = data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  page.stopped_early = stop.stopped;
  return page;
}

std::string content_hash(std::string_view bytes) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(config::fnv1a(bytes)));
  return hex;
}

}  // namespace scraperd::daemon
