// What a fetched page yields beyond its bytes: the fields a job extracts, and the links a
// `follow` job goes on to.
//
//   FieldExtractor fields(job.extract);                   // once per run, on the loop
//   LinkFinder finder(*job.follow);
//   PageRead p = read_page(&fields, &finder, body, content_type, url, limit);  // CPU pool
//
// read_page parses the page once for both; extract() and find() are read_page with one of
// them. A job whose selector fields are all first-match fields that settle early
// (daemon/extract/settled.h) and that wants no links stops parsing its HTML once every such
// field's first node is complete: the rest of the page cannot change them.
//
// HTML is parsed with libxml2's recovering HTML parser (no network access, the charset from the
// Content-Type header, else from the document's own <meta>); an XML response (is_xml) with its
// recovering XML parser, so XPath sees its real names and namespaces. Selectors are XPath 1.0
// expressions (CSS is translated at load time), compiled once per thread. Parsing is CPU work:
// call read_page(), extract() and find() through run_blocking, never on the loop.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace scraperd::daemon {

// True for HTML (text/html, application/xhtml+xml) and for a missing Content-Type.
bool is_html(std::string_view content_type);

// True for XML: application/xml, text/xml and any */*+xml (RSS, Atom, SVG...) but XHTML,
// which is read as HTML.
bool is_xml(std::string_view content_type);

// The charset parameter of a Content-Type ("text/html; charset=Shift_JIS" → "Shift_JIS").
std::string charset_of(std::string_view content_type);

// The fields of one page.
struct Extracted {
  std::string data;                  // one JSON object, fields in the job's order
  std::vector<std::string> missing;  // fields that matched nothing (null, or [] with `all`)
  std::string problem;               // why the page could not be read (e.g. not JSON), or ""
};

class FieldExtractor;
class LinkFinder;

// What one page yields: its fields and the links a `follow` job goes on to.
struct PageRead {
  Extracted extracted;             // empty without a FieldExtractor
  std::vector<std::string> links;  // empty without a LinkFinder
  bool stopped_early = false;      // the HTML parse ended once the fields were settled
};

// Reads `body` once for both: the fields `fields` extracts (FieldExtractor::extract) and the
// links `links` finds on `page_url` (LinkFinder::find, at most `limit`); either may be null.
// Selector fields and links share one HTML document; an XML body (is_xml) gives the fields
// an XML document and the links an HTML one, as the two calls alone would. Safe to call from
// several threads at once.
PageRead read_page(const FieldExtractor* fields, const LinkFinder* links, std::string_view body,
                   std::string_view content_type, const std::string& page_url, std::size_t limit);

class FieldExtractor {
 public:
  // Compiles the regexes (already validated by the config loader).
  explicit FieldExtractor(const std::vector<config::Field>& fields);
  ~FieldExtractor();
  FieldExtractor(const FieldExtractor&) = delete;
  FieldExtractor& operator=(const FieldExtractor&) = delete;

  // Selector fields (xpath / css) read the body as XML when `content_type` is XML (is_xml),
  // as HTML otherwise, with the field's namespaces registered; `json` fields read it as JSON;
  // a field with only a `regex` reads the body as text. An XML body without a root element
  // sets `problem`. Each value: the text of an element (whitespace
  // collapsed) or its `attr`, the value of an attribute or text node, then the regex's first
  // capture group (or whole match), then `type`: string, int, number (a JSON number) or bool
  // (true/yes/on/1, false/no/off/0). A value that does not convert is null. Safe to call
  // from several threads at once.
  Extracted extract(std::string_view body, std::string_view content_type) const;

 private:
  friend PageRead read_page(const FieldExtractor*, const LinkFinder*, std::string_view,
                            std::string_view, const std::string&, std::size_t);
  struct Compiled;
  const std::vector<config::Field>& fields_;
  std::unique_ptr<Compiled> compiled_;
};

// A stable 64-bit FNV-1a hash as 16 hex digits: what `content_hash` stores.
std::string content_hash(std::string_view bytes);

class LinkFinder {
 public:
  // Compiles the allow/deny patterns (already validated by the config loader).
  explicit LinkFinder(const config::Follow& follow);
  ~LinkFinder();
  LinkFinder(const LinkFinder&) = delete;
  LinkFinder& operator=(const LinkFinder&) = delete;

  // Links the selector finds in `html`: from elements their href (or src) attribute, from
  // attribute and text nodes their value; resolved against the page's <base href> or
  // `page_url` (RFC 3986), fragments dropped, http(s) only, filtered by same_host (same host
  // as `page_url`), allow and deny, each once, in document order, at most `limit`.
  // Safe to call from several threads at once.
  std::vector<std::string> find(std::string_view html, std::string_view content_type,
                                const std::string& page_url, std::size_t limit) const;

  // The same_host / allow / deny filter alone, for an absolute URL found on a page whose
  // host, lowercased, is `page_host` ("" for a page that is not http(s)).
  bool accepts(const std::string& url, std::string_view page_host) const;

 private:
  friend PageRead read_page(const FieldExtractor*, const LinkFinder*, std::string_view,
                            std::string_view, const std::string&, std::size_t);
  struct Patterns;
  const config::Follow& follow_;
  std::unique_ptr<Patterns> patterns_;
};

}  // namespace scraperd::daemon
