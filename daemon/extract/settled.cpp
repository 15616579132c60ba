#include "daemon/extract/settled.h"

#include <algorithm>
#include <cctype>
#include <optional>

namespace scraperd::daemon {
namespace {

struct Token {
  enum class Kind { kName, kLiteral, kNumber, kOp, kEnd } kind = Kind::kEnd;
  std::string text;
};

bool name_start(unsigned char c) {
  return std::isalpha(c) || c == '_' || c >= 0x80;
}
bool name_char(unsigned char c) {
  return name_start(c) || std::isdigit(c) || c == '-' || c == '.';
}

// XPath 1.0's tokens; nullopt for what it cannot read (the caller then says "unsafe").
std::optional<std::vector<Token>> tokenize(std::string_view s) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (std::isspace(c)) {
      ++i;
    } else if (c == '"' || c == '\'') {
      auto end = s.find(static_cast<char>(c), i + 1);
      if (end == std::string_view::npos) return std::nullopt;
      out.push_back({Token::Kind::kLiteral, std::string(s.substr(i + 1, end - i - 1))});
      i = end + 1;
    } else if (std::isdigit(c) || (c == '.' && i + 1 < s.size() &&
                                   std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      std::size_t start = i;
      while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
      out.push_back({Token::Kind::kNumber, std::string(s.substr(start, i - start))});
    } else if (name_start(c)) {
      std::size_t start = i;
      while (i < s.size() && name_char(static_cast<unsigned char>(s[i]))) ++i;
      out.push_back({Token::Kind::kName, std::string(s.substr(start, i - start))});
    } else {
      static constexpr std::string_view two[] = {"//", "::", "..", "!=", "<=", ">="};
      std::string_view op = s.substr(i, 1);
      for (auto t : two)
        if (s.substr(i, 2) == t) op = t;
      if (std::string_view("/:().[]@,|+-=<>*$").find(op[0]) == std::string_view::npos)
        return std::nullopt;
      out.push_back({Token::Kind::kOp, std::string(op)});
      i += op.size();
    }
  }
  out.push_back({Token::Kind::kEnd, {}});
  return out;
}

// What a sub-expression of a predicate is, as far as safety goes.
enum class Kind {
  kBad,    // reads something that may change later
  kValue,  // a string, number or boolean fixed when the node is created
  kAttrs,  // attribute nodes (their values are fixed too)
  kNodes,  // element (or other) nodes that exist: safe to test or count, not to read as text
};

class Checker {
 public:
  explicit Checker(std::vector<Token> tokens) : t_(std::move(tokens)) {}

  Settles run() {
    Settles out;
    if (!top_union() || !at_end()) return out;
    out.early = true;
    if (!any_) out.on_end_of.assign(names_.begin(), names_.end());
    return out;
  }

 private:
  std::vector<Token> t_;
  std::size_t p_ = 0;
  bool any_ = false;                // some path may settle on any element's end
  std::vector<std::string> names_;  // else: these elements' ends

  const Token& peek(std::size_t ahead = 0) const { return t_[std::min(p_ + ahead, t_.size() - 1)]; }
  bool op(std::string_view o, std::size_t ahead = 0) const {
    return peek(ahead).kind == Token::Kind::kOp && peek(ahead).text == o;
  }
  bool name(std::string_view n, std::size_t ahead = 0) const {
    return peek(ahead).kind == Token::Kind::kName && peek(ahead).text == n;
  }
  bool take(std::string_view o) {
    if (!op(o)) return false;
    ++p_;
    return true;
  }
  bool at_end() const { return peek().kind == Token::Kind::kEnd; }

  // top := item ('|' item)*
  bool top_union() {
    if (!top_item()) return false;
    while (take("|"))
      if (!top_item()) return false;
    return true;
  }

