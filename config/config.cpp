#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <span>
#include <sstream>

#include "config/duration.h"
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

constexpr std::string_view kTopKeys[] = {"defaults", "jobs", "storage", "concurrency"};
constexpr std::string_view kDefaultKeys[] = {"timeout", "user_agent", "max_body"};
constexpr std::string_view kJobKeys[] = {"name",    "url",        "urls",    "every",
                                         "timeout", "user_agent", "max_body"};
constexpr std::string_view kStorageKeys[] = {"path"};

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// Builds a Config from a parsed document, collecting every error on the way.
class Loader {
 public:
  Loader(std::string file, std::vector<Diagnostic>& errors)
      : file_(std::move(file)), errors_(errors) {}

  void load(const YAML::Node& root, Config& cfg) {
    if (!root.IsDefined() || root.IsNull()) {
      errors_.push_back({file_, 0, 0, "the file is empty: it needs a 'jobs' list"});
      return;
    }
    if (!root.IsMap()) {
      error(root, "the top level must be a mapping with a 'jobs' list");
      return;
    }
    check_keys(root, kTopKeys, "at the top level");

    Job defaults;
    defaults.timeout = std::chrono::seconds(30);
    defaults.user_agent = "scraperd/0.1 (+https://github.com/scraperd/scraperd)";
    defaults.max_body = 10 * 1024 * 1024;
    if (auto d = root["defaults"]; d) {
      if (map(d, "'defaults'")) {
        check_keys(d, kDefaultKeys, "in 'defaults'");
        read_common(d, defaults, "in 'defaults'");
      }
    }
    if (auto s = root["storage"]; s) {
      if (map(s, "'storage'")) {
        check_keys(s, kStorageKeys, "in 'storage'");
        if (auto p = s["path"]; p) {
          if (auto v = string(p, "'storage.path'", "")) {
            if (v->empty())
              error(p, "'storage.path' must not be empty");
            else
              cfg.storage.path = *v;
          }
        }
      }
    }
    if (auto c = root["concurrency"]; c) {
      if (auto v = integer(c, "'concurrency'", "")) {
        if (*v < 1 || *v > 10000)
          error(c, "'concurrency' must be between 1 and 10000");
        else
          cfg.concurrency = static_cast<int>(*v);
      }
    }

    auto jobs = root["jobs"];
    if (!jobs) {
      error(root, "missing 'jobs': a list of jobs to run");
      return;
    }
    if (!jobs.IsSequence()) {
      error(jobs, "'jobs' must be a list (each item starting with '- ')");
      return;
    }
    std::set<std::string> names;
    for (const auto& node : jobs) {
      Job job = defaults;
      if (read_job(node, job)) {
        if (!names.insert(job.name).second)
          error(node["name"], "duplicate job name '" + job.name + "'");
        else
          cfg.jobs.push_back(std::move(job));
      }
    }
  }

 private:
  void error(const YAML::Node& node, std::string message, const std::string& job = "") {
    auto mark = node.Mark();
    if (!job.empty()) message += " (in job '" + job + "')";
    errors_.push_back({file_, mark.line + 1, mark.column + 1, std::move(message)});
  }

  bool map(const YAML::Node& node, const std::string& what, const std::string& job = "") {
    if (node.IsMap()) return true;
    error(node, what + " must be a mapping of key: value", job);
    return false;
  }

