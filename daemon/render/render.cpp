#include "daemon/render/render.h"

#include <dirent.h>
#include <unistd.h>
#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "config/url.h"
#include "daemon/render/browser.h"
#include "daemon/render/pace.h"

namespace scraperd::daemon::render {

using namespace std::chrono_literals;

asio::execution_context::id Renderer::id;

namespace {

// Bytes resident in the processes of process group `group` (a browser and its renderers),
// read from /proc/*/stat. Shared pages count once per process, so this overstates what the
// machine spends; it is what grows when a long-lived browser leaks. About 1 ms for a few
// hundred processes, so it is read at most every few seconds (see kMemoryCheckEvery).
std::uint64_t group_rss(pid_t group) {
  static const long page = ::sysconf(_SC_PAGESIZE);
  std::uint64_t total = 0;
  DIR* proc = ::opendir("/proc");
  if (!proc) return 0;
  while (dirent* e = ::readdir(proc)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    char path[300], buf[512];
    std::snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
    FILE* f = std::fopen(path, "r");
    if (!f) continue;
    std::size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    buf[n] = 0;
    // pid (comm) state ppid pgrp ...: after the last ')', fields 3 on; rss is field 24.
    const char* p = std::strrchr(buf, ')');
    if (!p) continue;
    char state = 0;
    long long ppid = 0, pgrp = 0, rss = 0;
    if (std::sscanf(p + 1, " %c %lld %lld", &state, &ppid, &pgrp) != 3 || pgrp != group) continue;
    // Fields 6..23 (18 of them), then rss.
    const char* q = p + 1;
    for (int field = 3; field < 24 && q; ++field) q = std::strchr(q + 1, ' ');
    if (q && std::sscanf(q, " %lld", &rss) == 1 && rss > 0)
      total += static_cast<std::uint64_t>(rss) * static_cast<std::uint64_t>(page);
  }
  ::closedir(proc);
  return total;
}

constexpr auto kMemoryCheckEvery = std::chrono::seconds(2);

const std::string kBrowser;  // the session of calls to the browser itself

bool iequal(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// A header of a CDP Network.Response (names as sent; repeated ones joined by "\n").
std::string header(const json& headers, std::string_view name) {
  if (!headers.is_object()) return {};
  for (const auto& [k, v] : headers.items())
    if (iequal(k, name) && v.is_string()) return v.get<std::string>();
  return {};
}

// The HTTP path's error kind for one of Chromium's net errors ("net::ERR_...").
std::string kind_of(const std::string& net) {
  auto has = [&](std::string_view s) { return net.find(s) != std::string::npos; };
  if (has("NAME_NOT_RESOLVED") || has("NAME_RESOLUTION_FAILED")) return "dns";
  if (has("TIMED_OUT")) return "timeout";
  if (has("CONNECTION_REFUSED") || has("ADDRESS_UNREACHABLE") || has("CONNECTION_FAILED") ||
      has("PROXY_CONNECTION_FAILED") || has("NETWORK_UNREACHABLE"))
    return "connect";
  if (has("CERT_") || has("SSL_")) return "tls";
  if (has("TOO_MANY_REDIRECTS")) return "redirect_loop";
  if (has("FILE_TOO_BIG")) return "too_large";
  if (has("EMPTY_RESPONSE") || has("CONNECTION_CLOSED") || has("CONNECTION_RESET") ||
      has("INVALID_HTTP_RESPONSE") || has("CONTENT_LENGTH_MISMATCH") || has("INCOMPLETE_CHUNKED"))
    return "read";
  return "render";
}

std::string base64_decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  out.reserve(in.size() * 3 / 4);
  unsigned buffer = 0;
  int bits = 0;
  for (char c : in) {
    int v = value(c);
    if (v < 0) continue;
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((buffer >> bits) & 0xff));
    }
  }
  return out;
}

// The main document's response (a navigation's requestId is its loaderId).
struct MainDocument {
  bool have_response = false;
  int status = 0;
  std::string url, mime, protocol;
  json headers;
  std::string error;  // net::ERR_... when it failed before a response
};

// What the page's events said so far. A reused tab may still deliver a late event of its
// previous page: the load and the main document are told apart by the navigation's loaderId.
struct PageState {
  explicit PageState(asio::io_context& io) : wake(io, Steady::time_point::max()) {}
  std::string frame;  // the main frame's id (the target's)
  bool done = false;  // the page's coroutine has ended (nothing more is sent for it)
  bool gated = false;
  // Lets the main document's first request go (Fetch.continueRequest), when politeness allows.
  std::function<void(json cont)> release_main;
  std::set<std::string> loaded;  // loaderIds whose load event fired
  bool crashed = false;
  int dialogs = 0;
  std::string first_document;                     // the first main-frame document request seen
  std::map<std::string, MainDocument> documents;  // by requestId
  std::set<std::string> in_flight;
  Steady::time_point last_activity = Steady::now();
  // Cancelled by the events the wait looks at; `poked` says one came while it did not wait.
  asio::steady_timer wake;
  bool poked = false;
  void poke() {
    poked = true;
    wake.cancel();
  }
};