  // item := '(' top ')' ('[' k ']')? | main path
  bool top_item() {
    if (take("(")) {
      if (!top_union() || !take(")")) return false;
      if (take("[")) {
        const Token& k = peek();
        if (k.kind != Token::Kind::kNumber || k.text.find('.') != std::string::npos) return false;
        ++p_;
        if (!take("]")) return false;
      }
      return true;
    }
    return main_path();
  }

  // An absolute or relative path of forward steps (the context node is the document).
  bool main_path() {
    std::string last;  // last element name test; "" for any
    bool named = false;
    if (take("/")) {
      if (at_end() || op("|") || op(")")) return false;  // "/" alone: the document node
    } else if (take("//")) {
      last.clear();
    }
    for (;;) {
      if (!main_step(last, named)) return false;
      if (!take("/") && !take("//")) break;
    }
    if (!named || last.empty())
      any_ = true;
    else if (std::find(names_.begin(), names_.end(), last) == names_.end())
      names_.push_back(last);
    return true;
  }

  // A step of the main path; `last`/`named`: the last element name test seen.
  bool main_step(std::string& last, bool& named) {
    if (take(".")) return true;  // self::node()
    std::string axis = "child";
    if (take("@")) {
      axis = "attribute";
    } else if (peek().kind == Token::Kind::kName && op("::", 1)) {
      axis = peek().text;
      p_ += 2;
    }
    static constexpr std::string_view forward[] = {"child",    "descendant", "descendant-or-self",
                                                   "self",     "attribute",  "following-sibling",
                                                   "following"};
    if (std::find(std::begin(forward), std::end(forward), axis) == std::end(forward)) return false;
    std::string test;
    if (!node_test(test)) return false;
    if (axis != "attribute" && test != "text()") {
      // An element test: `*`, node() or a prefixed name settle on any element's end.
      named = true;
      last = test == "*" || test == "node()" || test.find(':') != std::string::npos ? "" : test;
    }
    while (take("[")) {
      if (predicate() == Kind::kBad || !take("]")) return false;
    }
    return true;
  }

  // name, prefix:name, prefix:*, *, node(), text(); comment() and processing-instruction()
  // are refused (nothing a field reads).
  bool node_test(std::string& test) {
    if (take("*")) {
      test = "*";
      return true;
    }
    if (peek().kind != Token::Kind::kName) return false;
    test = peek().text;
    ++p_;
    if (op("(")) {
      if ((test != "node" && test != "text") || !op(")", 1)) return false;
      p_ += 2;
      test += "()";
      return true;
    }
    if (op(":") && (peek(1).kind == Token::Kind::kName || op("*", 1))) {
      test += ":" + peek(1).text;
      p_ += 2;
    }
    return true;
  }

  // A predicate's expression: XPath's precedence, or > and > equality > relational >
  // additive > multiplicative > unary.
  Kind predicate() { return or_expr(); }

  template <typename Next>
  Kind binary(Next next, std::initializer_list<std::string_view> ops, bool operands_read_text) {
    Kind k = (this->*next)();
    for (;;) {
      bool matched = false;
      for (auto o : ops) {
        bool is_word = o == "and" || o == "or" || o == "div" || o == "mod";
        if (is_word ? name(o) : op(o)) {
          matched = true;
          break;
        }
      }
      if (!matched) return k;
      ++p_;
      Kind r = (this->*next)();
      if (k == Kind::kBad || r == Kind::kBad) return Kind::kBad;
      if (operands_read_text && (k == Kind::kNodes || r == Kind::kNodes)) return Kind::kBad;
      k = Kind::kValue;
    }
  }

  Kind or_expr() { return binary(&Checker::and_expr, {"or"}, false); }
  Kind and_expr() { return binary(&Checker::eq_expr, {"and"}, false); }
  Kind eq_expr() { return binary(&Checker::rel_expr, {"=", "!="}, true); }
  Kind rel_expr() { return binary(&Checker::add_expr, {"<", "<=", ">", ">="}, true); }
  Kind add_expr() { return binary(&Checker::mul_expr, {"+", "-"}, true); }
  Kind mul_expr() { return binary(&Checker::unary, {"*", "div", "mod"}, true); }

