// Walking YAML with file:line:col errors: the text checks yaml-cpp does not make, the Yaml tree
// it is converted to, and the Loader's generic readers (string with ${VAR}, integer, boolean,
// one_of, duration, url) that report each mistake at its node.
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <set>

#include "config/duration.h"
#include "config/loader.h"
#include "config/text.h"
#include "config/url.h"

namespace scraperd::config::detail {

namespace {

// Text checks yaml-cpp does not make: a position for binary data, and a nesting bound so a
// hostile file cannot overflow yaml-cpp's recursive parser.
std::optional<Diagnostic> precheck(const std::string& text, const std::string& file) {
  if (text.size() > kMaxFileBytes)
    return Diagnostic{file, 0, 0,
                      "the file is " + std::to_string(text.size() / (1024 * 1024)) +
                          " MB; job files are limited to " +
                          std::to_string(kMaxFileBytes / (1024 * 1024)) + " MB"};
  int line = 1, col = 1, depth = 0, dash_depth = 0;
  int quote_line = 0, quote_col = 0;
  char quote = 0, prev = '\n';  // prev: the last character outside quotes and comments
  bool comment = false, line_start = true;
  auto nested = [&] {
    return Diagnostic{file, line, col - 1,
                      "nested more than " + std::to_string(kMaxNesting) + " levels deep"};
  };
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == 0 || (c < 0x20 && c != '\n' && c != '\t' && c != '\r'))
      return Diagnostic{file, line, col,
                        "this is not a text file (control byte " + std::to_string(c) + ")"};
    if (c >= 0x80) {  // one UTF-8 sequence
      int n = c >= 0xF5 ? -1 : c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC2 ? 1 : -1;
      for (int k = 1; n > 0 && k <= n; ++k)
        if (i + k >= text.size() || (static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80)
          n = -1;
      if (n < 0) return Diagnostic{file, line, col, "invalid UTF-8: job files must be UTF-8"};
      i += static_cast<size_t>(n);
      ++col;
      if (!quote && !comment) prev = 'x', line_start = false;
      continue;
    }
    if (c == '\n') {
      ++line, col = 1, comment = false, line_start = true, dash_depth = 0;
      if (!quote) prev = '\n';
      continue;
    }
    ++col;
    if (comment) continue;
    if (quote) {
      if (c == static_cast<unsigned char>(quote)) {
        if (quote == '\'' && i + 1 < text.size() && text[i + 1] == '\'') {
          ++i, ++col;  // '' is an escaped quote
        } else {
          quote = 0;
          prev = 'x';
        }
      } else if (c == '\\' && quote == '"') {
        ++i, ++col;
      }
      continue;
    }
    if (c == '\t' && line_start)
      return Diagnostic{file, line, col - 1, "a tab in indentation: YAML indents with spaces"};
    bool after_space = prev == ' ' || prev == '\t' || prev == '\n';
    if (c == '#' && after_space) {
      comment = true;
      continue;
    }
    // A quote starts a quoted scalar only where a scalar starts (not inside "don't").
    if ((c == '"' || c == '\'') &&
        (after_space || prev == '[' || prev == '{' || prev == ',' || prev == ':')) {
      quote = static_cast<char>(c), quote_line = line, quote_col = col - 1;
      line_start = false;
      continue;
    }
    if (c == '[' || c == '{') {
      if (++depth > kMaxNesting) return nested();
    } else if (c == ']' || c == '}') {
      depth = std::max(0, depth - 1);
    } else if (line_start && (c == '-' || c == '?') && i + 1 < text.size() &&
               (text[i + 1] == ' ' || text[i + 1] == '\t')) {
      if (++dash_depth > kMaxNesting) return nested();
      prev = ' ';
      continue;
    }
    if (c != ' ' && c != '\t') line_start = false;
    prev = static_cast<char>(c);
  }
  if (quote) return Diagnostic{file, quote_line, quote_col, "this quoted string is never closed"};
  return std::nullopt;
}

}  // namespace

std::size_t Yaml::size() const {
  return kind == Kind::kMap ? entries.size() : items.size();
}

