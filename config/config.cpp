#include "config/config.h"

#include <glob.h>
#include <libxml/xpath.h>
#include <unistd.h>
#include <uriparser/Uri.h>
#include <yaml-cpp/yaml.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <span>
#include <sstream>
#include <tuple>

#include "config/css.h"
#include "config/duration.h"
#include "config/text.h"
#include "config/url.h"

namespace scraperd::config {

std::string Diagnostic::str() const {
  std::ostringstream out;
  out << file;
  if (line > 0) out << ':' << line << ':' << column;
  out << ": " << message;
  return out.str();
}

namespace {

namespace fs = std::filesystem;
using Keys = std::span<const std::string_view>;

constexpr std::string_view kTopKeys[] = {"defaults", "jobs",        "storage",
                                         "api",      "log",         "include",
                                         "render",   "concurrency", "shutdown_timeout"};
constexpr std::string_view kIncludedKeys[] = {"jobs", "include"};
// Keys a job and `defaults` share; a job also has name, url, urls.
#define SCRAPERD_COMMON_KEYS                                                                      \
  "method", "headers", "body", "every", "cron", "timezone", "jitter", "timeout", "retries",       \
      "per_host", "robots", "max_body", "max_redirects", "user_agent", "proxy", "tls", "cookies", \
      "conditional", "http2", "follow", "namespaces", "extract", "store", "notify", "paused",     \
      "render"
constexpr std::string_view kDefaultKeys[] = {SCRAPERD_COMMON_KEYS};
constexpr std::string_view kJobKeys[] = {"name", "url", "urls", SCRAPERD_COMMON_KEYS};
#undef SCRAPERD_COMMON_KEYS
constexpr std::string_view kStorageKeys[] = {"path", "keep"};
constexpr std::string_view kApiKeys[] = {"listen", "token", "token_file"};
constexpr std::string_view kLogKeys[] = {"level", "format"};
constexpr std::string_view kTimeoutKeys[] = {"connect", "total"};
constexpr std::string_view kRetryKeys[] = {"max", "backoff", "max_backoff", "max_stall",
                                           "on_status"};
constexpr std::string_view kPerHostKeys[] = {"rate", "burst", "concurrency", "delay"};
constexpr std::string_view kFollowKeys[] = {"css",       "xpath", "same_host", "max_depth",
                                            "max_pages", "allow", "deny"};
constexpr std::string_view kFieldKeys[] = {"css", "xpath", "json",       "regex",   "attr",
                                           "all", "type",  "namespaces", "required"};
constexpr std::string_view kNotifyKeys[] = {"webhook", "on_change", "failing_streak"};
constexpr std::string_view kTlsKeys[] = {"ca_file", "verify"};
constexpr std::string_view kRenderKeys[] = {"browser",  "wait_for",   "timeout",    "block",
                                            "viewport", "user_agent", "javascript", "screenshot"};
constexpr std::string_view kRenderPoolKeys[] = {"concurrency", "restart_after", "idle_shutdown",
                                                "executable"};
constexpr std::string_view kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};

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

std::string compile_regex(const std::string& pattern) {
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* re = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                                 PCRE2_UTF, &code, &offset, nullptr);
  if (re) {
    pcre2_code_free(re);
    return "";
  }
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return std::string(reinterpret_cast<char*>(buf)) + " at offset " + std::to_string(offset);
}

void quiet_xml_errors(void*, const char*, ...) {}

bool xpath_compiles(const std::string& expr) {
  xmlSetGenericErrorFunc(nullptr, quiet_xml_errors);
  xmlSetStructuredErrorFunc(nullptr, nullptr);
  xmlXPathCompExprPtr comp = xmlXPathCompile(reinterpret_cast<const xmlChar*>(expr.c_str()));
  if (!comp) return false;
  xmlXPathFreeCompExpr(comp);
  return true;
}

// "http://h/p/{1..3}" → three URLs; "{01..10}" keeps the zero padding. Several ranges
// multiply. Returns an error message for a malformed or too large range.
std::string expand_ranges(const std::string& url, std::vector<std::string>& out, size_t cap) {
  auto open = url.find('{');
  if (open == std::string::npos) {
    out.push_back(url);
    return out.size() > cap ? "more than " + std::to_string(cap) + " URLs" : "";
  }
  auto close = url.find('}', open);
  auto dots = url.find("..", open);
  if (close == std::string::npos || dots == std::string::npos || dots > close)
    return "a range is written {FIRST..LAST}, like {1..20}";
  std::string a = url.substr(open + 1, dots - open - 1), b = url.substr(dots + 2, close - dots - 2);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 9 && s.find_first_not_of("0123456789") == std::string::npos;
  };
  if (!digits(a) || !digits(b)) return "a range is written {FIRST..LAST}, like {1..20}";
  long lo = std::stol(a), hi = std::stol(b);
  if (lo > hi) return "the range {" + a + ".." + b + "} goes backwards";
  if (static_cast<size_t>(hi - lo) >= cap) return "more than " + std::to_string(cap) + " URLs";
  size_t width = a.size() > 1 && a[0] == '0' ? a.size() : 0;
  for (long v = lo; v <= hi; ++v) {
    std::string n = std::to_string(v);
    if (n.size() < width) n.insert(0, width - n.size(), '0');
    std::string err = expand_ranges(url.substr(0, open) + n + url.substr(close + 1), out, cap);
    if (!err.empty()) return err;
  }
  return "";
}

// A parsed YAML document detached from yaml-cpp: converted in one pass right after parsing,
// because yaml-cpp's node lookups convert and allocate per entry compared and dominated
// loading. Validation then works on these plain values.
struct Yaml {
  enum class Kind { kUndefined, kNull, kScalar, kSequence, kMap };
  struct Entry;

  Kind kind = Kind::kUndefined;
  std::string scalar;
  int line = -1, column = -1;  // 0-based, -1 when unknown
  std::vector<Yaml> items;     // a sequence's items
  std::vector<Entry> entries;  // a mapping's entries, in file order

  explicit operator bool() const { return kind != Kind::kUndefined; }
  bool IsDefined() const { return kind != Kind::kUndefined; }
  bool IsNull() const { return kind == Kind::kNull; }
  bool IsScalar() const { return kind == Kind::kScalar; }
  bool IsSequence() const { return kind == Kind::kSequence; }
  bool IsMap() const { return kind == Kind::kMap; }
  const std::string& Scalar() const { return scalar; }
  std::size_t size() const;

  // The value of the first entry whose key is `key`; an undefined node when there is none.
  const Yaml& operator[](std::string_view key) const;
};

struct Yaml::Entry {
  Yaml first, second;
};

std::size_t Yaml::size() const {
  return kind == Kind::kMap ? entries.size() : items.size();
}

const Yaml& Yaml::operator[](std::string_view key) const {
  static const Yaml undefined;
  for (const auto& e : entries)
    if (e.first.kind == Kind::kScalar && e.first.scalar == key) return e.second;
  return undefined;
}

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

std::optional<long long> to_integer(const std::string& s) {
  long long v = 0;
  const char* b = s.data() + (s.starts_with('+') ? 1 : 0);
  auto [end, ec] = std::from_chars(b, s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || b == s.data() + s.size())
    return std::nullopt;
  return v;
}