  Kind unary() {
    if (take("-")) {
      Kind k = unary();
      return k == Kind::kValue || k == Kind::kAttrs ? Kind::kValue : Kind::kBad;
    }
    return primary();
  }

  Kind primary() {
    const Token& t = peek();
    if (t.kind == Token::Kind::kLiteral || t.kind == Token::Kind::kNumber) {
      ++p_;
      return Kind::kValue;
    }
    if (take("(")) {
      Kind k = or_expr();
      return take(")") ? k : Kind::kBad;
    }
    if (t.kind == Token::Kind::kName && op("(", 1) && t.text != "node" && t.text != "text" &&
        t.text != "comment" && t.text != "processing-instruction")
      return function();
    return predicate_path();
  }

  Kind function() {
    const std::string f = peek().text;
    p_ += 2;  // name (
    std::vector<Kind> args;
    if (!take(")")) {
      for (;;) {
        args.push_back(or_expr());
        if (take(")")) break;
        if (!take(",")) return Kind::kBad;
      }
    }
    auto all = [&](auto ok) { return std::all_of(args.begin(), args.end(), ok); };
    auto readable = [](Kind k) { return k == Kind::kValue || k == Kind::kAttrs; };
    auto nodes = [](Kind k) { return k == Kind::kAttrs || k == Kind::kNodes; };
    if (f == "position" || f == "true" || f == "false")
      return args.empty() ? Kind::kValue : Kind::kBad;
    if (f == "name" || f == "local-name" || f == "namespace-uri")
      return args.empty() || (args.size() == 1 && nodes(args[0])) ? Kind::kValue : Kind::kBad;
    if (f == "not" || f == "boolean")
      return args.size() == 1 && args[0] != Kind::kBad ? Kind::kValue : Kind::kBad;
    if (f == "count") return args.size() == 1 && nodes(args[0]) ? Kind::kValue : Kind::kBad;
    // Without an argument these read the context node's text: refused.
    static constexpr std::string_view text_functions[] = {
        "string",          "number", "string-length", "normalize-space", "contains",
        "starts-with",     "concat", "translate",     "substring",       "substring-before",
        "substring-after", "floor",  "ceiling",       "round",           "sum"};
    if (std::find(std::begin(text_functions), std::end(text_functions), f) !=
        std::end(text_functions))
      return !args.empty() && all(readable) ? Kind::kValue : Kind::kBad;
    return Kind::kBad;  // last(), id(), lang(), anything else
  }

  // A relative path inside a predicate: only axes whose nodes exist once the context node
  // does (self, attribute, parent, ancestors, preceding).
  Kind predicate_path() {
    Kind k = Kind::kBad;
    for (;;) {
      if (take(".")) {
        k = Kind::kNodes;
      } else if (take("..")) {
        k = Kind::kNodes;
      } else {
        std::string axis;
        if (take("@")) {
          axis = "attribute";
        } else if (peek().kind == Token::Kind::kName && op("::", 1)) {
          axis = peek().text;
          p_ += 2;
        } else {
          return Kind::kBad;  // the child axis (or a variable, an absolute path...)
        }
        static constexpr std::string_view backward[] = {
            "self",      "attribute",        "parent", "ancestor", "ancestor-or-self",
            "preceding", "preceding-sibling"};
        if (std::find(std::begin(backward), std::end(backward), axis) == std::end(backward))
          return Kind::kBad;
        std::string test;
        if (!node_test(test)) return Kind::kBad;
        while (take("[")) {
          if (predicate() == Kind::kBad || !take("]")) return Kind::kBad;
        }
        k = axis == "attribute" ? Kind::kAttrs : Kind::kNodes;
      }
      if (!take("/")) return k;
    }
  }
};

}  // namespace

Settles settles(std::string_view xpath) {
  auto tokens = tokenize(xpath);
  if (!tokens) return {};
  return Checker(std::move(*tokens)).run();
}

}  // namespace scraperd::daemon