const Yaml& Yaml::operator[](std::string_view key) const {
  static const Yaml undefined;
  for (const auto& e : entries)
    if (e.first.kind == Kind::kScalar && e.first.scalar == key) return e.second;
  return undefined;
}

namespace {

// Converts a yaml-cpp tree; false when it has more than `budget` nodes (alias expansion).
bool convert(const YAML::Node& in, Yaml& out, std::size_t& budget) {
  if (budget == 0) return false;
  --budget;
  auto mark = in.Mark();
  out.line = mark.line;
  out.column = mark.column;
  switch (in.Type()) {
    case YAML::NodeType::Null: out.kind = Yaml::Kind::kNull; break;
    case YAML::NodeType::Scalar:
      out.kind = Yaml::Kind::kScalar;
      out.scalar = in.Scalar();
      break;
    case YAML::NodeType::Sequence:
      out.kind = Yaml::Kind::kSequence;
      out.items.resize(in.size());
      {
        std::size_t i = 0;
        for (auto it = in.begin(); it != in.end(); ++it, ++i)
          if (!convert(*it, out.items[i], budget)) return false;
      }
      break;
    case YAML::NodeType::Map:
      out.kind = Yaml::Kind::kMap;
      out.entries.resize(in.size());
      {
        std::size_t i = 0;
        for (auto it = in.begin(); it != in.end(); ++it, ++i)
          if (!convert(it->first, out.entries[i].first, budget) ||
              !convert(it->second, out.entries[i].second, budget))
            return false;
      }
      break;
    case YAML::NodeType::Undefined: break;
  }
  return true;
}

std::optional<bool> to_bool(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "true" || s == "yes" || s == "on" || s == "y") return true;
  if (s == "false" || s == "no" || s == "off" || s == "n") return false;
  return std::nullopt;
}

}  // namespace

std::optional<long long> to_integer(const std::string& s) {
  long long v = 0;
  const char* b = s.data() + (s.starts_with('+') ? 1 : 0);
  auto [end, ec] = std::from_chars(b, s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || b == s.data() + s.size())
    return std::nullopt;
  return v;
}

std::optional<Yaml> Loader::parse(const std::string& text, const std::string& file) {
  if (auto d = precheck(text, file)) {
    errors_.push_back(*d);
    return std::nullopt;
  }
  try {
    YAML::Node doc = YAML::Load(text);
    Yaml tree;
    std::size_t budget = kMaxNodes;
    if (convert(doc, tree, budget)) return tree;
    errors_.push_back({file, 0, 0,
                       "the document has more than " + std::to_string(kMaxNodes) +
                           " nodes once its aliases are expanded"});
    return std::nullopt;
  } catch (const YAML::ParserException& e) {
    errors_.push_back({file, e.mark.line + 1, e.mark.column + 1, e.msg});
  } catch (const YAML::Exception& e) {
    errors_.push_back({file, 0, 0, e.what()});
  }
  return std::nullopt;
}

void Loader::error(const Yaml& node, std::string message) {
  if (!job_.empty()) message += " (in job '" + job_ + "')";
  if (node.line < 0)
    errors_.push_back({file_, 0, 0, std::move(message)});
  else
    errors_.push_back({file_, node.line + 1, node.column + 1, std::move(message)});
}

void Loader::warn(const Yaml& node, std::string message) {
  if (node.line < 0)
    warnings_.push_back({file_, 0, 0, std::move(message)});
  else
    warnings_.push_back({file_, node.line + 1, node.column + 1, std::move(message)});
}

bool Loader::map(const Yaml& node, const std::string& what) {
  if (node.IsMap()) return true;
  error(node, what + " must be a mapping of key: value");
  return false;
}

// Unknown keys get a did-you-mean; keys written twice are errors (yaml-cpp keeps both).
void Loader::check_keys(const Yaml& node, Keys allowed, const std::string& where) {
  std::set<std::string> seen;
  for (const auto& kv : node.entries) {
    if (!kv.first.IsScalar()) {
      error(kv.first, "a key must be a plain word " + where);
      continue;
    }
    std::string key = kv.first.Scalar();
    if (!seen.insert(key).second) {
      error(kv.first, "duplicate key '" + key + "' " + where);
    } else if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
      error(kv.first, "unknown key '" + key + "' " + where + did_you_mean(key, allowed));
    }
  }
}