std::optional<bool> to_bool(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (s == "true" || s == "yes" || s == "on" || s == "y") return true;
  if (s == "false" || s == "no" || s == "off" || s == "n") return false;
  return std::nullopt;
}

// A proxy URL, "scheme://[userinfo@]host[:port][/]", as "scheme://[userinfo@]host:port" with
// the scheme in lower case and the port written out; otherwise an error message (without the
// text, which the caller quotes as written).
struct ProxyUrl {
  std::string url;    // normalised, when error is empty
  std::string error;  // completes "'proxy' 'TEXT' ..."
};

ProxyUrl parse_proxy(const std::string& text) {
  static const std::string kSchemes = "http://, https://, socks5:// or socks5h://";
  UriUriA uri;
  const char* error_pos = nullptr;
  if (uriParseSingleUriA(&uri, text.c_str(), &error_pos) != URI_SUCCESS)
    return {"", "is not a URL like http://proxy.example:3128 (schemes: " + kSchemes + ")"};
  struct Free {
    UriUriA* u;
    ~Free() { uriFreeUriMembersA(u); }
  } guard{&uri};
  auto range = [](const UriTextRangeA& r) {
    return r.first && r.afterLast ? std::string(r.first, r.afterLast) : std::string();
  };
  std::string scheme = range(uri.scheme);
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  int port = 0;
  if (scheme == "http")
    port = 80;
  else if (scheme == "https")
    port = 443;
  else if (scheme == "socks5" || scheme == "socks5h")
    port = 1080;
  else
    return {"", "must start with " + kSchemes};
  std::string host = range(uri.hostText);
  if (host.empty()) return {"", "has no host (write " + scheme + "://HOST:PORT)"};
  if (std::string p = range(uri.portText); !p.empty()) {
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), port);
    if (ec != std::errc() || end != p.data() + p.size() || port < 1 || port > 65535)
      return {"", "has a port that is not a number from 1 to 65535"};
  }
  bool path = uri.pathHead != nullptr && (uri.pathHead != uri.pathTail ||
                                          uri.pathHead->text.first != uri.pathHead->text.afterLast);
  if (path || uri.query.first != nullptr || uri.fragment.first != nullptr)
    return {"", "has a path, query or fragment (a proxy is written " + scheme + "://HOST:PORT)"};
  std::string user = range(uri.userInfo);
  bool v6 = host.find(':') != std::string::npos;
  return {scheme + "://" + (user.empty() ? "" : user + "@") + (v6 ? "[" + host + "]" : host) + ":" +
              std::to_string(port),
          ""};
}

class Loader {
 public:
  Loader(std::vector<Diagnostic>& errors, std::vector<Diagnostic>& warnings,
         const LoadOptions& options)
      : errors_(errors),
        warnings_(warnings),
        env_required_(options.env_required),
        probe_storage_(options.probe_storage) {}

  // The values ${VAR} references were replaced with, for Config::redact.
  const std::vector<std::pair<std::string, std::string>>& secrets() const { return cfg_secrets_; }

  void load_main(const std::string& text, const std::string& file, Config& cfg) {
    auto parsed = parse(text, file);
    if (!parsed) return;
    const Yaml& root = *parsed;
    file_ = file;
    if (!root.IsDefined() || root.IsNull()) {
      errors_.push_back({file, 0, 0, "the file is empty: it needs a 'jobs' list"});
      return;
    }
    if (!root.IsMap()) return error(root, "the top level must be a mapping with a 'jobs' list");
    check_keys(root, kTopKeys, "at the top level");

    if (const auto& d = root["defaults"]; d && map(d, "'defaults'")) {
      check_keys(d, kDefaultKeys, "in 'defaults'");
      read_common(d, defaults_);
      if (const auto& t = d["tls"]; t.IsMap() && t["verify"] && !defaults_.tls.verify)
        defaults_verify_ = Diagnostic{file, t["verify"].line + 1, t["verify"].column + 1, ""};
    }
    if (const auto& s = root["storage"]; s && map(s, "'storage'")) {
      check_keys(s, kStorageKeys, "in 'storage'");
      if (const auto& p = s["path"]; p) {
        bool saved = std::exchange(env_required_, true);  // see LoadOptions
        auto v = string(p, "'storage.path'");
        env_required_ = saved;
        if (v && v->empty()) {
          error(p, "'storage.path' must not be empty");
        } else if (v) {
          cfg.storage.path = *v;
          if (fs::path(*v).is_relative()) {
            std::error_code ec;
            auto cwd = fs::current_path(ec);
            warn(p, "'storage.path' '" + p.Scalar() +
                        "' is relative: it names a file in the working directory of each "
                        "process that opens it (here " +
                        (ec ? std::string("unknown") : cwd.string()) +
                        "), so the daemon and a query from another directory open different "
                        "databases; write an absolute path");
          }
          if (probe_storage_)
            if (auto why = storage_problem(*v); !why.empty())
              warn(p, "'storage.path' '" + p.Scalar() + "' " + why);
        }
      }
      if (const auto& k = s["keep"]; k)
        if (auto d = duration(k, "'storage.keep'")) cfg.storage.keep = *d;
    }
    if (const auto& a = root["api"]; a && map(a, "'api'")) {
      check_keys(a, kApiKeys, "in 'api'");
      if (const auto& l = a["listen"]; l) {
        if (auto v = string(l, "'api.listen'")) {
          auto colon = v->rfind(':');
          int port = colon == std::string::npos ? -1 : std::atoi(v->c_str() + colon + 1);
          if (!v->empty() &&
              (colon == std::string::npos || colon == 0 || port < 0 || port > 65535 ||
               v->find_first_not_of("0123456789", colon + 1) != std::string::npos))
            error(l, "'api.listen' must be HOST:PORT like 127.0.0.1:9184 (or \"\" to disable)");
          else
            cfg.api.listen = *v;
        }
      }
      if (const auto& t = a["token"]; t)
        if (auto v = string(t, "'api.token'")) cfg.api.token = *v;
      if (const auto& f = a["token_file"]; f) {
        if (a["token"])
          error(f, "'api.token' and 'api.token_file' are both set: keep one");
        else if (auto v = token_file(f))
          cfg.api.token = *v;
      }
    }
    if (const auto& l = root["log"]; l && map(l, "'log'")) {
      check_keys(l, kLogKeys, "in 'log'");
      if (const auto& lv = l["level"]; lv) {
        if (auto v = one_of(lv, "'log.level'", {"trace", "debug", "info", "warn", "error"}))
          cfg.log.level = *v;
      }
      if (const auto& f = l["format"]; f)
        if (auto v = one_of(f, "'log.format'", {"text", "json"})) cfg.log.format = *v;
    }
    if (const auto& c = root["concurrency"]; c)
      if (auto v = integer(c, "'concurrency'", 1, 10000)) cfg.concurrency = static_cast<int>(*v);
    if (const auto& t = root["shutdown_timeout"]; t)
      if (auto d = duration(t, "'shutdown_timeout'")) cfg.shutdown_timeout = *d;
    if (const auto& r = root["render"]; r && map(r, "'render'")) read_render_pool(r, cfg);

    include_stack_.push_back(canonical(file));
    read_jobs_and_includes(root, file, cfg, /*main=*/true);
    warn_insecure_defaults();
  }

