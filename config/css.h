// CSS selectors → XPath 1.0, the way parsel/cssselect do it, so one XPath engine (libxml2)
// evaluates both kinds of selector.
//
// Supported: type and `*`, `#id`, `.class`, attributes `[a]`, `[a=v]`, `[a^=v]`, `[a$=v]`,
// `[a*=v]`, `[a~=v]`, `[a|=v]`; combinators descendant, `>`, `+`, `~`; `:first-child`,
// `:last-child`, `:only-child`, `:nth-child(an+b | odd | even)`, `:not(...)`; groups with `,`;
// pseudo-elements `::text` and `::attr(name)` at the end of a selector.
#pragma once

#include <string>
#include <string_view>

namespace scraperd::config {

struct CssTranslation {
  std::string xpath;  // set when error is empty
  std::string error;  // names the construct that is wrong or unsupported
};

// Translates `css` to an XPath expression over the whole document.
CssTranslation css_to_xpath(std::string_view css);

}  // namespace scraperd::config
