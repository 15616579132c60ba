// Loading a job file: the top-level sections (defaults, storage, api, log, concurrency,
// shutdown_timeout), the jobs lists and `include`, the files a job file names (included files,
// tls.ca_file, api.token_file, storage.path), and the public entry points load_file /
// load_string / key_tables / http_methods.
#include <glob.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include "config/loader.h"

namespace scraperd::config {

namespace fs = std::filesystem;

namespace detail {

void Loader::load_main(const std::string& text, const std::string& file, Config& cfg) {
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
    if (const auto& u = s["url"]; u) read_storage_url(u, s["path"], cfg.storage);
    if (const auto& k = s["keep"]; k)
      if (auto d = duration(k, "'storage.keep'")) cfg.storage.keep = *d;
  }
  if (const auto& c = root["cluster"]; c && map(c, "'cluster'")) {
    check_keys(c, kClusterKeys, "in 'cluster'");
    if (const auto& l = c["lease"]; l)
      if (auto d = duration(l, "'cluster.lease'")) cfg.cluster.lease = *d;
    if (const auto& h = c["heartbeat"]; h)
      if (auto d = duration(h, "'cluster.heartbeat'")) cfg.cluster.heartbeat = *d;
    if (cfg.storage.url.empty())
      error(c, "'cluster' needs storage.url (PostgreSQL): on SQLite one daemon runs alone");
    else if (cfg.cluster.heartbeat * 2 >= cfg.cluster.lease)
      error(c["heartbeat"] ? c["heartbeat"] : c,
            "'cluster.heartbeat' (" + format_duration(cfg.cluster.heartbeat.count() / 1000.0) +
                ") must be less than half of 'cluster.lease' (" +
                format_duration(cfg.cluster.lease.count() / 1000.0) + ")");
  }
  if (const auto& a = root["api"]; a && map(a, "'api'")) {
    check_keys(a, kApiKeys, "in 'api'");
    if (const auto& l = a["listen"]; l) {
      if (auto v = string(l, "'api.listen'")) {
        auto colon = v->rfind(':');
        int port = colon == std::string::npos ? -1 : std::atoi(v->c_str() + colon + 1);
        if (!v->empty() && (colon == std::string::npos || colon == 0 || port < 0 || port > 65535 ||
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

std::string Loader::canonical(const std::string& path) {
  std::error_code ec;
  auto c = fs::weakly_canonical(path, ec);
  return ec ? path : c.string();
}

void Loader::read_jobs_and_includes(const Yaml& root, const std::string& file, Config& cfg,
                                    bool main) {
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
        if (auto [it, fresh] = names_.emplace(job.name, job.file + ":" + std::to_string(job.line));
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

void Loader::include(const Yaml& at, const std::string& pattern, const std::string& from,
                     Config& cfg) {
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

// `tls.ca_file`: "" (the system's CAs), or a readable PEM file of certificates, returned as
// an absolute path; a relative one is relative to the directory of the file it is written in,
// like `include`.
std::optional<std::string> Loader::ca_file(const Yaml& node) {
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
std::pair<std::string, std::string> Loader::resolve_path(const std::string& text) const {
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
std::optional<std::string> Loader::token_file(const Yaml& node) {
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

// storage.url: a PostgreSQL connection URL, exclusive with storage.path, with no password
// written in the job file (it comes from libpq's password file, or a ${VAR}).
void Loader::read_storage_url(const Yaml& u, const Yaml& path, Storage& storage) {
  if (path) {
    error(u, "'storage.url' and 'storage.path' are exclusive: PostgreSQL or a SQLite file");
    return;
  }
  bool saved = std::exchange(env_required_, true);  // an unset variable: another database
  auto v = string(u, "'storage.url'");
  env_required_ = saved;
  if (!v) return;
  if (v->rfind("postgresql://", 0) != 0 && v->rfind("postgres://", 0) != 0) {
    error(u, "'storage.url' must be a PostgreSQL URL (postgresql://user@host/database), not '" +
                 u.Scalar() + "'");
    return;
  }
  // A password written as such (not from a ${VAR}): user:password@ or password= .
  const std::string& raw = u.Scalar();
  auto rest = raw.find("://") + 3;
  auto at = raw.find('@', rest);
  auto slash = raw.find('/', rest);
  bool in_userinfo = at != std::string::npos && (slash == std::string::npos || at < slash) &&
                     raw.find(':', rest) < at && raw.find("${", rest) > at;
  auto query = raw.find('?');
  bool in_query = false;
  for (auto p = raw.find("password=", query == std::string::npos ? raw.size() : query);
       p != std::string::npos; p = raw.find("password=", p + 1))
    if ((raw[p - 1] == '?' || raw[p - 1] == '&') && raw.compare(p + 9, 2, "${") != 0)
      in_query = true;
  if (in_userinfo || in_query) {
    error(u,
          "'storage.url' must not hold a password: give it in a password file (PGPASSFILE, "
          "or passfile= in the URL; systemd: LoadCredential=) or through ${VARIABLE}");
    return;
  }
  storage.url = *v;
}

// "" when this process could open (or create) the database `path` for writing, else why not.
std::string Loader::storage_problem(const std::string& path) {
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
std::string Loader::check_ca_file(const std::string& path) {
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

}  // namespace detail

namespace {

using namespace detail;

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
    {"cluster", kClusterKeys},
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

}  // namespace scraperd::config
