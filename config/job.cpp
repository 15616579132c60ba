// A job and `defaults`: the keys they share (method, headers, schedule, timeouts, retries,
// per_host, robots, proxy, tls ...), `notify`, the URL list with its {1..N} ranges, and the
// warnings about jobs that do not check certificates or cannot finish within their interval.
#include <uriparser/Uri.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>

#include "config/duration.h"
#include "config/loader.h"
#include "config/url.h"

namespace scraperd::config::detail {

namespace {

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

}  // namespace

// A job loaded with tls.verify false: a warning where the job says so, or, when it comes from
// `defaults`, one warning there for all the jobs concerned (warn_insecure_defaults).
void Loader::warn_insecure(const Yaml& node, const Job& job) {
  if (job.tls.verify) return;
  if (const auto& t = node["tls"]; t.IsMap() && t["verify"])
    warn(t["verify"], "tls.verify is false: certificates and host names are not checked (in job '" +
                          job.name + "')");
  else
    insecure_by_default_.push_back(job.name);
}

// A job whose URLs on one host take longer at that host's rate than its interval: runs
// overlap their next due time, which is then skipped. Seeds only: followed links add more.
void Loader::warn_slow(const Yaml& node, const Job& job) {
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

std::string Loader::format_duration(double seconds) {
  char buf[64];
  if (seconds < 120)
    std::snprintf(buf, sizeof buf, "%.0fs", std::ceil(seconds));
  else if (seconds < 7200)
    std::snprintf(buf, sizeof buf, "%.0fm", std::ceil(seconds / 60));
  else
    std::snprintf(buf, sizeof buf, "%.1fh", seconds / 3600);
  return buf;
}

std::string Loader::fmt_rate(double rate) {
  char buf[64];
  if (rate >= 1)
    std::snprintf(buf, sizeof buf, "%g/s", rate);
  else if (rate * 60 >= 1)
    std::snprintf(buf, sizeof buf, "%g/m", rate * 60);
  else
    std::snprintf(buf, sizeof buf, "%g/h", rate * 3600);
  return buf;
}

void Loader::warn_insecure_defaults() {
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

// Keys shared by `defaults` and jobs.
void Loader::read_common(const Yaml& node, Job& job) {
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

void Loader::read_notify(const Yaml& node, Job& job) {
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

bool Loader::read_job(const Yaml& node, Job& job) {
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
    if (auto err = expand_ranges(*text, expanded, kMaxUrlsPerJob - job.urls.size()); !err.empty()) {
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
    error(node,
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

}  // namespace scraperd::config::detail
