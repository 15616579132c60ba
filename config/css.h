// CSS selectors → XPath 1.0, the way parsel/cssselect do it, so one XPath engine (libxml2)
// evaluates both kinds of selector. cssselect's xpath.py is the reference for each translation;
// docs/configuration.md lists every form understood and where we choose to differ.
//
// Understood: type selectors, `*`, `ns|E`, `*|E`, `#id`, `.class`; attributes `[a]`, `[a=v]`,
// `[a!=v]`, `[a^=v]`, `[a$=v]`, `[a*=v]`, `[a~=v]`, `[a|=v]`, `[ns|a...]`; combinators
// descendant, `>`, `+`, `~`; groups with `,`; CSS escapes in names and strings; the
// pseudo-classes :first-child :last-child :only-child :nth-child() :nth-last-child()
// :first-of-type :last-of-type :only-of-type :nth-of-type() :nth-last-of-type() :empty :root
// :scope :contains() :lang() :not() :is() :where() :matches() :has() :link :checked :enabled
// :disabled; the pseudo-elements ::text and ::attr(name) at the end of a selector (also alone,
// or after a space: `div ::text` is all of div's descendant text, as parsel reads it).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace scraperd::config {

// What kind of document a selector will be evaluated on. HTML: element and attribute names
// are case-insensitive (libxml2's HTML parser lower-cases them) and :lang, :link, :checked,
// :enabled, :disabled have their HTML meanings. XML: names are case-sensitive, :lang() reads
// xml:lang, and the HTML-only pseudo-classes match nothing (as cssselect's GenericTranslator).
enum class Markup { kHtml, kXml };

struct CssTranslation {
  std::string xpath;  // set when error is empty
  std::string error;  // names the construct that is wrong or unsupported
};

// Translates `css` to an XPath expression relative to the context node (the document when a
// field is read): `h1` → `descendant-or-self::h1`.
CssTranslation css_to_xpath(std::string_view css, Markup markup = Markup::kHtml);

// The namespace prefixes an XPath 1.0 expression uses in its name tests (`atom` in
// `//atom:entry/@xml:lang` and `xml`), each once, in order of first use; string literals are
// skipped. For checking them against a job's `namespaces`.
std::vector<std::string> xpath_prefixes(std::string_view xpath);

}  // namespace scraperd::config
