#include "config/css.h"

#include <cctype>
#include <cstdint>
#include <optional>
#include <vector>

#include "config/text.h"

namespace scraperd::config {
namespace {

bool css_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

// Usable in XPath as a name test as it is (cssselect's is_safe_name); anything else is
// compared with name().
bool plain_name(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-')
      return false;
  return true;
}

// Characters in UTF-8 text, as XPath's string-length() counts them (not bytes).
long characters(std::string_view s) {
  long n = 0;
  for (char c : s)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// An XPath string literal for any text (XPath 1.0 has no escapes: use concat for mixed quotes).
std::string literal(const std::string& s) {
  if (s.find('\'') == std::string::npos) return "'" + s + "'";
  if (s.find('"') == std::string::npos) return "\"" + s + "\"";
  std::string out = "concat(";
  std::string part;
  for (char c : s) {
    if (c == '\'') {
      if (!part.empty()) out += "'" + part + "', ";
      out += "\"'\", ";
      part.clear();
    } else {
      part += c;
    }
  }
  if (!part.empty()) out += "'" + part + "', ";
  out.resize(out.size() - 2);
  return out + ")";
}

// A compound selector (`div.a[href]:first-child`) as an XPath step.
struct Compound {
  std::string type;        // node test of the type selector; empty for `*`
  std::string conditions;  // "[...][...]"
  bool scope = false;      // starts with :scope

  std::string step() const { return (type.empty() ? "*" : type) + conditions; }
  bool empty() const { return type.empty() && conditions.empty() && !scope; }
};

// The HTML meanings of the form pseudo-classes (cssselect's HTMLTranslator).
constexpr const char* kLink = "@href and (name(.) = 'a' or name(.) = 'link' or name(.) = 'area')";
constexpr const char* kChecked =
    "(@selected and name(.) = 'option') or (@checked and (name(.) = 'input' or name(.) = "
    "'command') and (@type = 'checkbox' or @type = 'radio'))";
constexpr const char* kDisabled =
    "(@disabled and ((name(.) = 'input' and @type != 'hidden') or name(.) = 'button' or "
    "name(.) = 'select' or name(.) = 'textarea' or name(.) = 'command' or name(.) = 'fieldset' "
    "or name(.) = 'optgroup' or name(.) = 'option')) or (((name(.) = 'input' and @type != "
    "'hidden') or name(.) = 'button' or name(.) = 'select' or name(.) = 'textarea') and "
    "ancestor::fieldset[@disabled])";
constexpr const char* kEnabled =
    "(@href and (name(.) = 'a' or name(.) = 'link' or name(.) = 'area')) or ((name(.) = "
    "'command' or name(.) = 'fieldset' or name(.) = 'optgroup') and not(@disabled)) or "
    "(((name(.) = 'input' and @type != 'hidden') or name(.) = 'button' or name(.) = 'select' or "
    "name(.) = 'textarea' or name(.) = 'keygen') and not(@disabled or "
    "ancestor::fieldset[@disabled])) or (name(.) = 'option' and not(@disabled or "
    "ancestor::optgroup[@disabled]))";

class Parser {
 public:
  Parser(std::string_view s, Markup markup) : s_(s), html_(markup == Markup::kHtml) {}

  CssTranslation run() {
    std::string xpath;
    for (;;) {
      skip_space();
      auto one = selector();
      if (!one) return {{}, error_};
      xpath += (xpath.empty() ? "" : " | ") + *one;
      if (at_end()) break;
      ++pos_;  // ','
    }
    return {xpath, {}};
  }

 private:
  // selector := compound (combinator compound)* pseudo-element?; the compound before a
  // pseudo-element may be left out (`::text`, `div ::text`). Stops at the end or a ','.
  std::optional<std::string> selector() {
    std::string path;
    char combinator = 0;  // how the next compound joins the path; 0 at the start
    for (;;) {
      auto c = compound(combinator == 0);
      if (!c) return std::nullopt;
      std::string before = path;
      if (combinator == 0)
        path = c->scope ? "descendant-or-self::*[1]" + c->conditions
                        : "descendant-or-self::" + c->step();
      else
        path += join(combinator, *c);
      if (starts_with("::")) {
        // `div ::text` reads all of div's descendant text, div's own included (parsel).
        bool descendants = combinator == ' ' && c->empty();
        auto pe = pseudo_element();
        if (!pe) return std::nullopt;
        if (*pe == "text()")
          path = descendants ? before + "//text()" : path + "/text()";
        else
          path = descendants ? before + "/descendant-or-self::*/" + *pe : path + "/" + *pe;
        skip_space();
        if (!at_end() && peek() != ',') return fail("nothing may follow a pseudo-element");
        return path;
      }
      bool spaced = skip_space();
      if (at_end() || peek() == ',') return path;
      if (!combinator_after(spaced, combinator))
        return fail("unexpected '" + std::string(1, peek()) + "'");
    }
  }

  static std::string join(char combinator, const Compound& c) {
    switch (combinator) {
      case '>': return "/" + c.step();
      case '~': return "/following-sibling::" + c.step();
      case '+': return "/following-sibling::*[1][self::" + c.step() + "]";  // the next element
      default: return "//" + c.step();
    }
  }

  // compound := type? (#id | .class | [attr] | :pseudo)*. Empty only before a pseudo-element.
  std::optional<Compound> compound(bool selector_start) {
    Compound c;
    std::size_t start = pos_;
    if (!at_end() && (peek() == '*' || peek() == '|' || name_start())) {
      auto type = type_selector();
      if (!type) return std::nullopt;
      c.type = *type;
    }
    for (;;) {
      if (at_end()) break;
      char ch = peek();
      std::optional<std::string> cond;
      if (ch == '#') {
        ++pos_;
        auto id = name();
        if (!id) return std::nullopt;
        if (id->empty()) return fail("'#' needs an id");
        cond = "@id = " + literal(*id);
      } else if (ch == '.') {
        ++pos_;
        auto cls = name();
        if (!cls) return std::nullopt;
        if (cls->empty()) return fail("'.' needs a class name");
        cond = includes("@class", *cls);
      } else if (ch == '[') {
        cond = attribute();
      } else if (ch == ':' && !starts_with("::")) {
        cond = pseudo_class(c, selector_start && pos_ == start);
      } else {
        break;
      }
      if (!cond) return std::nullopt;
      if (!cond->empty()) c.conditions += "[" + *cond + "]";
    }
    if (pos_ == start && !starts_with("::")) {
      if (at_end()) return fail("a selector is missing");
      return fail("unexpected '" + std::string(1, peek()) + "'");
    }
    return c;
  }

  // E, *, ns|E, ns|*, *|E, |E → a node test ("" for any element).
  std::optional<std::string> type_selector() {
    std::optional<std::string> prefix;  // none: no '|'
    std::string local;
    bool star = false;
    if (peek() == '|') {
      prefix = "";
    } else if (peek() == '*') {
      ++pos_;
      star = true;
    } else {
      auto n = name();
      if (!n) return std::nullopt;
      local = *n;
    }
    if (!prefix && !at_end() && peek() == '|' && !starts_with("|=")) prefix = star ? "*" : local;
    if (prefix) {
      ++pos_;  // '|'
      star = false;
      if (!at_end() && peek() == '*') {
        ++pos_;
        star = true;
      } else {
        auto n = name();
        if (!n) return std::nullopt;
        if (n->empty()) return fail("'|' needs an element name after it");
        local = *n;
      }
    }
    if (html_ && !star) local = lower(local);
    if (!prefix || prefix->empty()) {  // no namespace: XPath's unprefixed names
      if (star) return std::string();
      return plain_name(local) ? local : "*[name() = " + literal(local) + "]";
    }
    if (*prefix == "*") {  // any namespace
      if (star) return std::string();
      return "*[local-name() = " + literal(local) + "]";
    }
    if (!plain_name(*prefix)) return fail("'" + *prefix + "|' is not a namespace prefix");
    if (star) return *prefix + ":*";
    if (!plain_name(local)) return fail("'" + *prefix + "|" + local + "' is not an element name");
    return *prefix + ":" + local;
  }

  // .class and [a~=v]: v is one of the whitespace-separated words of a.
  static std::string includes(const std::string& attr, const std::string& word) {
    if (word.empty() || word.find_first_of(" \t\n\r\f") != std::string::npos) return "false()";
    return "contains(concat(' ', normalize-space(" + attr + "), ' '), " +
           literal(" " + word + " ") + ")";
  }

  std::optional<std::string> attribute() {
    ++pos_;  // '['
    skip_space();
    std::optional<std::string> prefix;
    std::string attr;
    if (!at_end() && peek() == '*' && starts_with("*|")) {
      ++pos_;
      prefix = "*";
    } else if (!at_end() && peek() == '|' && !starts_with("|=")) {
      prefix = "";
    } else {
      auto n = name();
      if (!n) return std::nullopt;
      attr = *n;
    }
    if (!at_end() && peek() == '|' && !starts_with("|=")) {
      if (!prefix) prefix = attr;
      ++pos_;
      auto n = name();
      if (!n) return std::nullopt;
      attr = *n;
    }
    if (attr.empty()) return fail("an attribute selector needs a name");
    if (html_) attr = lower(attr);
    std::string a;
    if (prefix && *prefix == "*")
      a = "@*[local-name() = " + literal(attr) + "]";
    else if (prefix && !prefix->empty())
      a = plain_name(*prefix) && plain_name(attr)
              ? "@" + *prefix + ":" + attr
              : "@*[name() = " + literal(*prefix + ":" + attr) + "]";
    else
      a = plain_name(attr) ? "@" + attr : "@*[name() = " + literal(attr) + "]";
    skip_space();
    if (at_end()) return fail("an attribute selector is missing its ']'");
    if (peek() == ']') {
      ++pos_;
      return a;
    }
    std::string op;
    if (peek() == '=') {
      op = "=";
      ++pos_;
    } else if (pos_ + 1 < s_.size() && s_[pos_ + 1] == '=' &&
               std::string_view("^$*~|!").find(peek()) != std::string_view::npos) {
      op = std::string(1, peek()) + "=";
      pos_ += 2;
    } else {
      return fail("unknown attribute operator in [" + attr + "...]");
    }
    skip_space();
    auto value = value_token();
    if (!value) return std::nullopt;
    skip_space();
    if (at_end() || peek() != ']') return fail("an attribute selector is missing its ']'");
    ++pos_;
    const std::string& v = *value;
    if (op == "=") return a + " = " + literal(v);
    if (op == "!=")  // cssselect's reading: also true when the attribute is missing
      return v.empty() ? a + " != ''" : "not(" + a + ") or " + a + " != " + literal(v);
    if (op == "~=") return includes(a, v);
    if (op == "|=")
      return a + " = " + literal(v) + " or starts-with(" + a + ", " + literal(v + "-") + ")";
    if (v.empty()) return std::string("false()");  // ^= $= *= with "" match nothing
    if (op == "^=") return "starts-with(" + a + ", " + literal(v) + ")";
    if (op == "*=") return "contains(" + a + ", " + literal(v) + ")";
    // $=: string-length() counts characters, so the value's length is in characters too.
    return "substring(" + a + ", string-length(" + a + ") - " + std::to_string(characters(v)) +
           " + 1) = " + literal(v);
  }

  // A pseudo-class's condition on the element; "" when it holds for every element.
  std::optional<std::string> pseudo_class(Compound& c, bool may_be_scope) {
    ++pos_;  // ':'
    auto n = name();
    if (!n) return std::nullopt;
    std::string name = lower(*n);
    if (name.empty()) return fail("':' needs a pseudo-class name");
    bool function = !at_end() && peek() == '(';
    if (function) {
      ++pos_;
      skip_space();
      std::optional<std::string> cond;
      if (name == "nth-child" || name == "nth-last-child" || name == "nth-of-type" ||
          name == "nth-last-of-type") {
        bool last = name.find("last") != std::string::npos;
        bool of_type = name.ends_with("of-type");
        if (of_type && c.type.empty()) return fail("*:" + name + "() needs an element name");
        auto arg = raw_argument();
        if (!arg) return std::nullopt;
        return nth(*arg, name, last ? "following-sibling" : "preceding-sibling",
                   of_type ? c.type : "*");
      }
      if (name == "contains" || name == "lang") {
        auto arg = text_argument(name);
        if (!arg) return std::nullopt;
        if (name == "contains") return "contains(., " + literal(*arg) + ")";
        if (!html_) return "lang(" + literal(*arg) + ")";
        return "ancestor-or-self::*[@lang][1][starts-with(concat(translate(@lang, "
               "'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'), '-'), " +
               literal(lower(*arg) + "-") + ")]";
      }
      if (name == "not" || name == "is" || name == "where" || name == "matches") {
        auto list = compound_list(name);
        if (!list) return std::nullopt;
        return name == "not" ? "not(" + *list + ")" : *list;
      }
      if (name == "has") return relative_list();
      return fail("unsupported pseudo-class ':" + name + "()'");
    }
    if (name == "first-child") return std::string("not(preceding-sibling::*)");
    if (name == "last-child") return std::string("not(following-sibling::*)");
    if (name == "only-child")
      return std::string("not(preceding-sibling::*) and not(following-sibling::*)");
    if (name == "first-of-type" || name == "last-of-type" || name == "only-of-type") {
      if (c.type.empty()) return fail("*:" + name + " needs an element name");
      std::string before = "not(preceding-sibling::" + c.type + ")";
      std::string after = "not(following-sibling::" + c.type + ")";
      if (name == "first-of-type") return before;
      if (name == "last-of-type") return after;
      return before + " and " + after;
    }
    if (name == "empty") return std::string("not(*) and not(string-length())");
    if (name == "root") return std::string("not(parent::*)");
    if (name == "scope") {
      if (!may_be_scope) return fail(":scope must begin a selector");
      c.scope = true;
      return std::string();
    }
    if (name == "link") return std::string(html_ ? kLink : "false()");
    if (name == "checked") return std::string(html_ ? kChecked : "false()");
    if (name == "enabled") return std::string(html_ ? kEnabled : "false()");
    if (name == "disabled") return std::string(html_ ? kDisabled : "false()");
    if (name == "not" || name == "is" || name == "where" || name == "has" || name == "matches" ||
        name == "contains" || name == "lang" || name.starts_with("nth-"))
      return fail(":" + name + " needs its argument in parentheses");
    return fail("unsupported pseudo-class ':" + name + "'");
  }

  // The compound selectors of :not(), :is(), :where() up to ')', as one condition:
  // (self::a or self::b[...]). Nesting is allowed (:not(:not(.a))), the Level 4 reading.
  std::optional<std::string> compound_list(const std::string& name) {
    std::string out;
    for (;;) {
      skip_space();
      if (starts_with("::")) return fail(":" + name + "() cannot hold a pseudo-element");
      auto c = compound(false);
      if (!c) return std::nullopt;
      out += (out.empty() ? "" : " or ") + std::string("self::") + c->step();
      skip_space();
      if (at_end()) return fail("missing ')' after :" + name + "(");
      if (peek() == ')') break;
      if (peek() != ',')
        return fail(":" + name + "() takes compound selectors (like a.b, not div a)");
      ++pos_;
    }
    ++pos_;  // ')'
    return out.find(" or ") == std::string::npos ? out : "(" + out + ")";
  }

  // :has(> a, b c) → a relative path per selector, any of which finds a node.
  std::optional<std::string> relative_list() {
    std::string out;
    for (;;) {
      skip_space();
      char combinator = ' ';
      if (!at_end() && (peek() == '>' || peek() == '+' || peek() == '~')) {
        combinator = peek();
        ++pos_;
        skip_space();
      }
      std::string path;
      for (;;) {
        if (starts_with("::")) return fail(":has() cannot hold a pseudo-element");
        auto c = compound(false);
        if (!c) return std::nullopt;
        if (path.empty()) {
          switch (combinator) {
            case '>': path = c->step(); break;
            case '~': path = "following-sibling::" + c->step(); break;
            case '+': path = "following-sibling::*[1][self::" + c->step() + "]"; break;
            default: path = "descendant::" + c->step();
          }
        } else {
          path += join(combinator, *c);
        }
        bool spaced = skip_space();
        if (at_end()) return fail("missing ')' after :has(");
        if (peek() == ')' || peek() == ',') break;
        if (!combinator_after(spaced, combinator))
          return fail("unexpected '" + std::string(1, peek()) + "' in :has()");
      }
      out += (out.empty() ? "" : " | ") + path;
      if (peek() == ')') break;
      ++pos_;  // ','
    }
    ++pos_;  // ')'
    return out;
  }

  // ::text → "text()", ::attr(name) → "@name".
  std::optional<std::string> pseudo_element() {
    pos_ += 2;
    auto n = name();
    if (!n) return std::nullopt;
    std::string pe = lower(*n);
    if (pe == "text") return std::string("text()");
    if (pe != "attr") return fail("unsupported pseudo-element '::" + pe + "'");
    if (at_end() || peek() != '(') return fail("::attr needs an attribute name in parentheses");
    ++pos_;
    skip_space();
    std::optional<std::string> attr;
    if (!at_end() && (peek() == '"' || peek() == '\''))
      attr = string();
    else
      attr = name();
    if (!attr) return std::nullopt;
    skip_space();
    if (at_end() || peek() != ')') return fail("::attr() needs an attribute name");
    ++pos_;
    std::string a = html_ ? lower(*attr) : *attr;
    if (a.empty()) return fail("::attr() needs an attribute name");
    auto colon = a.find(':');
    if (plain_name(a) || (colon != std::string::npos && plain_name(a.substr(0, colon)) &&
                          plain_name(a.substr(colon + 1))))
      return "@" + a;
    return "@*[name() = " + literal(a) + "]";
  }

  // The an+b of :nth-*(): an+b-1 siblings (of the same type for *-of-type) before the
  // element (after it, for *-last-*), for some n >= 0.
  std::optional<std::string> nth(const std::string& arg, const std::string& pseudo,
                                 const std::string& axis, const std::string& test) {
    std::string s;
    for (char c : lower(arg))
      if (!css_space(c)) s += c;
    long a = 0, b = 0;
    bool ok = true;
    if (s == "odd") {
      a = 2, b = 1;
    } else if (s == "even") {
      a = 2, b = 0;
    } else if (auto n = s.find('n'); n != std::string::npos) {
      std::string as = s.substr(0, n), bs = s.substr(n + 1);
      if (as.empty() || as == "+")
        a = 1;
      else if (as == "-")
        a = -1;
      else
        ok = number(as, a);
      if (!bs.empty()) ok = ok && (bs[0] == '+' || bs[0] == '-') && number(bs, b);
    } else {
      ok = number(s, b);
    }
    if (!ok) return fail(":" + pseudo + "(" + arg + ") is not of the form an+b");
    const std::string count = "count(" + axis + "::" + test + ")";
    const long before = b - 1;  // siblings when n = 0
    if (a == 0) return before < 0 ? std::string("false()") : count + " = " + std::to_string(before);
    if (a < 0 && before < 0) return std::string("false()");
    std::vector<std::string> parts;
    if (a > 0 && before > 0) parts.push_back(count + " >= " + std::to_string(before));
    if (a < 0) parts.push_back(count + " <= " + std::to_string(before));
    if (a != 1 && a != -1) {
      // count - before is a multiple of a (the difference is never negative here)
      std::string diff = a > 0 ? (before == 0  ? count
                                  : before < 0 ? "(" + count + " + " + std::to_string(-before) + ")"
                                               : "(" + count + " - " + std::to_string(before) + ")")
                               : "(" + std::to_string(before) + " - " + count + ")";
      parts.push_back(diff + " mod " + std::to_string(a > 0 ? a : -a) + " = 0");
    }
    std::string out;
    for (const auto& p : parts) out += (out.empty() ? "" : " and ") + p;
    return out;
  }

  static bool number(const std::string& s, long& out) {
    if (s.empty()) return false;
    std::size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
    if (i == s.size() || s.size() > 9) return false;
    for (std::size_t j = i; j < s.size(); ++j)
      if (!std::isdigit(static_cast<unsigned char>(s[j]))) return false;
    out = std::stol(s);
    return true;
  }

  // The text up to ')' (after '('), trimmed.
  std::optional<std::string> raw_argument() {
    std::size_t close = s_.find(')', pos_);
    if (close == std::string_view::npos) return fail("missing ')'");
    std::string inside(s_.substr(pos_, close - pos_));
    pos_ = close + 1;
    while (!inside.empty() && css_space(inside.back())) inside.pop_back();
    return inside;
  }

  // One string or identifier, then ')'.
  std::optional<std::string> text_argument(const std::string& pseudo) {
    std::optional<std::string> v;
    if (!at_end() && (peek() == '"' || peek() == '\''))
      v = string();
    else
      v = name();
    if (!v) return std::nullopt;
    skip_space();
    if (at_end() || peek() != ')' || (v->empty() && pseudo == "lang"))
      return fail(":" + pseudo + "() takes one string or identifier");
    ++pos_;
    return v;
  }

  std::optional<std::string> value_token() {
    if (at_end()) return fail("an attribute selector is missing its value");
    if (peek() == '"' || peek() == '\'') return string();
    auto v = name();
    if (!v) return std::nullopt;
    if (v->empty()) return fail("an attribute value must be an identifier or a quoted string");
    return v;
  }

  // A quoted string with its escapes resolved; a backslash before a newline continues it.
  std::optional<std::string> string() {
    char quote = peek();
    ++pos_;
    std::string out;
    for (;;) {
      if (at_end()) return fail("unterminated string");
      char c = peek();
      if (c == quote) {
        ++pos_;
        return out;
      }
      if (c == '\n' || c == '\r' || c == '\f') return fail("unterminated string");
      if (c == '\\') {
        if (starts_with("\\\r\n")) {
          pos_ += 3;
        } else if (pos_ + 1 < s_.size() &&
                   (s_[pos_ + 1] == '\n' || s_[pos_ + 1] == '\r' || s_[pos_ + 1] == '\f')) {
          pos_ += 2;
        } else if (!escape(out)) {
          return std::nullopt;
        }
        continue;
      }
      out += c;
      ++pos_;
    }
  }

  bool name_start() const {
    return !at_end() && (name_char(peek()) || (peek() == '\\' && pos_ + 1 < s_.size()));
  }

  // An identifier (possibly empty) with its escapes resolved: `md\:flex` → "md:flex".
  std::optional<std::string> name() {
    std::string out;
    while (!at_end()) {
      if (name_char(peek())) {
        out += peek();
        ++pos_;
      } else if (peek() == '\\') {
        if (!escape(out)) return std::nullopt;
      } else {
        break;
      }
    }
    return out;
  }

  // At a backslash: appends the character it stands for (\31 → "1", \: → ":").
  bool escape(std::string& out) {
    ++pos_;
    if (at_end()) {
      fail("a '\\' ends the selector");
      return false;
    }
    char c = peek();
    if (c == '\n' || c == '\r' || c == '\f') {
      fail("a '\\' before a line break");
      return false;
    }
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      std::uint32_t cp = 0;
      for (int i = 0; i < 6 && !at_end() && std::isxdigit(static_cast<unsigned char>(peek()));
           ++i, ++pos_) {
        char h = static_cast<char>(std::tolower(static_cast<unsigned char>(peek())));
        cp = cp * 16 + static_cast<std::uint32_t>(h <= '9' ? h - '0' : h - 'a' + 10);
      }
      if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
      append_utf8(out, cp);
      if (starts_with("\r\n"))
        pos_ += 2;
      else if (!at_end() && css_space(peek()))
        ++pos_;
      return true;
    }
    // Any other character stands for itself (all of its UTF-8 bytes).
    do {
      out += s_[pos_++];
    } while (!at_end() && (static_cast<unsigned char>(peek()) & 0xC0) == 0x80);
    return true;
  }

  // After a compound selector and the blanks that followed it (`spaced`): reads `>`, `+` or
  // `~` (and the blanks after it) into `combinator`, or takes the blanks as the descendant
  // combinator; false when neither is there.
  bool combinator_after(bool spaced, char& combinator) {
    if (peek() == '>' || peek() == '+' || peek() == '~') {
      combinator = peek();
      ++pos_;
      skip_space();
      return true;
    }
    if (spaced) combinator = ' ';
    return spaced;
  }

  bool skip_space() {
    std::size_t start = pos_;
    while (!at_end() && css_space(peek())) ++pos_;
    return pos_ > start;
  }

  bool starts_with(std::string_view prefix) const { return s_.substr(pos_).starts_with(prefix); }
  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }

  std::nullopt_t fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return std::nullopt;
  }

  std::string_view s_;
  bool html_;
  std::size_t pos_ = 0;
  std::string error_;
};

bool xpath_name_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

bool xpath_name_char(char c) {
  return xpath_name_start(c) || std::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == '-';
}

}  // namespace

CssTranslation css_to_xpath(std::string_view css, Markup markup) {
  if (css.find_first_not_of(" \t\n\r\f") == std::string_view::npos) return {{}, "empty selector"};
  return Parser(css, markup).run();
}

std::vector<std::string> xpath_prefixes(std::string_view x) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < x.size();) {
    char c = x[i];
    if (c == '\'' || c == '"') {
      auto close = x.find(c, i + 1);
      i = close == std::string_view::npos ? x.size() : close + 1;
    } else if (xpath_name_start(c)) {
      std::size_t start = i;
      while (i < x.size() && xpath_name_char(x[i])) ++i;
      // NAME ':' but not NAME '::' (an axis)
      if (i + 1 < x.size() && x[i] == ':' && x[i + 1] != ':') {
        std::string prefix(x.substr(start, i - start));
        bool seen = false;
        for (const auto& p : out) seen = seen || p == prefix;
        if (!seen) out.push_back(prefix);
        ++i;
      }
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      while (i < x.size() && (std::isdigit(static_cast<unsigned char>(x[i])) || x[i] == '.')) ++i;
    } else {
      ++i;
    }
  }
  return out;
}

}  // namespace scraperd::config