// CDP's resource type for a `block:` entry.
std::string resource_type(const std::string& block) {
  if (block == "image") return "Image";
  if (block == "font") return "Font";
  if (block == "media") return "Media";
  return "Stylesheet";
}

std::string js_string(const std::string& s) {
  return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

// A target attached with a flat session.
struct Tab {
  std::string target, session;
  std::string setup;  // what its set-up calls were (pages with other ones get another tab)
  std::string url;    // the last page it loaded
};

// The browser context of one job run.
struct RunContext {
  explicit RunContext(asio::io_context& io) : linger(io) {}
  std::uint64_t key = 0;  // FetchRequest::group
  std::string id;         // browserContextId; empty while being created or when that failed
  std::string error;      // why it could not be created
  std::weak_ptr<Browser> browser;
  bool creating = true;
  std::vector<std::shared_ptr<asio::steady_timer>> waiting;  // pages waiting for it
  int pages = 0;                                             // its pages in flight
  std::vector<Tab> idle;  // tabs whose page ended cleanly, for its next pages
  asio::steady_timer linger;
};

// How long a run's context outlives its last page in flight (the next page of a paced run
// usually comes before).
constexpr auto kRunLinger = std::chrono::seconds(5);

}  // namespace

struct Renderer::State {
  explicit State(asio::io_context& context) : io(context), idle(context) {}

  asio::io_context& io;
  config::RenderPool settings;
  int free = -1;  // tabs free; -1 until the first page reads the settings
  std::deque<std::shared_ptr<asio::steady_timer>> waiters;
  std::shared_ptr<Browser> current;
  int started = 0;                      // pages started on `current`
  Steady::time_point memory_checked{};  // when `current`'s memory was last read
  std::vector<std::weak_ptr<Browser>> live;
  asio::steady_timer idle;
  bool closed = false;
  std::size_t in_flight = 0;
  std::size_t loading = 0;  // pages past acquire()
  // Per origin: when the last page was asked for (its frontier permit) and when it navigated.
  // A page's navigation keeps at least the gap its permit had to the last one: the browser's
  // start or a slow set-up must not bunch up requests the frontier spaced out.
  // Pruned (prune_paced) of origins whose last page went more than kPacedFor ago.
  PacedMap paced;
  std::map<std::uint64_t, std::shared_ptr<RunContext>> runs;  // by FetchRequest::group
  int tabs_busy = 0;                                          // tabs with a page on them

  int concurrency() const {
    if (settings.concurrency > 0) return settings.concurrency;
    return 2 * static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  }

  void release() {
    if (!waiters.empty()) {
      auto t = waiters.front();  // the slot goes to it
      waiters.pop_front();
      t->cancel();
    } else {
      ++free;
    }
  }

  // The browser for the next page: the running one, or a fresh one when there is none, it
  // died, stopped answering or has served its pages.
  std::shared_ptr<Browser> browser(std::string* error) {
    if (current &&
        (current->cdp().closed() || current->unresponsive || started >= settings.restart_after))
      current.reset();  // pages still on it keep it until they end
    if (current && settings.restart_memory > 0 &&
        Steady::now() - memory_checked >= kMemoryCheckEvery) {
      memory_checked = Steady::now();
      if (auto rss = group_rss(current->pid()); rss > settings.restart_memory) {
        spdlog::info("render: the browser holds {} MB (render.restart_memory {} MB): a fresh one",
                     rss >> 20, settings.restart_memory >> 20);
        current.reset();
      }
    }
    if (!current) {
      auto b = Browser::start(io, settings.executable, error);
      if (!b) return nullptr;
      current = std::shared_ptr<Browser>(std::move(b));
      started = 0;
      memory_checked = Steady::now();
      std::erase_if(live, [](const auto& w) { return w.expired(); });
      live.push_back(current);
    }
    ++started;
    return current;
  }

  void kill_all() {
    current.reset();
    runs.clear();
    for (auto& w : live)
      if (auto b = w.lock()) {
        b->cdp().close();
        ::kill(-b->pid(), SIGKILL);
      }
  }
};

