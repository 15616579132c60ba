// When a first-match field's value is known before the whole page is parsed.
//
// libxml2's HTML parser only ever appends: a new node comes after every node already built,
// in document order, and an element that is closed gets no more children. So for an XPath
// whose selection of a node depends only on things fixed when that node is created (the
// node's and its ancestors' names and attributes, positions among nodes before it), the
// nodes it selects in the part of the page read so far are the first nodes of what it selects
// in the whole page. Its first node, once closed, is then the page's first node with the
// page's value, and the parse may stop there (daemon/extract/extract.cpp).
//
// Decided by the expression alone, conservatively: anything not proven safe is unsafe.
// Safe:   a location path of forward axes (child, descendant(-or-self), self, attribute,
//         following(-sibling)) from the root, with name / `*` / node() / text() tests and
//         predicates that read only attributes, names and positions (position(), [k]) of
//         the node, and the existence, count, names and attributes of its ancestors and
//         preceding nodes; unions of such paths; `(path)[k]` for a whole number k.
// Unsafe: anything reading an element's text (`.`, string(), contains(., ...)), a child or
//         following node inside a predicate (`div[span]`, `:last-child`), last(), count()
//         of what follows, parent / ancestor steps in the path itself, variables, an XPath
//         that yields a string, number or boolean (`count(//li)`).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace scraperd::daemon {

struct Settles {
  bool early = false;  // the expression is safe (above)
  // The names of the elements whose end may settle it (the last element name test of each
  // path of the union); empty with `early`: any element's end.
  std::vector<std::string> on_end_of;
};

Settles settles(std::string_view xpath);

}  // namespace scraperd::daemon