 private:
  std::optional<Yaml> parse(const std::string& text, const std::string& file) {
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

  static std::string canonical(const std::string& path) {
    std::error_code ec;
    auto c = fs::weakly_canonical(path, ec);
    return ec ? path : c.string();
  }

  void read_jobs_and_includes(const Yaml& root, const std::string& file, Config& cfg, bool main) {
    if (const auto& jobs = root["jobs"]; jobs) {
      if (!jobs.IsSequence() && !jobs.IsNull()) {
        error(jobs, "'jobs' must be a list (each item starting with '- ')");
      } else {
        cfg.jobs.reserve(cfg.jobs.size() + jobs.items.size());  // 10,000 jobs: no 16,384 slots
        for (const auto& node : jobs.items) {
          Job job = defaults_;
          job.file = file;
          job.line = node.line + 1;
          bool valid = read_job(node, job);
          if (job.name.empty()) continue;  // said already
          // A job with errors still claims its name, so a duplicate is reported in the same pass.
          if (auto [it, fresh] =
                  names_.emplace(job.name, job.file + ":" + std::to_string(job.line));
              !fresh) {
            error(node["name"],
                  "duplicate job name '" + job.name + "' (first defined at " + it->second + ")");
          } else if (valid) {
            warn_insecure(node, job);
            warn_slow(node, job);
            cfg.jobs.push_back(std::move(job));
          }
        }
      }
    } else if (main && !root["include"]) {
      error(root, "missing 'jobs': a list of jobs to run");
    }
    if (const auto& inc = root["include"]; inc) {
      std::vector<Yaml> items;
      if (inc.IsSequence())
        for (const auto& i : inc.items) items.push_back(i);
      else
        items.push_back(inc);
      for (const auto& item : items) {
        auto pattern = string(item, "'include'");
        if (!pattern) continue;
        include(item, *pattern, file, cfg);
      }
    }
  }

  void include(const Yaml& at, const std::string& pattern, const std::string& from, Config& cfg) {
    fs::path base = fs::path(from).parent_path();
    fs::path p = fs::path(pattern).is_absolute() ? fs::path(pattern) : base / pattern;
    std::error_code ec;
    if (fs::is_directory(p, ec)) p /= "*.yaml";
    std::vector<std::string> files;
    glob_t g{};
    int rc = glob(p.c_str(), 0, nullptr, &g);
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) files.push_back(g.gl_pathv[i]);
    globfree(&g);
    if (rc != 0 && pattern.find_first_of("*?[") == std::string::npos)
      return error(at, "cannot include '" + pattern + "': no such file or directory");
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::string canon = canonical(f);
      if (auto loop = std::find(include_stack_.begin(), include_stack_.end(), canon);
          loop != include_stack_.end()) {
        std::string chain;
        for (auto it = loop; it != include_stack_.end(); ++it) chain += *it + " -> ";
        error(at, "include loop: " + chain + canon);
        continue;
      }
      std::ifstream in(f, std::ios::binary);
      if (!in) {
        error(at, "cannot read included file '" + f + "': " + std::strerror(errno));
        continue;
      }
      std::ostringstream text;
      text << in.rdbuf();
      auto root = parse(text.str(), f);
      if (!root || !root->IsDefined() || root->IsNull()) continue;
      std::string saved = file_;
      file_ = f;
      if (!root->IsMap()) {
        error(*root, "an included file must be a mapping with a 'jobs' list");
      } else {
        check_keys(*root, kIncludedKeys, "in an included file");
        include_stack_.push_back(canon);
        read_jobs_and_includes(*root, f, cfg, false);
        include_stack_.pop_back();
      }
      file_ = saved;
    }
  }

  void error(const Yaml& node, std::string message) {
    if (!job_.empty()) message += " (in job '" + job_ + "')";
    if (node.line < 0)
      errors_.push_back({file_, 0, 0, std::move(message)});
    else
      errors_.push_back({file_, node.line + 1, node.column + 1, std::move(message)});
  }

  void warn(const Yaml& node, std::string message) {
    if (node.line < 0)
      warnings_.push_back({file_, 0, 0, std::move(message)});
    else
      warnings_.push_back({file_, node.line + 1, node.column + 1, std::move(message)});
  }

  // A job loaded with tls.verify false: a warning where the job says so, or, when it comes from
  // `defaults`, one warning there for all the jobs concerned (warn_insecure_defaults).
  void warn_insecure(const Yaml& node, const Job& job) {
    if (job.tls.verify) return;
    if (const auto& t = node["tls"]; t.IsMap() && t["verify"])
      warn(t["verify"],
           "tls.verify is false: certificates and host names are not checked (in job '" + job.name +
               "')");
    else
      insecure_by_default_.push_back(job.name);
  }

  // A job whose URLs on one host take longer at that host's rate than its interval: runs
  // overlap their next due time, which is then skipped. Seeds only: followed links add more.
  void warn_slow(const Yaml& node, const Job& job) {
    Duration interval = job.schedule.every;
    if (job.schedule.cron) {  // the shortest gap between its next few firings
      auto at = std::chrono::system_clock::now();
      auto prev = job.schedule.cron->next(at, job.schedule.timezone);
      for (int i = 0; i < 8 && prev; ++i) {
        auto next = job.schedule.cron->next(*prev, job.schedule.timezone);
        if (!next) break;
        auto gap = std::chrono::duration_cast<Duration>(*next - *prev);
        if (interval.count() == 0 || gap < interval) interval = gap;
        prev = next;
      }
    }
    if (interval.count() <= 0) return;
    std::map<std::string, std::size_t> per_host;
    for (const auto& u : job.urls)
      if (auto parsed = parse_url(u)) ++per_host[parsed->host + ":" + std::to_string(parsed->port)];
    for (const auto& [host, n] : per_host) {
      const auto& limits = job.per_host;
      double by_rate = static_cast<double>(n > static_cast<std::size_t>(limits.burst)
                                               ? n - static_cast<std::size_t>(limits.burst)
                                               : 0) /
                       limits.rate;
      double by_delay =
          std::chrono::duration<double>(limits.delay).count() * static_cast<double>(n - 1);
      double needed = std::max(by_rate, by_delay);
      double available = std::chrono::duration<double>(interval).count();
      if (needed <= available) continue;
      warn(node["urls"]  ? node["urls"]
           : node["url"] ? node["url"]
                         : node,
           "job '" + job.name + "' cannot finish within its interval: its " + std::to_string(n) +
               " URLs on " + host + " take at least " + format_duration(needed) + " at " +
               fmt_rate(limits.rate) + " (per_host.rate, burst " + std::to_string(limits.burst) +
               (by_delay > by_rate ? ", per_host.delay" : "") + "), and it is due every " +
               format_duration(available) +
               ": each run overlaps the next due time, which is skipped (raise per_host.rate "
               "or lengthen the schedule)");
    }
  }

  static std::string format_duration(double seconds) {
    char buf[64];
    if (seconds < 120)
      std::snprintf(buf, sizeof buf, "%.0fs", std::ceil(seconds));
    else if (seconds < 7200)
      std::snprintf(buf, sizeof buf, "%.0fm", std::ceil(seconds / 60));
    else
      std::snprintf(buf, sizeof buf, "%.1fh", seconds / 3600);
    return buf;
  }

  static std::string fmt_rate(double rate) {
    char buf[64];
    if (rate >= 1)
      std::snprintf(buf, sizeof buf, "%g/s", rate);
    else if (rate * 60 >= 1)
      std::snprintf(buf, sizeof buf, "%g/m", rate * 60);
    else
      std::snprintf(buf, sizeof buf, "%g/h", rate * 3600);
    return buf;
  }

  void warn_insecure_defaults() {
    if (insecure_by_default_.empty() || !defaults_verify_) return;
    const auto& names = insecure_by_default_;
    std::string list;
    for (size_t i = 0; i < names.size() && i < 5; ++i) list += (i ? ", '" : "'") + names[i] + "'";
    if (names.size() > 5) list += " and " + std::to_string(names.size() - 5) + " more";
    Diagnostic d = *defaults_verify_;
    d.message =
        "tls.verify is false in 'defaults': certificates and host names are not checked "
        "for " +
        std::to_string(names.size()) + (names.size() == 1 ? " job" : " jobs") + " (" + list + ")";
    warnings_.push_back(std::move(d));
  }

  bool map(const Yaml& node, const std::string& what) {
    if (node.IsMap()) return true;
    error(node, what + " must be a mapping of key: value");
    return false;
  }

  // Unknown keys get a did-you-mean; keys written twice are errors (yaml-cpp keeps both).
  void check_keys(const Yaml& node, Keys allowed, const std::string& where) {
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

  void note_secret(std::string value, std::string name) {
    for (const auto& [v, n] : cfg_secrets_)
      if (v == value) return;
    cfg_secrets_.emplace_back(std::move(value), std::move(name));
  }

  // A string scalar with ${VAR} replaced from the environment. Messages quote the text as
  // written (node.Scalar()), never the substituted value, so secrets do not leak into logs.
  std::optional<std::string> string(const Yaml& node, const std::string& what) {
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
          error(
              node,
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

  std::optional<long long> integer(const Yaml& node, const std::string& what, long long lo,
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

  std::optional<bool> boolean(const Yaml& node, const std::string& what) {
    auto value = node.IsScalar() ? to_bool(node.Scalar()) : std::nullopt;
    if (!value) error(node, what + " must be true or false");
    return value;
  }

  std::optional<std::string> one_of(const Yaml& node, const std::string& what,
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

  std::optional<Duration> duration(const Yaml& node, const std::string& what) {
    auto text = string(node, what);
    if (!text) return std::nullopt;
    auto d = parse_duration(*text);
    if (!d) {
      error(node,
            what + " is not a duration: '" + node.Scalar() + "' (write e.g. 90s, 15m, 1h30m)");
      return std::nullopt;
    }
    if (d->count() <= 0) {
      error(node, what + " must be greater than zero");
      return std::nullopt;
    }
    return d;
  }

  std::optional<std::string> url(const Yaml& node, const std::string& what) {
    auto text = string(node, what);
    if (!text) return std::nullopt;
    if (!parse_url(*text)) {
      error(node, what + " '" + node.Scalar() + "' is not an absolute http:// or https:// URL");
      return std::nullopt;
    }
    return text;
  }

  std::optional<std::string> regex(const Yaml& node, const std::string& what) {
    auto text = string(node, what);
    if (!text) return std::nullopt;
    if (valid_regexes_.contains(*text)) return text;  // generated files repeat patterns
    if (auto err = compile_regex(*text); !err.empty()) {
      error(node, what + " is not a valid regular expression: " + err);
      return std::nullopt;
    }
    valid_regexes_.insert(*text);
    return text;
  }

  // A CSS selector node → {as written, its XPath translation}.
  std::optional<std::pair<std::string, std::string>> css(const Yaml& node,
                                                         const std::string& what) {
    auto text = string(node, what + " css");
    if (!text) return std::nullopt;
    auto t = css_to_xpath(*text);
    if (!t.error.empty()) {
      error(node, what + " css '" + node.Scalar() + "': " + t.error);
      return std::nullopt;
    }
    return std::pair{*text, t.xpath};
  }

  // `namespaces`: prefix → URI for the names of XPath and CSS selectors, in the order written.
  std::optional<std::vector<std::pair<std::string, std::string>>> namespaces(
      const Yaml& node, const std::string& what) {
    if (!node.IsMap()) {
      error(node,
            what + " must be a mapping of prefix: URI, like {atom: http://www.w3.org/2005/Atom}");
      return std::nullopt;
    }
    std::vector<std::pair<std::string, std::string>> out;
    bool ok = true;
    for (const auto& kv : node.entries) {
      auto prefix = string(kv.first, what + " prefix");
      auto uri = string(kv.second, what + " URI of '" + kv.first.Scalar() + "'");
      if (!prefix || !uri) {
        ok = false;
        continue;
      }
      bool name = !prefix->empty() &&
                  (std::isalpha(static_cast<unsigned char>((*prefix)[0])) || (*prefix)[0] == '_');
      for (char c : *prefix)
        name = name &&
               (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
      if (!name || lower(*prefix).starts_with("xml")) {
        error(kv.first,
              what + ": '" + kv.first.Scalar() +
                  "' is not a usable prefix (letters, digits, '_', '-', '.'; not xml...)");
        ok = false;
      } else if (uri->empty()) {
        error(kv.second, what + ": the URI of '" + *prefix + "' is empty");
        ok = false;
      } else if (std::any_of(out.begin(), out.end(), [&](auto& p) { return p.first == *prefix; })) {
        error(kv.first, what + ": duplicate prefix '" + *prefix + "'");
        ok = false;
      } else {
        out.emplace_back(*prefix, *uri);
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // A selector from a `css:` or `xpath:` key of `node`, as {as written, XPath to evaluate};
  // two empty strings when there is neither.
  std::optional<std::pair<std::string, std::string>> selector(const Yaml& node,
                                                              const std::string& what) {
    if (const auto& c = node["css"]; c) return css(c, what);
    if (const auto& x = node["xpath"]; x) {
      auto text = string(x, what + " xpath");
      if (!text) return std::nullopt;
      if (!valid_xpaths_.contains(*text)) {
        if (!xpath_compiles(*text)) {
          error(x, what + " xpath '" + x.Scalar() + "' is not a valid XPath 1.0 expression");
          return std::nullopt;
        }
        valid_xpaths_.insert(*text);
      }
      return std::pair{*text, *text};
    }
    return std::pair{std::string(), std::string()};
  }

  // `tls.ca_file`: "" (the system's CAs), or a readable PEM file of certificates, returned as
  // an absolute path; a relative one is relative to the directory of the file it is written in,
  // like `include`.
  std::optional<std::string> ca_file(const Yaml& node) {
    auto text = string(node, "'tls.ca_file'");
    if (!text || text->empty()) return text;
    auto [resolved, where] = resolve_path(*text);
    auto [known, fresh] = ca_files_.emplace(resolved, "");
    if (fresh) known->second = check_ca_file(resolved);
    if (!known->second.empty()) {
      error(node, "'tls.ca_file' '" + node.Scalar() + "' " + known->second + where);
      return std::nullopt;
    }
    return resolved;
  }

  // A path written in the file being loaded, made absolute: a relative one is relative to that
  // file's directory, like `include`. Also returns, for messages, " (relative to DIR)" when it
  // was relative, else "".
  std::pair<std::string, std::string> resolve_path(const std::string& text) const {
    fs::path path(text);
    std::string where;
    if (path.is_relative()) {
      std::error_code ec;
      fs::path base = fs::path(file_).parent_path();
      base = base.empty() ? fs::current_path(ec) : fs::absolute(base, ec);
      path = base / path;
      where = " (relative to " + base.lexically_normal().string() + ")";
    }
    return {path.lexically_normal().string(), where};
  }

  // `api.token_file`: the token is the file's first line (surrounding blanks dropped), read at
  // each load, so a reload takes a new token.
  std::optional<std::string> token_file(const Yaml& node) {
    auto text = string(node, "'api.token_file'");
    if (!text) return std::nullopt;
    auto [path, where] = resolve_path(*text);
    errno = 0;
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      error(node, "'api.token_file' '" + *text + "' cannot be read" + where + ": " +
                      std::strerror(errno ? errno : ENOENT));
      return std::nullopt;
    }
    std::string token;
    std::getline(in, token);
    auto blank = [](unsigned char c) { return std::isspace(c) != 0; };
    while (!token.empty() && blank(token.back())) token.pop_back();
    token.erase(token.begin(), std::find_if_not(token.begin(), token.end(), blank));
    if (token.empty()) {
      error(node, "'api.token_file' '" + *text + "' holds no token on its first line" + where);
      return std::nullopt;
    }
    return token;
  }

  // "" when this process could open (or create) the database `path` for writing, else why not.
  static std::string storage_problem(const std::string& path) {
    std::error_code ec;
    if (fs::exists(path, ec)) {
      if (fs::is_directory(path, ec)) return "is a directory";
      if (::access(path.c_str(), R_OK | W_OK) != 0)
        return std::string("cannot be opened for writing: ") + std::strerror(errno);
      return "";
    }
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
      return "cannot be created in " + dir.string() + ": " + std::strerror(errno);
    return "";
  }

  // "" when `path` is a readable file with a PEM certificate, else what is wrong with it.
  static std::string check_ca_file(const std::string& path) {
    std::error_code ec;
    auto status = fs::status(path, ec);
    if (!fs::exists(status)) return "does not exist";
    if (fs::is_directory(status)) return "is a directory, not a PEM file";
    if (!fs::is_regular_file(status)) return "is not a regular file";
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::string("cannot be read: ") + std::strerror(errno);
    std::string head(1024 * 1024, '\0');  // certificates begin near the top of a bundle
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    if (in.bad()) return "cannot be read";
    head.resize(static_cast<size_t>(in.gcount()));
    if (head.find("-----BEGIN CERTIFICATE-----") == std::string::npos &&
        head.find("-----BEGIN TRUSTED CERTIFICATE-----") == std::string::npos)
      return "is not a PEM file of certificates (no -----BEGIN CERTIFICATE----- line)";
    return "";
  }

  // Keys shared by `defaults` and jobs.
  void read_common(const Yaml& node, Job& job) {
    if (const auto& m = node["method"]; m) {
      if (auto v = string(m, "'method'")) {
        std::string upper = *v;
        for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        if (std::find(std::begin(kMethods), std::end(kMethods), upper) == std::end(kMethods))
          error(m,
                "'method' must be GET, POST, PUT, PATCH, DELETE or HEAD, not '" + m.Scalar() + "'");
        else
          job.method = upper;
      }
    }
    if (const auto& h = node["headers"]; h && map(h, "'headers'")) {
      job.headers.clear();
      for (const auto& kv : h.entries) {
        auto name = string(kv.first, "a header name");
        auto value = string(kv.second, "header '" + kv.first.Scalar() + "'");
        if (!name || !value) continue;
        if (name->empty() || name->find_first_of(" :\r\n") != std::string::npos)
          error(kv.first, "'" + kv.first.Scalar() + "' is not a valid header name");
        else if (value->find_first_of("\r\n") != std::string::npos)
          error(kv.second, "header '" + *name + "' must be on one line");
        else
          job.headers.emplace_back(*name, *value);
      }
    }
    if (const auto& b = node["body"]; b)
      if (auto v = string(b, "'body'")) job.body = *v;

    const auto& every = node["every"];
    const auto& cron = node["cron"];
    if (every && cron) error(cron, "a job has either 'every' or 'cron', not both");
    if (every) {
      if (auto d = duration(every, "'every'")) {
        job.schedule.every = *d;
        job.schedule.cron.reset();
      }
    } else if (cron) {
      if (auto text = string(cron, "'cron'")) {
        auto parsed = parse_cron(*text);
        if (!parsed.cron)
          error(cron, "'cron': " + parsed.error);
        else {
          job.schedule.cron = parsed.cron;
          job.schedule.every = Duration(0);
        }
      }
    }
    if (const auto& tz = node["timezone"]; tz) {
      if (auto name = string(tz, "'timezone'")) {
        std::string err;
        if (auto known = zones_.find(*name); known != zones_.end())
          job.schedule.timezone = known->second;
        else if (auto zone = TimeZone::load(*name, &err))
          job.schedule.timezone = zones_.emplace(*name, *zone).first->second;
        else
          error(tz, "'timezone': " + err);
      }
    }
    if (const auto& j = node["jitter"]; j) {
      auto text = string(j, "'jitter'");
      if (text && *text == "0")
        job.schedule.jitter = Duration(0);
      else if (auto d = duration(j, "'jitter'"))
        job.schedule.jitter = *d;
    }

    if (const auto& t = node["timeout"]; t) {
      if (t.IsMap()) {
        check_keys(t, kTimeoutKeys, "in 'timeout'");
        if (const auto& c = t["connect"]; c)
          if (auto d = duration(c, "'timeout.connect'")) job.connect_timeout = *d;
        if (const auto& total = t["total"]; total)
          if (auto d = duration(total, "'timeout.total'")) job.timeout = *d;
      } else if (auto d = duration(t, "'timeout'")) {
        job.timeout = *d;
        job.connect_timeout = std::min(job.connect_timeout, *d);
      }
    }
    if (const auto& r = node["retries"]; r && map(r, "'retries'")) {
      check_keys(r, kRetryKeys, "in 'retries'");
      if (const auto& m = r["max"]; m)
        if (auto v = integer(m, "'retries.max'", 0, 20)) job.retries.max = static_cast<int>(*v);
      if (const auto& b = r["backoff"]; b)
        if (auto d = duration(b, "'retries.backoff'")) job.retries.backoff = *d;
      if (const auto& b = r["max_backoff"]; b)
        if (auto d = duration(b, "'retries.max_backoff'")) job.retries.max_backoff = *d;
      if (const auto& m = r["max_stall"]; m)
        if (auto d = duration(m, "'retries.max_stall'")) job.retries.max_stall = *d;
      if (const auto& s = r["on_status"]; s) {
        if (!s.IsSequence()) {
          error(s, "'retries.on_status' must be a list of HTTP statuses, like [429, 503]");
        } else {
          job.retries.on_status.clear();
          for (const auto& code : s.items)
            if (auto v = integer(code, "an HTTP status", 100, 599))
              job.retries.on_status.push_back(static_cast<int>(*v));
        }
      }
    }
    if (const auto& p = node["per_host"]; p && map(p, "'per_host'")) {
      check_keys(p, kPerHostKeys, "in 'per_host'");
      if (const auto& r = p["rate"]; r) {
        if (auto text = string(r, "'per_host.rate'")) {
          if (auto rate = parse_rate(*text))
            job.per_host.rate = *rate;
          else
            error(r, "'per_host.rate' is not a rate: '" + r.Scalar() +
                         "' (write e.g. 2/s, 30/m, 100/h)");
        }
      }
      if (const auto& b = p["burst"]; b)
        if (auto v = integer(b, "'per_host.burst'", 1, 10000))
          job.per_host.burst = static_cast<int>(*v);
      if (const auto& c = p["concurrency"]; c)
        if (auto v = integer(c, "'per_host.concurrency'", 1, 1000))
          job.per_host.concurrency = static_cast<int>(*v);
      if (const auto& d = p["delay"]; d)
        if (auto v = duration(d, "'per_host.delay'")) job.per_host.delay = *v;
    }
    if (const auto& r = node["robots"]; r)
      if (auto v = one_of(r, "'robots'", {"obey", "ignore"})) job.robots = *v == "obey";
    if (const auto& mb = node["max_body"]; mb) {
      if (auto v = string(mb, "'max_body'")) {
        auto size = parse_size(*v);
        if (!size || *size == 0)
          error(mb, "'max_body' is not a size: '" + mb.Scalar() + "' (write e.g. 512KB, 5MB)");
        else
          job.max_body = *size;
      }
    }
    if (const auto& m = node["max_redirects"]; m)
      if (auto v = integer(m, "'max_redirects'", 0, 50)) job.max_redirects = static_cast<int>(*v);
    if (const auto& ua = node["user_agent"]; ua) {
      if (auto v = string(ua, "'user_agent'")) {
        if (v->find_first_of("\r\n") != std::string::npos)
          error(ua, "'user_agent' must be on one line");
        else
          job.user_agent = *v;
      }
    }
    if (const auto& p = node["proxy"]; p) {
      if (auto text = string(p, "'proxy'")) {
        if (text->empty()) {
          job.proxy.clear();
        } else if (auto parsed = parse_proxy(*text); !parsed.error.empty()) {
          error(p, "'proxy' '" + p.Scalar() + "' " + parsed.error);
        } else {
          job.proxy = parsed.url;
        }
      }
    }
    if (const auto& t = node["tls"]; t && map(t, "'tls'")) {
      check_keys(t, kTlsKeys, "in 'tls'");
      if (const auto& c = t["ca_file"]; c)
        if (auto path = ca_file(c)) job.tls.ca_file = *path;
      if (const auto& v = t["verify"]; v)
        if (auto b = boolean(v, "'tls.verify'")) job.tls.verify = *b;
    }
    if (const auto& c = node["cookies"]; c)
      if (auto v = boolean(c, "'cookies'")) job.cookies = *v;
    if (const auto& c = node["conditional"]; c)
      if (auto v = boolean(c, "'conditional'")) job.conditional = *v;
    if (const auto& h = node["http2"]; h)
      if (auto v = boolean(h, "'http2'")) job.http2 = *v;
    if (const auto& f = node["follow"]; f && map(f, "'follow'")) read_follow(f, job);
    if (const auto& n = node["namespaces"]; n)
      if (auto v = namespaces(n, "'namespaces'")) job.namespaces = *v;
    if (const auto& e = node["extract"]; e && map(e, "'extract'")) read_extract(e, job);
    if (const auto& s = node["store"]; s)
      if (auto v = one_of(s, "'store'", {"always", "on_change"}))
        job.store_on_change = *v == "on_change";
    if (const auto& n = node["notify"]; n) read_notify(n, job);
    if (const auto& p = node["paused"]; p)
      if (auto v = boolean(p, "'paused'")) job.paused = *v;
    if (const auto& r = node["render"]; r) read_render(r, job);
  }

  // ---- render: (issue 21) ----
  // The daemon's browser, top-level `render:`.
  void read_render_pool(const Yaml& node, Config& cfg) {
    check_keys(node, kRenderPoolKeys, "in 'render'");
    if (const auto& c = node["concurrency"]; c)
      if (auto v = integer(c, "'render.concurrency'", 1, 256))
        cfg.render.concurrency = static_cast<int>(*v);
    if (const auto& r = node["restart_after"]; r)
      if (auto v = integer(r, "'render.restart_after'", 1, 1'000'000))
        cfg.render.restart_after = static_cast<int>(*v);
    if (const auto& i = node["idle_shutdown"]; i)
      if (auto d = duration(i, "'render.idle_shutdown'")) cfg.render.idle_shutdown = *d;
    if (const auto& e = node["executable"]; e)
      if (auto v = string(e, "'render.executable'")) cfg.render.executable = *v;
    browser_ = cfg.render.executable;
  }

  // A job's (or the defaults') `render:`: http, chromium, or a mapping.
  void read_render(const Yaml& node, Job& job) {
    if (node.IsScalar()) {
      if (auto v = one_of(node, "'render'", {"http", "chromium"}))
        job.render.chromium = *v == "chromium";
      return;
    }
    if (!map(node, "'render' (http, chromium, or a mapping)")) return;
    check_keys(node, kRenderKeys, "in 'render'");
    job.render.chromium = true;
    if (const auto& b = node["browser"]; b)
      if (auto v = one_of(b, "'render.browser'", {"chromium"})) job.render.chromium = true;
    if (const auto& w = node["wait_for"]; w) {
      if (auto v = string(w, "'render.wait_for'")) {
        if (v->empty() || v->find_first_of("\r\n") != std::string::npos)
          error(w, "'render.wait_for' must be load, network_idle or a CSS selector on one line");
        else
          job.render.wait_for = *v;
      }
    }
    if (const auto& t = node["timeout"]; t)
      if (auto d = duration(t, "'render.timeout'")) job.render.timeout = *d;
    if (const auto& b = node["block"]; b) {
      job.render.block.clear();
      std::vector<Yaml> items;
      if (b.IsSequence())
        items = b.items;
      else
        items.push_back(b);
      for (const auto& item : items)
        if (auto v = one_of(item, "'render.block'", {"image", "font", "media", "stylesheet"}))
          if (std::find(job.render.block.begin(), job.render.block.end(), *v) ==
              job.render.block.end())
            job.render.block.push_back(*v);
    }
    if (const auto& v = node["viewport"]; v) {
      if (auto text = string(v, "'render.viewport'")) {
        auto x = text->find('x');
        auto w = x == std::string::npos ? std::nullopt : to_integer(text->substr(0, x));
        auto h = x == std::string::npos ? std::nullopt : to_integer(text->substr(x + 1));
        if (!w || !h || *w < 100 || *w > 10000 || *h < 100 || *h > 10000)
          error(v, "'render.viewport' must be WIDTHxHEIGHT like 1280x800 (100 to 10000 each)");
        else
          job.render.width = static_cast<int>(*w), job.render.height = static_cast<int>(*h);
      }
    }
    if (const auto& ua = node["user_agent"]; ua) {
      if (auto v = string(ua, "'render.user_agent'")) {
        if (v->find_first_of("\r\n") != std::string::npos)
          error(ua, "'render.user_agent' must be on one line");
        else
          job.render.user_agent = *v;
      }
    }
    if (const auto& j = node["javascript"]; j)
      if (auto v = boolean(j, "'render.javascript'")) job.render.javascript = *v;
    if (const auto& s = node["screenshot"]; s)
      if (auto v = boolean(s, "'render.screenshot'")) job.render.screenshot = *v;
  }

  // What a render job asks for that the browser cannot do, and a missing browser.
  void check_render(const Yaml& node, Job& job) {
    if (!job.render.chromium) return;
    const Yaml& at = node["render"] ? node["render"] : node;
    auto scheme_end = job.proxy.find("://");
    if (!job.proxy.empty() && job.proxy.find('@', scheme_end) != std::string::npos)
      error(node["proxy"] ? node["proxy"] : at,
            "'proxy' with a user name or password cannot be given to Chromium (render: "
            "chromium): use a proxy without credentials, or render: http");
    if (!job.tls.verify)
      error(node["tls"] ? node["tls"] : at,
            "'tls.verify: false' cannot be applied to one job in Chromium (render: chromium): "
            "use render: http for this host");
    if (!job.tls.ca_file.empty())
      error(node["tls"] ? node["tls"] : at,
            "'tls.ca_file' cannot be applied to one job in Chromium (render: chromium): add "
            "the CA to the system's trust store, or use render: http");
    if (::access(browser_.c_str(), X_OK) != 0)
      error(at, "job '" + job.name + "' has render: chromium but '" + browser_ +
                    "' is not installed (apt-get install chromium, or set render.executable)");
  }
  std::string browser_ = RenderPool{}.executable;
  // ---- end of render: ----

  void read_follow(const Yaml& node, Job& job) {
    check_keys(node, kFollowKeys, "in 'follow'");
    Follow follow;
    if (node["css"] && node["xpath"])
      error(node["xpath"], "'follow' takes 'css' or 'xpath', not both");
    auto sel = selector(node, "'follow'");
    if (!sel) return;
    if (sel->first.empty()) {
      follow.selector = "a[href]";
      follow.xpath = css_to_xpath(follow.selector).xpath;
    } else {
      std::tie(follow.selector, follow.xpath) = *sel;
    }
    if (const auto& s = node["same_host"]; s)
      if (auto v = boolean(s, "'follow.same_host'")) follow.same_host = *v;
    if (const auto& d = node["max_depth"]; d)
      if (auto v = integer(d, "'follow.max_depth'", 0, 100))
        follow.max_depth = static_cast<int>(*v);
    if (const auto& p = node["max_pages"]; p)
      if (auto v = integer(p, "'follow.max_pages'", 1, 1'000'000))
        follow.max_pages = static_cast<int>(*v);
    for (auto [key, list] : {std::pair{"allow", &follow.allow}, std::pair{"deny", &follow.deny}}) {
      const auto& n = node[key];
      if (!n) continue;
      std::vector<Yaml> items;
      if (n.IsSequence())
        for (const auto& i : n.items) items.push_back(i);
      else
        items.push_back(n);
      for (const auto& i : items)
        if (auto re = regex(i, "'follow." + std::string(key) + "' pattern")) list->push_back(*re);
    }
    job.follow = std::move(follow);
  }

  void read_extract(const Yaml& node, Job& job) {
    job.extract.clear();
    for (const auto& kv : node.entries) {
      Field field;
      field.name = kv.first.Scalar();
      std::string what = "field '" + field.name + "'";
      const Yaml& spec = kv.second;
      if (spec.IsScalar()) {  // shorthand: a CSS selector
        auto sel = css(spec, what);
        if (!sel) continue;
        std::tie(field.css, field.xpath) = *sel;
        job.extract.push_back(std::move(field));
        continue;
      }
      if (!map(spec, what)) continue;
      check_keys(spec, kFieldKeys, "in " + what);
      int sources = (spec["css"] ? 1 : 0) + (spec["xpath"] ? 1 : 0) + (spec["json"] ? 1 : 0);
      if (sources > 1) {
        error(spec, what + " takes one of 'css', 'xpath' and 'json'");
        continue;
      }
      if (sources == 0 && !spec["regex"]) {
        error(spec, what + " needs 'css', 'xpath', 'json' or 'regex'");
        continue;
      }
      auto sel = selector(spec, what);
      if (!sel) continue;
      if (!sel->first.empty()) {
        if (spec["css"]) field.css = sel->first;
        field.xpath = sel->second;
      }
      if (const auto& j = spec["json"]; j) {
        auto ptr = string(j, what + " json");
        if (!ptr) continue;
        bool valid = ptr->empty() || (*ptr)[0] == '/';
        for (size_t i = 0; valid && i < ptr->size(); ++i)
          if ((*ptr)[i] == '~')
            valid = i + 1 < ptr->size() && ((*ptr)[i + 1] == '0' || (*ptr)[i + 1] == '1');
        if (!valid) {
          error(j, what + " json '" + j.Scalar() + "' is not a JSON Pointer (like /items/0/price)");
          continue;
        }
        field.json = *ptr;
      }
      if (const auto& r = spec["regex"]; r) {
        auto re = regex(r, what + " regex");
        if (!re) continue;
        field.regex = *re;
      }
      if (const auto& a = spec["attr"]; a) {
        if (field.xpath.empty())
          error(a, what + ": 'attr' needs a 'css' or 'xpath' selector");
        else if (auto v = string(a, what + " attr"))
          field.attr = *v;
      }
      if (const auto& a = spec["all"]; a)
        if (auto v = boolean(a, what + " all")) field.all = *v;
      if (const auto& n = spec["namespaces"]; n)
        if (auto v = namespaces(n, what + " namespaces")) field.namespaces = *v;
      if (const auto& q = spec["required"]; q)
        if (auto v = boolean(q, what + " required")) field.required = *v;
      if (const auto& t = spec["type"]; t) {
        if (auto v = one_of(t, what + " type", {"string", "int", "number", "bool"})) {
          field.type = *v == "int"      ? Field::Type::kInt
                       : *v == "number" ? Field::Type::kNumber
                       : *v == "bool"   ? Field::Type::kBool
                                        : Field::Type::kString;
        }
      }
      job.extract.push_back(std::move(field));
    }
  }

  void read_notify(const Yaml& node, Job& job) {
    Notify notify;
    if (node.IsScalar()) {
      auto u = url(node, "'notify'");
      if (!u) return;
      notify.webhook = *u;
    } else if (map(node, "'notify'")) {
      check_keys(node, kNotifyKeys, "in 'notify'");
      if (const auto& w = node["webhook"]; w) {
        auto u = url(w, "'notify.webhook'");
        if (!u) return;
        notify.webhook = *u;
      } else {
        return error(node, "'notify' needs a 'webhook' URL");
      }
      if (const auto& c = node["on_change"]; c)
        if (auto v = boolean(c, "'notify.on_change'")) notify.on_change = *v;
      if (const auto& s = node["failing_streak"]; s)
        if (auto v = integer(s, "'notify.failing_streak'", 1, 1000))
          notify.failing_streak = static_cast<int>(*v);
    } else {
      return;
    }
    job.notify = std::move(notify);
  }

  // Each field takes the job's namespaces for the prefixes it does not set itself; a prefix a
  // selector uses must be declared (`xml` always is).
  void resolve_namespaces(const Yaml& node, Job& job) {
    for (auto& field : job.extract) {
      for (const auto& ns : job.namespaces)
        if (std::none_of(field.namespaces.begin(), field.namespaces.end(),
                         [&](auto& p) { return p.first == ns.first; }))
          field.namespaces.push_back(ns);
      for (const auto& prefix : xpath_prefixes(field.xpath)) {
        if (prefix == "xml" || std::any_of(field.namespaces.begin(), field.namespaces.end(),
                                           [&](auto& p) { return p.first == prefix; }))
          continue;
        const Yaml& spec = node["extract"][field.name];
        const Yaml& at = spec && spec.IsMap() ? (spec["css"] ? spec["css"] : spec["xpath"])
                         : spec               ? spec
                                              : node;
        error(at, "field '" + field.name + "' uses the namespace prefix '" + prefix +
                      "', which 'namespaces' does not declare");
      }
    }
  }

  bool read_job(const Yaml& node, Job& job) {
    size_t errors_before = errors_.size();
    job_.clear();
    if (!map(node, "a job")) return false;
    if (const auto& n = node["name"]; n) {
      if (auto v = string(n, "'name'")) {
        if (v->empty() || v->size() > 200 || v->find_first_of("\r\n\t") != std::string::npos)
          error(n, "a job's 'name' must be a single line of 1 to 200 characters");
        job.name = *v;
        job_ = *v;
      }
    } else {
      error(node, "a job needs a 'name'");
    }
    check_keys(node, kJobKeys, "in a job");
    read_common(node, job);
    check_render(node, job);
    resolve_namespaces(node, job);

    const auto& u = node["url"];
    const auto& us = node["urls"];
    job.urls.clear();
    if (u && us) error(us, "a job has either 'url' or 'urls', not both");
    std::vector<Yaml> items;
    if (u) items.push_back(u);
    if (us) {
      if (!us.IsSequence() || us.size() == 0)
        error(us, "'urls' must be a non-empty list of URLs");
      else
        for (const auto& i : us.items) items.push_back(i);
    }
    for (const auto& item : items) {
      auto text = string(item, "a URL");
      if (!text) continue;
      std::vector<std::string> expanded;
      if (auto err = expand_ranges(*text, expanded, kMaxUrlsPerJob - job.urls.size());
          !err.empty()) {
        error(item, "'" + item.Scalar() + "': " + err);
        continue;
      }
      bool ok = true;
      for (const auto& e : expanded)
        if (!parse_url(e)) ok = false;
      if (!ok)
        error(item, "'" + item.Scalar() + "' is not an absolute http:// or https:// URL");
      else
        job.urls.insert(job.urls.end(), expanded.begin(), expanded.end());
    }
    if (!u && !us) error(node, "a job needs a 'url' or 'urls'");

    const auto& s = job.schedule;
    if (s.every.count() == 0 && !s.cron && !node["every"] && !node["cron"])
      error(
          node,
          "a job needs a schedule: 'every' (e.g. every: 15m) or 'cron' (e.g. cron: \"0 3 * * *\")");
    if (s.every.count() > 0 && s.timezone.name() != "UTC" && node["timezone"])
      error(node["timezone"], "'timezone' applies to 'cron' schedules, not 'every'");
    if (job.connect_timeout > job.timeout)
      error(node["timeout"] ? node["timeout"] : node,
            "the connect timeout is longer than the total timeout");
    if (job.retries.max_backoff < job.retries.backoff)
      error(node["retries"] ? node["retries"] : node,
            "'retries.max_backoff' is shorter than 'retries.backoff'");
    if (!job.body.empty() && (job.method == "GET" || job.method == "HEAD"))
      error(node["body"] ? node["body"] : node,
            "a 'body' needs a method that sends one (POST, PUT, PATCH)");
    job_.clear();
    return errors_.size() == errors_before;
  }

  std::vector<Diagnostic>& errors_;
  std::vector<Diagnostic>& warnings_;
  bool env_required_;   // LoadOptions::env_required
  bool probe_storage_;  // LoadOptions::probe_storage
  std::string file_;
  std::string job_;  // the job being read, for messages
  Job defaults_;
  std::map<std::string, std::string> names_;  // job name → where it was first defined
  std::vector<std::pair<std::string, std::string>> cfg_secrets_;  // ${VAR} values, names
  std::vector<std::string> include_stack_;
  std::set<std::string, std::less<>> valid_regexes_, valid_xpaths_;  // checked already
  std::map<std::string, TimeZone> zones_;         // read already: jobs in one zone share its data
  std::map<std::string, std::string> ca_files_;   // checked already: path → what is wrong, or ""
  std::optional<Diagnostic> defaults_verify_;     // where `defaults` sets tls.verify: false
  std::vector<std::string> insecure_by_default_;  // jobs that take tls.verify: false from it
};

LoadResult load_text(const std::string& text, const std::string& name, const LoadOptions& options) {
  LoadResult result;
  auto cfg = std::make_shared<Config>();
  cfg->source = name;
  try {
    Loader loader(result.errors, result.warnings, options);
    loader.load_main(text, name, *cfg);
    cfg->secrets = loader.secrets();
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws on some malformed trees (e.g. a key that is itself a mapping).
    result.errors.push_back({name, e.mark.line + 1, e.mark.column + 1, e.msg});
  }
  // Top to bottom within each file; files in the order they were first reported.
  for (auto* list : {&result.errors, &result.warnings}) {
    std::vector<std::string> files;
    for (const auto& e : *list)
      if (std::find(files.begin(), files.end(), e.file) == files.end()) files.push_back(e.file);
    auto rank = [&](const Diagnostic& d) {
      return std::tuple(std::find(files.begin(), files.end(), d.file) - files.begin(), d.line,
                        d.column);
    };
    std::stable_sort(list->begin(), list->end(),
                     [&](const Diagnostic& a, const Diagnostic& b) { return rank(a) < rank(b); });
  }
  if (result.errors.empty()) result.config = std::move(cfg);
  return result;
}

constexpr KeyTable kKeyTables[] = {
    {"top", kTopKeys},          {"included", kIncludedKeys},
    {"defaults", kDefaultKeys}, {"job", kJobKeys},
    {"storage", kStorageKeys},  {"api", kApiKeys},
    {"log", kLogKeys},          {"timeout", kTimeoutKeys},
    {"retries", kRetryKeys},    {"per_host", kPerHostKeys},
    {"follow", kFollowKeys},    {"field", kFieldKeys},
    {"notify", kNotifyKeys},    {"tls", kTlsKeys},
    {"render", kRenderKeys},    {"render_pool", kRenderPoolKeys},
};

}  // namespace

std::span<const KeyTable> key_tables() {
  return kKeyTables;
}

std::span<const std::string_view> http_methods() {
  return kMethods;
}

LoadResult load_file(const std::string& path, const LoadOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec))
    return {nullptr, {{path, 0, 0, "is a directory, not a job file"}}, {}};
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return {nullptr, {{path, 0, 0, std::string("cannot open: ") + std::strerror(errno)}}, {}};
  std::ostringstream text;
  text << in.rdbuf();
  return load_text(text.str(), path, options);
}

LoadResult load_string(std::string_view yaml, const std::string& name, const LoadOptions& options) {
  return load_text(std::string(yaml), name, options);
}

std::string Config::redact(std::string text) const {
  return config::redact(std::move(text), secrets);
}

std::string redact(std::string text,
                   const std::vector<std::pair<std::string, std::string>>& secrets) {
  for (const auto& [value, name] : secrets) {
    for (auto at = text.find(value); at != std::string::npos;
         at = text.find(value, at + name.size()))
      text.replace(at, value.size(), name);
  }
  return text;
}

bool same_job(const Job& a, const Job& b) {
  Job moved = a;
  moved.file = b.file;
  moved.line = b.line;
  return moved == b;
}

}  // namespace scraperd::config