  // Unknown keys get a did-you-mean; keys written twice are errors (yaml-cpp keeps both).
  void check_keys(const YAML::Node& node, std::span<const std::string_view> allowed,
                  const std::string& where, const std::string& job = "") {
    std::set<std::string> seen;
    for (const auto& kv : node) {
      std::string key = kv.first.Scalar();
      if (!seen.insert(key).second) {
        error(kv.first, "duplicate key '" + key + "' " + where, job);
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
      std::string message = "unknown key '" + key + "' " + where;
      std::string_view best;
      size_t best_distance = 3;
      for (auto candidate : allowed) {
        size_t d = edit_distance(key, candidate);
        if (d < best_distance) best = candidate, best_distance = d;
      }
      if (!best.empty()) message += " (did you mean '" + std::string(best) + "'?)";
      error(kv.first, message, job);
    }
  }

  std::optional<std::string> string(const YAML::Node& node, const std::string& what,
                                    const std::string& job) {
    if (!node.IsScalar()) {
      error(node, what + " must be a string", job);
      return std::nullopt;
    }
    return node.Scalar();
  }

  std::optional<long long> integer(const YAML::Node& node, const std::string& what,
                                   const std::string& job) {
    long long value = 0;
    if (!node.IsScalar() || !YAML::convert<long long>::decode(node, value)) {
      error(node, what + " must be a whole number", job);
      return std::nullopt;
    }
    return value;
  }

  std::optional<std::chrono::milliseconds> duration(const YAML::Node& node, const std::string& what,
                                                    const std::string& job) {
    auto text = string(node, what, job);
    if (!text) return std::nullopt;
    auto d = parse_duration(*text);
    if (!d) {
      error(node, what + " is not a duration: '" + *text + "' (write e.g. 90s, 15m, 1h30m)", job);
      return std::nullopt;
    }
    if (d->count() <= 0) {
      error(node, what + " must be greater than zero", job);
      return std::nullopt;
    }
    return d;
  }

  // Keys shared by 'defaults' and jobs; `where` is "in 'defaults'" or empty for a job.
  void read_common(const YAML::Node& node, Job& job, const std::string& where) {
    const std::string& name = job.name;
    auto what = [&](const char* key) {
      return where.empty() ? std::string(key) : std::string(key) + " " + where;
    };
    if (auto t = node["timeout"]; t) {
      if (auto d = duration(t, what("'timeout'"), name)) job.timeout = *d;
    }
    if (auto ua = node["user_agent"]; ua) {
      if (auto v = string(ua, what("'user_agent'"), name)) job.user_agent = *v;
    }
    if (auto mb = node["max_body"]; mb) {
      if (auto v = string(mb, what("'max_body'"), name)) {
        auto size = parse_size(*v);
        if (!size || *size == 0)
          error(mb, "'max_body' is not a size: '" + *v + "' (write e.g. 512KB, 5MB)", name);
        else
          job.max_body = *size;
      }
    }
  }

  void read_url(const YAML::Node& node, Job& job) {
    auto text = string(node, "a URL", job.name);
    if (!text) return;
    if (!parse_url(*text)) {
      error(node, "'" + *text + "' is not an absolute http:// or https:// URL", job.name);
      return;
    }
    job.urls.push_back(*text);
  }

  bool read_job(const YAML::Node& node, Job& job) {
    size_t errors_before = errors_.size();
    if (!map(node, "a job")) return false;
    if (auto n = node["name"]; n) {
      if (auto v = string(n, "'name'", "")) {
        if (v->empty()) error(n, "a job's 'name' must not be empty");
        job.name = *v;
      }
    } else {
      error(node, "a job needs a 'name'");
    }
    check_keys(node, kJobKeys, "in a job", job.name);
    read_common(node, job, "");

    auto url = node["url"];
    auto urls = node["urls"];
    if (url && urls) error(urls, "a job has either 'url' or 'urls', not both", job.name);
    if (url) read_url(url, job);
    if (urls) {
      if (!urls.IsSequence() || urls.size() == 0)
        error(urls, "'urls' must be a non-empty list of URLs", job.name);
      else
        for (const auto& u : urls) read_url(u, job);
    }
    if (!url && !urls) error(node, "a job needs a 'url' or 'urls'", job.name);

    if (auto e = node["every"]; e) {
      if (auto d = duration(e, "'every'", job.name)) job.every = *d;
    } else {
      error(node, "a job needs a schedule: 'every' (e.g. every: 15m)", job.name);
    }
    return errors_.size() == errors_before;
  }

  std::string file_;
  std::vector<Diagnostic>& errors_;
};

LoadResult load_document(const std::string& text, const std::string& name) {
  LoadResult result;
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    result.errors.push_back({name, e.mark.line + 1, e.mark.column + 1, e.msg});
    return result;
  } catch (const YAML::Exception& e) {
    result.errors.push_back({name, 0, 0, e.what()});
    return result;
  }
  auto cfg = std::make_shared<Config>();
  cfg->source = name;
  try {
    Loader(name, result.errors).load(root, *cfg);
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws on some malformed trees (e.g. a key that is itself a mapping).
    result.errors.push_back({name, e.mark.line + 1, e.mark.column + 1, e.msg});
  }
  if (result.errors.empty()) result.config = std::move(cfg);
  return result;
}

}  // namespace

LoadResult load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.errors.push_back({path, 0, 0, "cannot open the file"});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_document(text.str(), path);
}

LoadResult load_string(std::string_view yaml, const std::string& name) {
  return load_document(std::string(yaml), name);
}

}  // namespace scraperd::config
