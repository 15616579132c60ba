#include "config/css.h"

#include <algorithm>
#include <cctype>
#include <optional>
#include <vector>

#include "config/text.h"

namespace scraperd::config {
namespace {

bool ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
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

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  CssTranslation run() {
    std::vector<std::string> alternatives;
    for (;;) {
      skip_space();
      auto one = selector();
      if (!one) return {{}, error_};
      alternatives.push_back(*one);
      skip_space();
      if (at_end()) break;
      if (peek() != ',') {
        fail("unexpected '" + std::string(1, peek()) + "'");
        return {{}, error_};
      }
      ++pos_;
    }
    std::string xpath;
    for (const auto& a : alternatives) xpath += (xpath.empty() ? "" : " | ") + a;
    return {xpath, {}};
  }

 private:
  // selector := compound (combinator compound)* pseudo-element?
  std::optional<std::string> selector() {
    std::string path = "//";
    auto first = compound();
    if (!first) return std::nullopt;
    path += *first;
    for (;;) {
      bool spaced = skip_space();
      if (at_end() || peek() == ',') break;
      if (s_.substr(pos_).starts_with("::")) {
        if (spaced) return fail("a pseudo-element must follow a selector directly");
        auto pe = pseudo_element();
        if (!pe) return std::nullopt;
        path += *pe;
        skip_space();
        if (!at_end() && peek() != ',') return fail("nothing may follow a pseudo-element");
        break;
      }
      char c = peek();
      std::string step;
      if (c == '>' || c == '+' || c == '~') {
        ++pos_;
        skip_space();
        auto next = compound();
        if (!next) return std::nullopt;
        if (c == '>') {
          step = "/" + *next;
        } else if (c == '~') {
          step = "/following-sibling::" + *next;
        } else {
          // The element right after: the first following sibling, if it matches.
          step = "/following-sibling::*[1][self::" + *next + "]";
        }
      } else if (spaced) {
        auto next = compound();
        if (!next) return std::nullopt;
        step = "//" + *next;
      } else {
        return fail("unexpected '" + std::string(1, c) + "'");
      }
      path += step;
    }
    return path;
  }

  // compound := (type | '*')? (#id | .class | [attr] | :pseudo)*  → "name[cond][cond]"
  std::optional<std::string> compound() {
    std::string name;
    if (!at_end() && peek() == '*') {
      ++pos_;
      name = "*";
    } else if (!at_end() && ident_char(peek())) {
      name = lower(ident());
    }
    std::string conditions;
    for (;;) {
      if (at_end()) break;
      char c = peek();
      std::optional<std::string> cond;
      if (c == '#') {
        ++pos_;
        std::string id = ident();
        if (id.empty()) return fail("'#' needs an id");
        cond = "@id = " + literal(id);
      } else if (c == '.') {
        ++pos_;
        std::string cls = ident();
        if (cls.empty()) return fail("'.' needs a class name");
        cond =
            "contains(concat(' ', normalize-space(@class), ' '), " + literal(" " + cls + " ") + ")";
      } else if (c == '[') {
        cond = attribute();
      } else if (c == ':' && !s_.substr(pos_).starts_with("::")) {
        cond = pseudo_class();
      } else {
        break;
      }
      if (!cond) return std::nullopt;
      conditions += "[" + *cond + "]";
    }
    if (name.empty() && conditions.empty()) {
      if (at_end()) return fail("a selector is missing");
      return fail("unexpected '" + std::string(1, peek()) + "'");
    }
    return (name.empty() ? "*" : name) + conditions;
  }

