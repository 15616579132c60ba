// The `render:` keys (issue 21): a job's (or the defaults') render: http | chromium | {...},
// the daemon's browser pool (top-level render:), and what `check` refuses for render jobs.
#include <unistd.h>

#include <algorithm>

#include "config/duration.h"
#include "config/loader.h"

namespace scraperd::config::detail {
// The daemon's browser, top-level `render:`.
void Loader::read_render_pool(const Yaml& node, Config& cfg) {
  check_keys(node, kRenderPoolKeys, "in 'render'");
  if (const auto& c = node["concurrency"]; c)
    if (auto v = integer(c, "'render.concurrency'", 1, 256))
      cfg.render.concurrency = static_cast<int>(*v);
  if (const auto& r = node["restart_after"]; r)
    if (auto v = integer(r, "'render.restart_after'", 1, 1'000'000))
      cfg.render.restart_after = static_cast<int>(*v);
  if (const auto& m = node["restart_memory"]; m) {
    if (auto v = string(m, "'render.restart_memory'")) {
      auto size = parse_size(*v);
      if (!size || *size < 64 * 1024 * 1024)
        error(m, "'render.restart_memory' must be a size of at least 64MB (e.g. 2GB): '" +
                     m.Scalar() + "'");
      else
        cfg.render.restart_memory = *size;
    }
  }
  if (const auto& i = node["idle_shutdown"]; i)
    if (auto d = duration(i, "'render.idle_shutdown'")) cfg.render.idle_shutdown = *d;
  if (const auto& e = node["executable"]; e)
    if (auto v = string(e, "'render.executable'")) cfg.render.executable = *v;
  browser_ = cfg.render.executable;
}

// A job's (or the defaults') `render:`: http, chromium, or a mapping.
void Loader::read_render(const Yaml& node, Job& job) {
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
void Loader::check_render(const Yaml& node, Job& job) {
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

}  // namespace scraperd::config::detail