namespace {

asio::awaitable<bool> acquire(std::shared_ptr<Renderer::State> s) {
  if (s->free < 0) s->free = s->concurrency();
  if (s->closed) co_return false;
  if (s->free > 0) {
    --s->free;
    co_return true;
  }
  auto t = std::make_shared<asio::steady_timer>(s->io, Steady::time_point::max());
  s->waiters.push_back(t);
  std::error_code ec;
  co_await t->async_wait(asio::redirect_error(asio::use_awaitable, ec));
  co_return !s->closed;
}

void fail(FetchResult& r, std::string kind, std::string message) {
  r.error_kind = std::move(kind);
  r.error_message = std::move(message);
  r.body.clear();
}

void on_page_event(Cdp* cdp, const std::shared_ptr<PageState>& page, const std::string& session,
                   const std::set<std::string>& blocked,
                   const std::vector<std::pair<std::string, std::string>>& doc_headers,
                   const std::string& origin, const std::string& method, const json& params) {
  PageState& p = *page;
  if (method == "Page.lifecycleEvent") {
    if (params.value("name", std::string()) == "load" &&
        params.value("frameId", std::string()) == p.frame) {
      p.loaded.insert(params.value("loaderId", std::string()));
      p.poke();
    }
  } else if (method == "Network.requestWillBeSent") {
    std::string id = params.value("requestId", std::string());
    p.in_flight.insert(id);
    p.last_activity = Steady::now();
    if (params.value("type", std::string()) == "Document" &&
        params.value("frameId", std::string()) == p.frame) {
      if (p.first_document.empty()) p.first_document = id;
      p.documents.try_emplace(id);
    }
  } else if (method == "Network.responseReceived") {
    auto doc = p.documents.find(params.value("requestId", std::string()));
    if (doc != p.documents.end() && params.contains("response")) {
      const json& resp = params["response"];
      MainDocument& d = doc->second;
      d.have_response = true;
      d.status = resp.value("status", 0);
      d.url = resp.value("url", std::string());
      d.mime = resp.value("mimeType", std::string());
      d.protocol = resp.value("protocol", std::string());
      d.headers = resp.value("headers", json::object());
    }
  } else if (method == "Network.loadingFinished" || method == "Network.loadingFailed") {
    std::string id = params.value("requestId", std::string());
    p.in_flight.erase(id);
    p.last_activity = Steady::now();
    auto doc = p.documents.find(id);
    if (method == "Network.loadingFailed" && doc != p.documents.end() && !doc->second.have_response)
      doc->second.error = params.value("errorText", std::string("failed"));
    p.poke();
  } else if (method == "Page.javascriptDialogOpening") {
    ++p.dialogs;
    cdp->send("Page.handleJavaScriptDialog", {{"accept", false}}, session);
  } else if (method == "Inspector.targetCrashed") {
    p.crashed = true;
    cdp->fail_session(session, "the page crashed");
    p.poke();
  } else if (method == "Fetch.requestPaused") {
    std::string id = params.value("requestId", std::string());
    std::string type = params.value("resourceType", std::string());
    if (blocked.contains(type)) {
      cdp->send("Fetch.failRequest", {{"requestId", id}, {"errorReason", "BlockedByClient"}},
                session);
      return;
    }
    json cont = {{"requestId", id}};
    const json& req = params.contains("request") ? params["request"] : json::object();
    auto url = config::parse_url(req.value("url", std::string()));
    if (type == "Document" && url && url->origin() == origin && !doc_headers.empty()) {
      // The job's headers go to its own origin only, never to another site the page loads.
      json list = json::array();
      if (auto h = req.find("headers"); h != req.end() && h->is_object())
        for (const auto& [k, v] : h->items()) {
          bool replaced = std::any_of(doc_headers.begin(), doc_headers.end(),
                                      [&](const auto& d) { return iequal(d.first, k); });
          if (!replaced && v.is_string()) list.push_back({{"name", k}, {"value", v}});
        }
      for (const auto& [k, v] : doc_headers) list.push_back({{"name", k}, {"value", v}});
      cont["headers"] = std::move(list);
    }
    if (type == "Document" && params.value("frameId", std::string()) == p.frame && !p.gated &&
        p.release_main) {
      p.gated = true;
      p.release_main(std::move(cont));
      return;
    }
    cdp->send("Fetch.continueRequest", std::move(cont), session);
  }
}

// The session set-up a tab gets once, for pages whose options give the same calls.
std::vector<std::pair<std::string, json>> tab_setup(const config::Render& o,
                                                    const std::set<std::string>& blocked,
                                                    const std::string& user_agent) {
  std::vector<std::pair<std::string, json>> setup;
  setup.emplace_back("Page.enable", json::object());
  setup.emplace_back("Page.setLifecycleEventsEnabled", json{{"enabled", true}});
  setup.emplace_back("Network.enable", json::object());
  {
    // Documents: the job's headers, and the main request held until its time has come.
    json patterns = {{{"resourceType", "Document"}}};
    for (const auto& t : blocked) patterns.push_back({{"resourceType", t}});
    setup.emplace_back("Fetch.enable", json{{"patterns", std::move(patterns)}});
  }
  if (!user_agent.empty())
    setup.emplace_back("Emulation.setUserAgentOverride", json{{"userAgent", user_agent}});
  setup.emplace_back(
      "Emulation.setDeviceMetricsOverride",
      json{{"width", o.width}, {"height", o.height}, {"deviceScaleFactor", 1}, {"mobile", false}});
  if (!o.javascript)
    setup.emplace_back("Emulation.setScriptExecutionDisabled", json{{"value", true}});
  else
    setup.emplace_back("Page.addScriptToEvaluateOnNewDocument",
                       json{{"source", "window.open = function () { return null; };"}});
  return setup;
}

std::string without_fragment(const std::string& url) {
  return url.substr(0, url.find('#'));
}

// The expression that reads the DOM, bounded by max_body before it crosses the pipe: the
// outerHTML, or {too_large: length}.
std::string dom_expression(const FetchRequest& request) {
  const std::string max = std::to_string(request.max_body);
  return "(() => { const e = document.documentElement; if (!e) return ''; const h = e.outerHTML; "
         "return h.length > " +
         max + " ? " + (request.cut_body ? "h.slice(0, " + max + ")" : "{too_large: h.length}") +
         " : h; })()";
}

// Waits inside the page, up to `ms`, for `selector` (a MutationObserver, and a look every
// 100 ms for what it does not see, such as :checked), then resolves with the DOM (as
// dom_expression), or with null when the time is up. A selector the browser refuses rejects.
std::string wait_expression(const std::string& selector, long long ms, const std::string& dom) {
  return "new Promise((resolve) => { const sel = " + js_string(selector) +
         "; const found = () => document.querySelector(sel) !== null;"
         " const read = () => " +
         dom +
         "; if (found()) { resolve(read()); return; }"
         " let obs, tick, timer; const done = (v) => { obs.disconnect(); clearInterval(tick);"
         " clearTimeout(timer); resolve(v); };"
         " obs = new MutationObserver(() => { if (found()) done(read()); });"
         " obs.observe(document, {childList: true, subtree: true, attributes: true,"
         " characterData: true});"
         " tick = setInterval(() => { if (found()) done(read()); }, 100);"
         " timer = setTimeout(() => done(null), " +
         std::to_string(ms) + "); })";
}

// The DOM (as dom_expression) when `selector` matches now, else null; throws when the
// browser refuses the selector.
std::string look_expression(const std::string& selector, const std::string& dom) {
  return "(document.querySelector(" + js_string(selector) + ") !== null ? " + dom + " : null)";
}

// One page on `tab` (fresh: not yet set up): navigate, wait, read the DOM. `reusable` is set
// when the page ended cleanly and the tab may take the next page of its context.
asio::awaitable<FetchResult> on_tab(std::shared_ptr<Renderer::State> s, Steady::time_point called,
                                    std::shared_ptr<Browser> b, Tab& tab, bool fresh,
                                    const FetchRequest& request, const config::Render& o,
                                    Steady::time_point deadline, std::string* shot,
                                    bool& reusable) {
  FetchResult r;
  Cdp& cdp = b->cdp();
  const std::string session = tab.session;
  auto page = std::make_shared<PageState>(s->io);
  page->frame = tab.target;
  auto failed_call = [&](const CdpReply& reply, const std::string& what) {
    if (page->crashed)
      fail(r, "render", "the page crashed (its renderer process died)");
    else if (reply.error == "timeout")
      fail(r, "timeout", "the browser did not answer in time (" + what + ")");
    else if (reply.error == "closed")
      fail(r, "render", "the browser exited (" + what + ")");
    else
      fail(r, "render", what + ": " + reply.error);
  };
  struct Ended {
    PageState& page;
    ~Ended() { page.done = true; }
  } ended{*page};
  std::set<std::string> blocked;
  for (const auto& b_type : o.block) blocked.insert(resource_type(b_type));
  std::string user_agent = o.user_agent.empty() ? request.user_agent : o.user_agent;
  std::vector<std::pair<std::string, std::string>> doc_headers;
  for (const auto& [k, v] : request.headers) {
    if (iequal(k, "User-Agent"))
      user_agent = o.user_agent.empty() ? v : user_agent;
    else if (!iequal(k, "If-None-Match") && !iequal(k, "If-Modified-Since"))
      doc_headers.emplace_back(k, v);  // no conditional GET: a 304 renders nothing
  }
  auto target_url = config::parse_url(request.url);
  std::string origin = target_url ? target_url->origin() : std::string();
  Cdp* cdp_ptr = &cdp;
  // Politeness: the frontier spaced the permits of this origin's pages; the browser's start or
  // a slow set-up must not bunch their requests up. The main document's request is held (Fetch)
  // until at least the gap its permit had to the previous page's has passed since that page's
  // request went (per origin; reserved when decided, so concurrent pages queue up).
  page->release_main = [s, weak = std::weak_ptr<PageState>(page), cdp_ptr, session, origin, called,
                        deadline](json cont) {
    auto now = Steady::now();
    prune_paced(s->paced, now);
    auto& [last_called, last_sent] = s->paced[origin];
    auto not_before = now;
    if (last_sent != Steady::time_point{}) {
      auto gap = called > last_called ? called - last_called : last_called - called;
      not_before = std::max(now, std::min(last_sent + gap, deadline));
    }
    last_called = called;
    last_sent = not_before;
    auto timer = std::make_shared<asio::steady_timer>(s->io, not_before);
    timer->async_wait([timer, weak, cdp_ptr, session, cont = std::move(cont)](std::error_code) {
      auto p = weak.lock();
      if (p && !p->done) cdp_ptr->send("Fetch.continueRequest", cont, session);
    });
  };
  cdp.on_event(session, [cdp_ptr, page, session, blocked, doc_headers, origin](
                            const std::string& method, const json& params) {
    on_page_event(cdp_ptr, page, session, blocked, doc_headers, origin, method, params);
  });

  // Set-up, once per tab, all calls sent together.
  if (fresh) {
    std::vector<CdpReply> done =
        co_await cdp.call_all(tab_setup(o, blocked, user_agent), session, deadline);
    for (std::size_t i = 0; i < done.size(); ++i)
      if (!done[i].ok()) {
        failed_call(done[i], "setting up the tab");
        co_return r;
      }
  }

  json nav = {{"url", request.url}};
  CdpReply navigated = co_await cdp.call("Page.navigate", std::move(nav), session, deadline);
  if (!navigated.ok()) {
    failed_call(navigated, "Page.navigate");
    co_return r;
  }
  if (auto e = navigated.result.value("errorText", std::string()); !e.empty()) {
    fail(r, kind_of(e), e + " (loading " + request.url + ")");
    co_return r;
  }
  tab.url = request.url;
  // The navigation's document: its requestId is the loaderId Page.navigate names.
  const std::string loader = navigated.result.value("loaderId", std::string());
  auto main = [&]() -> const MainDocument* {
    auto d = page->documents.find(loader);
    if (d == page->documents.end()) d = page->documents.find(page->first_document);
    return d == page->documents.end() ? nullptr : &d->second;
  };
  auto timed_out = [&](const std::string& wait) {
    const MainDocument* m = main();
    fail(r, "timeout",
         "the page did not reach wait_for " + wait + " in time" +
             (m && m->have_response ? " (HTTP status " + std::to_string(m->status) + ")"
                                    : std::string(" (no response)")));
  };
  auto broken = [&]() {
    if (page->crashed) {
      fail(r, "render", "the page crashed (its renderer process died)");
      return true;
    }
    if (cdp.closed()) {
      fail(r, "render", "the browser exited while the page loaded");
      return true;
    }
    if (const MainDocument* m = main(); m && !m->error.empty()) {
      fail(r, kind_of(m->error), m->error + " (loading " + request.url + ")");
      return true;
    }
    return false;
  };

  const std::string& wait = o.wait_for;
  const std::string dom_expr = dom_expression(request);
  json dom;  // Runtime.evaluate's result: the DOM as dom_expression gives it
  if (wait == "load" || wait == "network_idle") {
    // Woken by the page's events (and, for network_idle, when its quiet 500 ms are up).
    for (;;) {
      if (broken()) co_return r;
      auto now = Steady::now();
      bool loaded = page->loaded.contains(loader);
      bool quiet = loaded && page->in_flight.empty();
      if (wait == "load" ? loaded : quiet && now - page->last_activity >= 500ms) break;
      if (now >= deadline) {
        timed_out(wait);
        co_return r;
      }
      auto until = deadline;
      if (wait == "network_idle" && quiet) until = std::min(until, page->last_activity + 500ms);
      if (!page->poked) {
        page->wake.expires_at(until);
        std::error_code ec;
        co_await page->wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      page->poked = false;
    }
    json eval = {{"expression", dom_expr}, {"returnByValue", true}};
    CdpReply read = co_await cdp.call("Runtime.evaluate", std::move(eval), session, deadline);
    if (!read.ok()) {
      failed_call(read, "reading the DOM");
      co_return r;
    }
    dom = read.result.contains("result") ? read.result["result"] : json::object();
  } else {
    // A selector: one call that waits inside the page and returns the DOM once it matches.
    // Without scripts the page's timers and observers may not run: it is looked for every
    // 50 ms instead (only parsing changes such a DOM).
    for (;;) {
      if (broken()) co_return r;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
      if (left.count() <= 0) {
        timed_out(wait);
        co_return r;
      }
      json eval = {{"expression", o.javascript ? wait_expression(wait, left.count(), dom_expr)
                                               : look_expression(wait, dom_expr)},
                   {"awaitPromise", o.javascript},
                   {"returnByValue", true}};
      CdpReply found = co_await cdp.call("Runtime.evaluate", std::move(eval), session, deadline);
      if (broken()) co_return r;
      if (!found.ok() && found.error == "timeout") {  // the page's time is up (or it hangs)
        timed_out(wait);
        co_return r;
      }
      if (found.ok() && found.result.contains("exceptionDetails")) {
        const MainDocument* m = main();
        if (m && m->have_response) {
          fail(r, "render", "wait_for '" + wait + "' is not a selector the browser accepts");
          co_return r;
        }
      } else if (found.ok()) {
        json value = found.result.contains("result") ? found.result["result"] : json::object();
        if (value.value("subtype", std::string()) != "null" && value.contains("type")) {
          dom = std::move(value);
          break;
        }
      }
      // The page's context went (it navigated on) or the time in the page was up: again, a
      // little later.
      asio::steady_timer pause(s->io);
      pause.expires_after(50ms);
      std::error_code ec;
      co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }

  const std::string max = std::to_string(request.max_body);
  if (dom.value("type", std::string()) != "string") {
    if (dom.contains("value") && dom["value"].is_object())
      fail(r, "too_large",
           "the rendered DOM is " + dom["value"].value("too_large", json(0)).dump() +
               " characters, more than max_body (" + max + " bytes)");
    else
      fail(r, "render", "the document has no DOM to read");
    co_return r;
  }
  r.body = dom.value("value", std::string());
  if (r.body.size() > request.max_body) {
    if (request.cut_body) {
      r.body.resize(request.max_body);
    } else {
      fail(r, "too_large",
           "the rendered DOM is " + std::to_string(r.body.size()) + " bytes, more than max_body (" +
               max + ")");
      co_return r;
    }
  }
  if (shot) {
    json png = {{"format", "png"}};
    CdpReply taken = co_await cdp.call("Page.captureScreenshot", std::move(png), session, deadline);
    if (taken.ok()) *shot = base64_decode(taken.result.value("data", std::string()));
  }
  const MainDocument* m = main();
  if (!m || !m->have_response) {
    fail(r, "render", "the page has no HTTP response (" + request.url + ")");
    co_return r;
  }
  r.status = m->status;
  if (m->url != request.url) r.final_url = m->url;
  r.retry_after = header(m->headers, "retry-after");
  r.etag = header(m->headers, "etag");
  r.last_modified = header(m->headers, "last-modified");
  r.content_type = header(m->headers, "content-type");
  if (r.content_type.empty()) r.content_type = m->mime;
  const std::string& proto = m->protocol;
  r.http_version = proto == "h2"         ? "2"
                   : proto == "http/1.1" ? "1.1"
                   : proto == "http/1.0" ? "1.0"
                                         : "";
  reusable = !page->crashed && !cdp.closed();
  co_return r;
}

// An idle tab's events: nothing of it goes on (no dialog waits, no document loads).
void idle_tab(Cdp& cdp, const std::string& session) {
  Cdp* cdp_ptr = &cdp;
  cdp.on_event(session, [cdp_ptr, session](const std::string& method, const json& params) {
    if (method == "Page.javascriptDialogOpening")
      cdp_ptr->send("Page.handleJavaScriptDialog", {{"accept", false}}, session);
    else if (method == "Fetch.requestPaused")
      cdp_ptr->send("Fetch.failRequest",
                    {{"requestId", params.value("requestId", std::string())},
                     {"errorReason", "BlockedByClient"}},
                    session);
  });
}

void close_tab(Cdp& cdp, const Tab& tab) {
  cdp.forget(tab.session);
  cdp.send("Target.closeTarget", {{"targetId", tab.target}}, kBrowser);
}

// Idle tabs of other runs are closed while the tabs open would exceed render.concurrency.
void make_room(Renderer::State& s, const std::shared_ptr<Browser>& b) {
  int open = s.tabs_busy;
  for (auto& [key, run] : s.runs)
    if (run->browser.lock() == b) open += static_cast<int>(run->idle.size());
  for (auto& [key, run] : s.runs) {
    if (open < s.concurrency()) return;
    if (run->browser.lock() != b) continue;
    while (!run->idle.empty() && open >= s.concurrency()) {
      close_tab(b->cdp(), run->idle.front());
      run->idle.erase(run->idle.begin());
      --open;
    }
  }
}

// A page in `context` on a tab: an idle one of its run (`idle`, may be null: none kept) whose
// set-up fits, else a fresh one, closed after the page unless it goes back to `idle`.
asio::awaitable<FetchResult> in_context(std::shared_ptr<Renderer::State> s,
                                        Steady::time_point called, std::shared_ptr<Browser> b,
                                        const std::string& context, std::shared_ptr<RunContext> run,
                                        const FetchRequest& request, const config::Render& o,
                                        Steady::time_point deadline, std::string* shot) {
  FetchResult r;
  Cdp& cdp = b->cdp();
  Tab tab;
  // Pages whose set-up calls are the same share tabs (within a run they always are).
  tab.setup = json(tab_setup(o, {}, "")).dump() + json(o.block).dump() +
              (o.user_agent.empty() ? request.user_agent : o.user_agent);
  for (const auto& [k, v] : request.headers)
    if (iequal(k, "User-Agent")) tab.setup += "|" + v;
  bool fresh = true;
  if (run) {
    auto& idle = run->idle;
    for (auto it = idle.begin(); it != idle.end(); ++it)
      if (it->setup == tab.setup && without_fragment(it->url) != without_fragment(request.url)) {
        tab = *it;
        idle.erase(it);
        fresh = false;
        break;
      }
  }
  if (fresh) {
    make_room(*s, b);
    json target_params = {{"url", "about:blank"}, {"browserContextId", context}};
    CdpReply created =
        co_await cdp.call("Target.createTarget", std::move(target_params), kBrowser, deadline);
    if (!created.ok()) {
      if (created.error == "timeout") b->unresponsive = true;
      fail(r, created.error == "timeout" ? "timeout" : "render",
           created.error == "timeout"  ? "the browser did not answer in time (Target.createTarget)"
           : created.error == "closed" ? "the browser exited (Target.createTarget)"
                                       : "Target.createTarget: " + created.error);
      co_return r;
    }
    tab.target = created.result.value("targetId", std::string());
    json attach_params = {{"targetId", tab.target}, {"flatten", true}};
    CdpReply attached =
        co_await cdp.call("Target.attachToTarget", std::move(attach_params), kBrowser, deadline);
    if (!attached.ok()) {
      fail(r, attached.error == "timeout" ? "timeout" : "render",
           "Target.attachToTarget: " + attached.error);
      cdp.send("Target.closeTarget", {{"targetId", tab.target}}, kBrowser);
      co_return r;
    }
    tab.session = attached.result.value("sessionId", std::string());
  }
  ++s->tabs_busy;
  bool reusable = false;
  r = co_await on_tab(s, called, b, tab, fresh, request, o, deadline, shot, reusable);
  --s->tabs_busy;
  if (cdp.closed()) co_return r;
  auto current = s->runs.find(run ? run->key : 0);
  if (reusable && run && current != s->runs.end() && current->second == run) {
    idle_tab(cdp, tab.session);
    run->idle.push_back(std::move(tab));
  } else {
    close_tab(cdp, tab);
  }
  co_return r;
}

// A browser context of its own: `disposeOnDetach`, the job's proxy, downloads refused.
asio::awaitable<CdpReply> new_context(Cdp& cdp, const FetchRequest& request,
                                      Steady::time_point deadline) {
  json params = {{"disposeOnDetach", true}};
  if (!request.proxy.empty()) {
    std::string proxy = request.proxy;  // Chromium's socks5 resolves names at the proxy
    if (proxy.rfind("socks5h://", 0) == 0) proxy = "socks5://" + proxy.substr(10);
    params["proxyServer"] = proxy;
  }
  CdpReply ctx =
      co_await cdp.call("Target.createBrowserContext", std::move(params), kBrowser, deadline);
  if (!ctx.ok()) co_return ctx;
  std::string id = ctx.result.value("browserContextId", std::string());
  json deny = {{"behavior", "deny"}, {"browserContextId", id}};
  CdpReply denied =
      co_await cdp.call("Browser.setDownloadBehavior", std::move(deny), kBrowser, deadline);
  if (!denied.ok()) {
    cdp.send("Target.disposeBrowserContext", {{"browserContextId", id}}, kBrowser);
    denied.error = "Browser.setDownloadBehavior: " + denied.error;
    co_return denied;
  }
  co_return ctx;
}

void context_failed(FetchResult& r, std::shared_ptr<Browser>& b, const CdpReply& ctx) {
  if (ctx.error == "timeout") b->unresponsive = true;
  fail(r, ctx.error == "timeout" ? "timeout" : "render",
       ctx.error == "closed" ? "the browser exited (or could not start: see its stderr)"
                             : "Target.createBrowserContext: " + ctx.error);
}

// The run's context on `b` (made by its first page; the others wait for it), null on failure.
asio::awaitable<std::shared_ptr<RunContext>> run_context(
    std::shared_ptr<Renderer::State> s, std::shared_ptr<Browser> b, std::uint64_t key,
    const FetchRequest& request, Steady::time_point deadline, FetchResult& r) {
  // Runs of a browser that was replaced lose their context (it went, or goes, with it).
  std::erase_if(s->runs, [&](const auto& kv) { return kv.second->browser.lock() != b; });
  auto found = s->runs.find(key);
  if (found != s->runs.end()) {
    auto run = found->second;
    while (run->creating) {
      auto t = std::make_shared<asio::steady_timer>(s->io, deadline);
      run->waiting.push_back(t);
      std::error_code ec;
      co_await t->async_wait(asio::redirect_error(asio::use_awaitable, ec));
      if (Steady::now() >= deadline && run->creating) {
        fail(r, "timeout", "the browser did not answer in time (Target.createBrowserContext)");
        co_return nullptr;
      }
    }
    if (run->id.empty()) {
      fail(r, "render", run->error);
      co_return nullptr;
    }
    co_return run;
  }
  auto run = std::make_shared<RunContext>(s->io);
  run->key = key;
  run->browser = b;
  s->runs[key] = run;
  CdpReply ctx = co_await new_context(b->cdp(), request, deadline);
  run->creating = false;
  for (auto& t : run->waiting) t->cancel();
  run->waiting.clear();
  if (!ctx.ok()) {
    context_failed(r, b, ctx);
    run->error = r.error_message;
    if (auto it = s->runs.find(key); it != s->runs.end() && it->second == run) s->runs.erase(it);
    co_return nullptr;
  }
  run->id = ctx.result.value("browserContextId", std::string());
  co_return run;
}

// After a run's last page in flight: its context (and its idle tabs) goes kRunLinger later,
// unless another page of the run came meanwhile.
void linger(const std::shared_ptr<Renderer::State>& s, const std::shared_ptr<RunContext>& run) {
  run->linger.expires_after(kRunLinger);
  run->linger.async_wait([w = std::weak_ptr<Renderer::State>(s),
                          wr = std::weak_ptr<RunContext>(run)](std::error_code ec) {
    auto st = w.lock();
    auto rc = wr.lock();
    if (ec || !st || !rc || rc->pages > 0) return;
    auto it = st->runs.find(rc->key);
    if (it == st->runs.end() || it->second != rc) return;
    st->runs.erase(it);
    if (auto b = rc->browser.lock(); b && !b->cdp().closed()) {
      for (const auto& tab : rc->idle) b->cdp().forget(tab.session);
      b->cdp().send("Target.disposeBrowserContext", {{"browserContextId", rc->id}}, kBrowser);
    }
  });
}

// Pages of one job run (FetchRequest::group, when the job keeps cookies) share a browser
// context, and its tabs between pages; any other page gets a context of its own.
asio::awaitable<FetchResult> load(std::shared_ptr<Renderer::State> s, Steady::time_point called,
                                  std::shared_ptr<Browser> b, const FetchRequest& request,
                                  const config::Render& o, Steady::time_point deadline,
                                  std::string* shot) {
  FetchResult r;
  Cdp& cdp = b->cdp();
  const std::uint64_t key = request.cookies ? request.group : 0;
  if (key != 0) {
    std::shared_ptr<RunContext> run = co_await run_context(s, b, key, request, deadline, r);
    if (!run) co_return r;
    ++run->pages;
    run->linger.cancel();
    r = co_await in_context(s, called, b, run->id, run, request, o, deadline, shot);
    if (--run->pages == 0) linger(s, run);
    co_return r;
  }
  CdpReply ctx = co_await new_context(cdp, request, deadline);
  if (!ctx.ok()) {
    context_failed(r, b, ctx);
    co_return r;
  }
  std::string context = ctx.result.value("browserContextId", std::string());
  r = co_await in_context(s, called, b, context, nullptr, request, o, deadline, shot);
  if (!cdp.closed()) {
    json dispose = {{"browserContextId", context}};
    CdpReply gone = co_await cdp.call("Target.disposeBrowserContext", std::move(dispose), kBrowser,
                                      Steady::now() + 5s);
    if (!gone.ok() && gone.error == "timeout") b->unresponsive = true;
  }
  co_return r;
}

}  // namespace

Renderer::Renderer(asio::io_context& io)
    : asio::execution_context::service(io), state_(std::make_shared<State>(io)) {}

Renderer::~Renderer() {
  state_->kill_all();
}

void Renderer::shutdown() {
  state_->closed = true;
  state_->kill_all();
}

void Renderer::configure(const config::RenderPool& settings) {
  state_->settings = settings;
}

asio::awaitable<FetchResult> Renderer::render(FetchRequest request, config::Render options,
                                              std::string* screenshot) {
  auto s = state_;
  FetchResult r;
  auto start = Steady::now();
  const auto called = start;
  if (request.method != "GET" || !request.body.empty()) {
    fail(r, "render", "render: chromium loads pages with GET only (method " + request.method + ")");
    co_return r;
  }
  ++s->in_flight;
  s->idle.cancel();
  bool got = co_await acquire(s);
  if (!got) {
    fail(r, "cancelled", "the renderer is closed (the daemon is stopping)");
  } else {
    ++s->loading;
    start = Steady::now();  // elapsed: the page's own time, not the wait for a tab
    const auto deadline = start + (options.timeout ? *options.timeout : request.timeout);
    std::string error;
    std::shared_ptr<Browser> b = s->browser(&error);
    if (!b)
      fail(r, "render", error);
    else
      r = co_await load(s, called, std::move(b), request, options, deadline, screenshot);
    s->release();
    --s->loading;
  }
  if (s->closed && !r.ok()) fail(r, "cancelled", "the daemon stopped while the page loaded");
  r.elapsed = Steady::now() - start;
  if (--s->in_flight == 0 && !s->closed) {
    s->idle.expires_after(s->settings.idle_shutdown);
    s->idle.async_wait([w = std::weak_ptr<State>(s)](std::error_code ec) {
      auto st = w.lock();
      if (!ec && st && st->in_flight == 0) st->current.reset();  // killed, reaped, removed
    });
  }
  co_return r;
}

void Renderer::close() {
  auto& s = *state_;
  s.closed = true;
  s.idle.cancel();
  auto waiting = std::move(s.waiters);
  s.waiters.clear();
  for (auto& t : waiting) t->cancel();
  s.kill_all();
}

std::size_t Renderer::in_flight() const {
  return state_->in_flight;
}

std::size_t Renderer::loading() const {
  return state_->loading;
}

pid_t Renderer::browser_pid() const {
  return state_->current ? state_->current->pid() : -1;
}

Renderer& renderer(asio::io_context& io) {
  return asio::use_service<Renderer>(io);
}

namespace {
asio::awaitable<void> render_into(Renderer& renderer, FetchRequest request, config::Render options,
                                  std::string* shot, FetchResult& out) {
  out = co_await renderer.render(std::move(request), std::move(options), shot);
}
}  // namespace

FetchResult render_blocking(const FetchRequest& request, const config::Render& options,
                            const config::RenderPool& pool, std::string* screenshot) {
  asio::io_context io(1);
  FetchResult out;
  std::exception_ptr failed;
  Renderer& r = renderer(io);
  r.configure(pool);
  asio::co_spawn(io, render_into(r, request, options, screenshot, out), [&](std::exception_ptr e) {
    failed = e;
    r.close();
    io.stop();
  });
  io.run();
  if (failed) std::rethrow_exception(failed);
  return out;
}

}  // namespace scraperd::daemon::render