  std::optional<std::string> attribute() {
    ++pos_;  // '['
    skip_space();
    std::string attr = lower(ident());
    if (attr.empty()) return fail("an attribute selector needs a name");
    skip_space();
    if (at_end()) return fail("an attribute selector is missing its ']'");
    if (peek() == ']') {
      ++pos_;
      return "@" + attr;
    }
    std::string op;
    if (!at_end() && peek() == '=') {
      op = "=";
      ++pos_;
    } else if (pos_ + 1 < s_.size() && s_[pos_ + 1] == '=' &&
               std::string_view("^$*~|").find(peek()) != std::string_view::npos) {
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
    std::string a = "@" + attr, v = literal(*value);
    if (op == "=") return a + " = " + v;
    if (op == "~=")
      return value->empty() || value->find(' ') != std::string::npos
                 ? std::string("false()")
                 : "contains(concat(' ', normalize-space(" + a + "), ' '), " +
                       literal(" " + *value + " ") + ")";
    if (op == "|=")
      return a + " = " + v + " or starts-with(" + a + ", " + literal(*value + "-") + ")";
    if (value->empty()) return std::string("false()");  // ^= $= *= with "" match nothing
    if (op == "^=") return "starts-with(" + a + ", " + v + ")";
    if (op == "*=") return "contains(" + a + ", " + v + ")";
    return "substring(" + a + ", string-length(" + a + ") - " + std::to_string(value->size()) +
           " + 1) = " + v;  // $=
  }

  std::optional<std::string> pseudo_class() {
    ++pos_;  // ':'
    std::string name = lower(ident());
    if (name == "first-child") return std::string("not(preceding-sibling::*)");
    if (name == "last-child") return std::string("not(following-sibling::*)");
    if (name == "only-child")
      return std::string("not(preceding-sibling::*) and not(following-sibling::*)");
    if (name == "nth-child") {
      auto arg = parenthesised();
      if (!arg) return std::nullopt;
      return nth(*arg);
    }
    if (name == "not") {
      if (at_end() || peek() != '(') return fail(":not needs a selector in parentheses");
      ++pos_;
      skip_space();
      auto inner = compound();
      if (!inner) return std::nullopt;
      skip_space();
      if (at_end() || peek() != ')') return fail(":not(...) takes one simple selector");
      ++pos_;
      return "not(self::" + *inner + ")";
    }
    if (name.empty()) return fail("':' needs a pseudo-class name");
    return fail("unsupported pseudo-class ':" + name + "'");
  }

  std::optional<std::string> pseudo_element() {
    pos_ += 2;
    std::string name = lower(ident());
    if (name == "text") return std::string("/text()");
    if (name == "attr") {
      auto arg = parenthesised();
      if (!arg) return std::nullopt;
      std::string attr = lower(*arg);
      if (attr.empty() || !std::all_of(attr.begin(), attr.end(), ident_char))
        return fail("::attr() needs an attribute name");
      return "/@" + attr;
    }
    return fail("unsupported pseudo-element '::" + name + "'");
  }

  // an+b, odd, even → an XPath condition on the 1-based position among siblings.
  std::optional<std::string> nth(std::string arg) {
    std::string s;
    for (char c : lower(arg))
      if (c != ' ') s += c;
    long a = 0, b = 0;
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
      else if (!number(as, a))
        return fail(":nth-child(" + arg + ") is not of the form an+b");
      if (!bs.empty() && (!(bs[0] == '+' || bs[0] == '-') || !number(bs, b)))
        return fail(":nth-child(" + arg + ") is not of the form an+b");
    } else if (!number(s, b)) {
      return fail(":nth-child(" + arg + ") is not of the form an+b");
    }
    std::string p = "count(preceding-sibling::*) + 1";
    if (a == 0) return p + " = " + std::to_string(b);
    std::string diff = a > 0 ? "(" + p + " - " + std::to_string(b) + ")"
                             : "(" + std::to_string(b) + " - (" + p + "))";
    std::string bound = a > 0 ? p + " >= " + std::to_string(b) : p + " <= " + std::to_string(b);
    return bound + " and " + diff + " mod " + std::to_string(a > 0 ? a : -a) + " = 0";
  }

  static bool number(const std::string& s, long& out) {
    size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
    if (i == s.size() || s.size() > 9) return false;
    for (size_t j = i; j < s.size(); ++j)
      if (!std::isdigit(static_cast<unsigned char>(s[j]))) return false;
    out = std::stol(s);
    return true;
  }

  std::optional<std::string> parenthesised() {
    if (at_end() || peek() != '(') return fail("expected '('");
    size_t close = s_.find(')', pos_);
    if (close == std::string_view::npos) return fail("missing ')'");
    std::string inside(s_.substr(pos_ + 1, close - pos_ - 1));
    pos_ = close + 1;
    size_t b = inside.find_first_not_of(' '), e = inside.find_last_not_of(' ');
    return b == std::string::npos ? std::string() : inside.substr(b, e - b + 1);
  }

  std::optional<std::string> value_token() {
    if (at_end()) return fail("an attribute selector is missing its value");
    char q = peek();
    if (q == '"' || q == '\'') {
      size_t close = s_.find(q, pos_ + 1);
      if (close == std::string_view::npos) return fail("unterminated string");
      std::string v(s_.substr(pos_ + 1, close - pos_ - 1));
      if (v.find('\\') != std::string::npos) return fail("escapes in strings are not supported");
      pos_ = close + 1;
      return v;
    }
    std::string v = ident();
    if (v.empty()) return fail("an attribute value must be an identifier or a quoted string");
    return v;
  }

  std::string ident() {
    size_t start = pos_;
    while (!at_end() && ident_char(peek())) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }

  bool skip_space() {
    size_t start = pos_;
    while (!at_end() && std::isspace(static_cast<unsigned char>(peek()))) ++pos_;
    return pos_ > start;
  }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }

  std::nullopt_t fail(std::string message) {
    if (error_.empty()) error_ = std::move(message);
    return std::nullopt;
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace

CssTranslation css_to_xpath(std::string_view css) {
  if (css.find('\\') != std::string_view::npos) return {{}, "CSS escapes are not supported"};
  if (css.find_first_not_of(" \t\n") == std::string_view::npos) return {{}, "empty selector"};
  return Parser(css).run();
}

}  // namespace scraperd::config