void Loader::note_secret(std::string value, std::string name) {
  for (const auto& [v, n] : cfg_secrets_)
    if (v == value) return;
  cfg_secrets_.emplace_back(std::move(value), std::move(name));
}

// A string scalar with ${VAR} replaced from the environment. Messages quote the text as
// written (node.Scalar()), never the substituted value, so secrets do not leak into logs.
std::optional<std::string> Loader::string(const Yaml& node, const std::string& what) {
  if (!node.IsScalar()) {
    error(node, what + " must be a string");
    return std::nullopt;
  }
  const std::string& raw = node.Scalar();
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '$' && i + 1 < raw.size() && raw[i + 1] == '$') {
      out += '$';
      ++i;
    } else if (raw[i] == '$' && i + 1 < raw.size() && raw[i + 1] == '{') {
      auto close = raw.find('}', i);
      std::string var = close == std::string::npos ? "" : raw.substr(i + 2, close - i - 2);
      if (var.empty() || var.find_first_not_of(
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") !=
                             std::string::npos) {
        error(node,
              what + ": '${' must be followed by a variable name and '}' (write $$ for a plain $)");
        return std::nullopt;
      }
      const char* value = std::getenv(var.c_str());
      if (!value && !env_required_) {
        warn(node, what + ": environment variable '" + var + "' is not set");
        value = "";
      } else if (!value) {
        error(node, what + ": environment variable '" + var + "' is not set");
        return std::nullopt;
      }
      out += value;
      if (std::strlen(value) >= 4) note_secret(value, "${" + var + "}");
      i = close;
    } else {
      out += raw[i];
    }
  }
  return out;
}

std::optional<long long> Loader::integer(const Yaml& node, const std::string& what, long long lo,
                                         long long hi) {
  auto parsed = node.IsScalar() ? to_integer(node.Scalar()) : std::nullopt;
  if (!parsed) {
    error(node, what + " must be a whole number");
    return std::nullopt;
  }
  long long value = *parsed;
  if (value < lo || value > hi) {
    error(node, what + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return std::nullopt;
  }
  return value;
}

std::optional<bool> Loader::boolean(const Yaml& node, const std::string& what) {
  auto value = node.IsScalar() ? to_bool(node.Scalar()) : std::nullopt;
  if (!value) error(node, what + " must be true or false");
  return value;
}

std::optional<std::string> Loader::one_of(const Yaml& node, const std::string& what,
                                          std::initializer_list<std::string_view> choices) {
  auto v = string(node, what);
  if (!v) return std::nullopt;
  if (std::find(choices.begin(), choices.end(), *v) != choices.end()) return v;
  std::string list;
  for (auto c : choices) list += (list.empty() ? "" : ", ") + std::string(c);
  error(node, what + " must be one of " + list + ", not '" + node.Scalar() + "'" +
                  did_you_mean(*v, Keys(choices.begin(), choices.size())));
  return std::nullopt;
}

std::optional<Duration> Loader::duration(const Yaml& node, const std::string& what) {
  auto text = string(node, what);
  if (!text) return std::nullopt;
  auto d = parse_duration(*text);
  if (!d) {
    error(node, what + " is not a duration: '" + node.Scalar() + "' (write e.g. 90s, 15m, 1h30m)");
    return std::nullopt;
  }
  if (d->count() <= 0) {
    error(node, what + " must be greater than zero");
    return std::nullopt;
  }
  return d;
}

std::optional<std::string> Loader::url(const Yaml& node, const std::string& what) {
  auto text = string(node, what);
  if (!text) return std::nullopt;
  if (!parse_url(*text)) {
    error(node, what + " '" + node.Scalar() + "' is not an absolute http:// or https:// URL");
    return std::nullopt;
  }
  return text;
}

}  // namespace scraperd::config::detail
