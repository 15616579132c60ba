#include "daemon/crawl/fetch.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "config/text.h"
#include "config/url.h"
#include "daemon/core/blocking.h"

namespace scraperd::daemon {
namespace {

using Clock = std::chrono::steady_clock;

// A body's buffer is reserved for its Content-Length up to this; beyond, it grows as it comes.
constexpr std::uint64_t kReserve = 1024 * 1024;

void global_init() {
  static const bool done = [] {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return true;
  }();
  (void)done;
}

std::string seconds(std::chrono::milliseconds ms) {
  return fmt::format("{:.3g}s", static_cast<double>(ms.count()) / 1000.0);
}

bool same_name(std::string_view a, std::string_view b) {
  return config::lower(a) == config::lower(b);
}

CURLM* new_multi() {
  global_init();
  return curl_multi_init();
}

// The value of response header `name` of the last response of `easy`; empty when absent.
std::string header(CURL* easy, const char* name) {
  curl_header* h = nullptr;
  if (curl_easy_header(easy, name, 0, CURLH_HEADER, -1, &h) != CURLHE_OK || !h) return {};
  return h->value;
}

}  // namespace

CookieJar::CookieJar() {
  global_init();
  CURLSH* share = curl_share_init();
  curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
  share_ = share;
}

CookieJar::~CookieJar() {
  if (share_) curl_share_cleanup(static_cast<CURLSH*>(share_));
}

CookieJar::CookieJar(CookieJar&& other) noexcept : share_(std::exchange(other.share_, nullptr)) {}

CookieJar& CookieJar::operator=(CookieJar&& other) noexcept {
  if (this != &other) {
    if (share_) curl_share_cleanup(static_cast<CURLSH*>(share_));
    share_ = std::exchange(other.share_, nullptr);
  }
  return *this;
}

// The multi handle and what the loop watches for it: curl's sockets and curl's one timer.
struct Fetcher::State {
  // A socket curl asked the loop to watch. The descriptor never owns the socket: curl closes
  // it, after telling the loop to forget it (CURL_POLL_REMOVE).
  struct Socket {
    Socket(asio::io_context& io, curl_socket_t s) : fd(io, s) {}
    asio::posix::stream_descriptor fd;
    int want = 0;           // CURL_POLL_IN, _OUT or _INOUT
    bool reading = false;   // a read wait is queued
    bool writing = false;   // a write wait is queued
    bool readable = false;  // it became readable while curl did not want to read
    bool gone = false;
  };

  // One exchange in the multi handle. Lives in the awaiting coroutine's frame.
  struct Transfer {
    Transfer(State& s, std::uint64_t g, std::uint64_t max, bool cut, FetchResult& r)
        : state(s),
          easy(curl_easy_init()),
          wake(s.io),
          group(g),
          max_body(max),
          cut_body(cut),
          result(r) {}
    ~Transfer() {
      if (added) state.remove(*this);
      curl_easy_cleanup(easy);
      curl_slist_free_all(headers);
    }
    Transfer(const Transfer&) = delete;
    Transfer& operator=(const Transfer&) = delete;

    State& state;
    CURL* easy;
    curl_slist* headers = nullptr;
    asio::steady_timer wake;  // cancelled when the transfer is done
    const std::uint64_t group;
    const std::uint64_t max_body;
    const bool cut_body;  // keep the first max_body bytes of a longer body
    FetchResult& result;  // the body is written here as it comes
    std::uint64_t header_bytes = 0;
    bool reserved = false;
    bool body_too_large = false;
    bool headers_too_large = false;
    bool added = false;  // in the multi handle
    bool done = false;
    bool cancelled = false;
    CURLcode code = CURLE_OK;
    char error[CURL_ERROR_SIZE] = {};
  };

  State(asio::io_context& context, long max_connections)
      : io(context), timer(context), multi(new_multi()) {
    // Unset, curl keeps 4 connections per transfer in flight *now*, so a keep-alive
    // connection is closed whenever fewer transfers run than earlier: 20,000 pages over 64
    // connections dialled ~2,000 times.
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, max_connections);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &State::on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &State::on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, this);
  }

  ~State() {
    *alive = false;
    close();
    curl_multi_cleanup(multi);
    for (auto& [s, socket] : sockets) forget(*socket);
  }

  // curl: watch `s` for `what`, or stop watching it.
  static int on_socket(CURL*, curl_socket_t s, int what, void* self, void*) {
    auto& state = *static_cast<State*>(self);
    auto it = state.sockets.find(s);
    if (what == CURL_POLL_REMOVE) {
      if (it != state.sockets.end()) {
        forget(*it->second);
        state.sockets.erase(it);
      }
      return 0;
    }
    const bool known = it != state.sockets.end();
    if (!known) it = state.sockets.emplace(s, std::make_shared<Socket>(state.io, s)).first;
    auto socket = it->second;
    // Asio's epoll reactor is edge-triggered and its waits are never speculative: readiness
    // reported while no wait was queued is not reported again. A read wait is always queued,
    // and one that came while curl did not want to read is kept (`readable`) and handed over
    // when it does. Write waits are queued only while curl writes (a socket is writable nearly
    // always), so when curl writes anew on a socket it already had, it is let try at once.
    int now = 0;
    if ((what & CURL_POLL_IN) && socket->readable) now |= CURL_CSELECT_IN;
    if (known && (what & CURL_POLL_OUT) && !(socket->want & CURL_POLL_OUT)) now |= CURL_CSELECT_OUT;
    socket->readable = false;
    socket->want = what;
    state.watch(socket);
    if (now) {
      asio::post(state.io, [&state, socket, now] {
        if (!socket->gone)
          state.act(socket->fd.native_handle(), now);  // forgotten: `state` may be gone
      });
    }
    return 0;
  }

  // curl: call back in `ms` (0: as soon as possible, never from within this callback), or
  // never (-1). curl asks this after nearly every action, mostly for the same or a later time:
  // the timer is re-armed only for an earlier one (each re-arm is a timerfd_settime), and when
  // it fires before curl's time it waits again.
  static int on_timer(CURLM*, long ms, void* self) {
    auto& state = *static_cast<State*>(self);
    if (ms < 0) {
      state.curl_at = Clock::time_point::max();  // an armed timer fires for nothing, once
    } else if (ms == 0) {
      state.curl_at = Clock::time_point::max();
      if (!state.act_posted) {
        state.act_posted = true;
        asio::post(state.io, [&state, alive = state.alive] {
          if (!*alive) return;
          state.act_posted = false;
          state.act(CURL_SOCKET_TIMEOUT, 0);
        });
      }
    } else {
      state.curl_at = Clock::now() + std::chrono::milliseconds(ms);
      if (state.curl_at < state.timer_at) state.arm(state.curl_at);
    }
    return 0;
  }

  void arm(Clock::time_point at) {
    timer_at = at;
    timer.expires_at(at);
    timer.async_wait([this, alive = alive](std::error_code ec) {
      if (ec || !*alive) return;  // re-armed for an earlier time, or closed
      timer_at = Clock::time_point::max();
      if (curl_at == Clock::time_point::max()) return;
      if (Clock::now() < curl_at) {
        arm(curl_at);
      } else {
        curl_at = Clock::time_point::max();
        act(CURL_SOCKET_TIMEOUT, 0);
      }
    });
  }

  static void forget(Socket& socket) {
    socket.gone = true;
    socket.fd.release();  // pending waits end with operation_aborted; the socket stays open
  }

  // Queues the waits `socket` lacks: always one for reading (unless a readiness is kept),
  // one for writing while curl wants to write.
  void watch(const std::shared_ptr<Socket>& socket) {
    if (!socket->reading && !socket->readable) {
      socket->reading = true;
      socket->fd.async_wait(asio::posix::stream_descriptor::wait_read,
                            [this, socket](std::error_code ec) { ready(ec, socket, true); });
    }
    if ((socket->want & CURL_POLL_OUT) && !socket->writing) {
      socket->writing = true;
      socket->fd.async_wait(asio::posix::stream_descriptor::wait_write,
                            [this, socket](std::error_code ec) { ready(ec, socket, false); });
    }
  }

  void ready(std::error_code ec, const std::shared_ptr<Socket>& socket, bool in) {
    (in ? socket->reading : socket->writing) = false;
    if (ec || socket->gone) return;  // forgotten: `this` may be gone too
    if (!(socket->want & (in ? CURL_POLL_IN : CURL_POLL_OUT))) {
      if (in) socket->readable = true;  // for when curl wants to read (on_socket)
      return;
    }
    act(socket->fd.native_handle(), in ? CURL_CSELECT_IN : CURL_CSELECT_OUT);
    if (!socket->gone) watch(socket);
  }

  // Lets curl act on `s` (or on its timer), then ends the transfers it finished.
  void act(curl_socket_t s, int events) {
    int running = 0;
    curl_multi_socket_action(multi, s, events, &running);
    int left = 0;
    while (CURLMsg* m = curl_multi_info_read(multi, &left)) {
      if (m->msg != CURLMSG_DONE) continue;
      Transfer* t = nullptr;
      curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &t);
      const CURLcode code = m->data.result;  // `m` is freed by the removal
      finish(*t, code);
    }
  }

  void remove(Transfer& t) {
    curl_multi_remove_handle(multi, t.easy);
    t.added = false;
    transfers.erase(&t);
  }

  // Ends `t`: the coroutine awaiting it resumes (from the loop, never from here).
  void finish(Transfer& t, CURLcode code) {
    remove(t);
    t.code = code;
    t.done = true;
    t.wake.cancel();
  }

  void cancel(std::uint64_t group, bool all) {
    std::vector<Transfer*> ending;
    for (Transfer* t : transfers)
      if (all || t->group == group) ending.push_back(t);
    for (Transfer* t : ending) {
      t->cancelled = true;
      finish(*t, CURLE_ABORTED_BY_CALLBACK);
    }
  }

  void close() {
    closed = true;
    cancel(0, true);
    curl_at = timer_at = Clock::time_point::max();
    timer.cancel();
  }

  // curl: response header bytes, a line at a time (every response's: 1xx, a proxy's CONNECT).
  static size_t on_header(char*, size_t size, size_t n, void* self) {
    auto& t = *static_cast<Transfer*>(self);
    t.header_bytes += size * n;
    if (t.header_bytes > kMaxHeaderBytes) {
      t.headers_too_large = true;
      return 0;  // curl ends the transfer (CURLE_WRITE_ERROR)
    }
    return size * n;
  }

  // curl: body bytes, decoded.
  static size_t on_body(char* data, size_t size, size_t n, void* self) {
    auto& t = *static_cast<Transfer*>(self);
    std::string& body = t.result.body;
    if (!t.reserved) {
      // One allocation instead of doublings; up to a bound, as the length is only the
      // server's word until the bytes come.
      t.reserved = true;
      curl_off_t length = -1;
      curl_easy_getinfo(t.easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &length);
      if (length > 0)
        body.reserve(static_cast<std::size_t>(
            std::min<std::uint64_t>(static_cast<std::uint64_t>(length), kReserve)));
    }
    const std::size_t bytes = size * n;
    if (body.size() + bytes > t.max_body) {
      if (t.cut_body) body.append(data, static_cast<std::size_t>(t.max_body - body.size()));
      t.body_too_large = true;
      return 0;  // curl ends the transfer (CURLE_WRITE_ERROR)
    }
    body.append(data, bytes);
    return bytes;
  }

  void configure(Transfer& t, const FetchRequest& request, const std::string& url,
                 const std::string& method, const std::string& body, bool same_origin,
                 Clock::time_point deadline) {
    CURL* e = t.easy;
    curl_easy_setopt(e, CURLOPT_PRIVATE, &t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t.error);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    // Every encoding this libcurl decodes is offered (gzip, deflate, br, zstd).
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &State::on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &State::on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
    if (!request.cut_body)
      curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(request.max_body));

    // The total deadline spans redirects: each hop gets what is left.
    auto left = std::max<long>(
        1, static_cast<long>(
               std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now())
                   .count()));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, left);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     std::min<long>(left, static_cast<long>(request.connect_timeout.count())));

    // The job's headers (a User-Agent among them replaces user_agent). Credentials go to the
    // origin of the job's URL only, never to another one a redirect leads to.
    curl_easy_setopt(e, CURLOPT_USERAGENT, request.user_agent.c_str());
    for (const auto& [name, value] : request.headers) {
      if (!same_origin && (same_name(name, "Authorization") || same_name(name, "Cookie"))) continue;
      // "Name;" sends an empty header; "Name:" would remove it.
      std::string line = value.empty() ? name + ";" : name + ": " + value;
      t.headers = curl_slist_append(t.headers, line.c_str());
    }
    t.headers = curl_slist_append(t.headers, "Expect:");  // no 100-continue round trip
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t.headers);

    if (method == "GET") {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
      if (method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method.c_str());
      if (method != "DELETE" || !body.empty()) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body.c_str());
      }
    }

    // An empty proxy also turns off the *_proxy environment variables: `proxy:` is the one
    // place that says.
    curl_easy_setopt(e, CURLOPT_PROXY, request.proxy.c_str());
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                     request.http2 ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_1_1);
    // Over TLS, a request to a host being connected to waits for the handshake's answer (ALPN)
    // and multiplexes on HTTP/2 rather than dial another connection. Never over plain HTTP:
    // there the answer is only known from the first response, and requests would queue.
    if (request.http2 && url.rfind("https:", 0) == 0) curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    // The TLS settings hold for the site and for an https:// proxy alike.
    // ca_file replaces the system's CAs: Debian's libcurl also reads /etc/ssl/certs (CAPATH)
    // unless told not to. An edited file is read again within a minute (curl caches a CA
    // store for a day by default).
    if (!request.ca_file.empty()) {
      curl_easy_setopt(e, CURLOPT_CAINFO, request.ca_file.c_str());
      curl_easy_setopt(e, CURLOPT_CAPATH, nullptr);
      curl_easy_setopt(e, CURLOPT_PROXY_CAINFO, request.ca_file.c_str());
      curl_easy_setopt(e, CURLOPT_PROXY_CAPATH, nullptr);
      curl_easy_setopt(e, CURLOPT_CA_CACHE_TIMEOUT, 60L);
    }
    if (!request.verify_tls) {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
      curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(e, CURLOPT_PROXY_SSL_VERIFYHOST, 0L);
    }
    if (request.cookies) {
      curl_easy_setopt(e, CURLOPT_SHARE, static_cast<CURLSH*>(request.cookies->handle()));
      curl_easy_setopt(e, CURLOPT_COOKIEFILE, "");  // the cookie engine on, reading no file
    }
  }

  // One exchange, no redirect following. Fills `result` (status, body, headers, or an error);
  // returns the Location of a redirect response, empty otherwise.
  asio::awaitable<std::string> exchange(const FetchRequest& request, const std::string& text,
                                        const config::Url& url, const std::string& method,
                                        const std::string& body, bool same_origin,
                                        Clock::time_point start, Clock::time_point deadline,
                                        FetchResult& result, std::source_location at) {
    result.body.clear();
    if (closed) {
      result.error_kind = "cancelled";
      result.error_message = "the request was not sent: the fetcher is closed";
      co_return std::string();
    }
    Transfer t(*this, request.group, request.max_body, request.cut_body, result);
    configure(t, request, text, method, body, same_origin, deadline);
    if (CURLMcode rc = curl_multi_add_handle(multi, t.easy); rc != CURLM_OK) {
      result.error_kind = "read";
      result.error_message = std::string("cannot start the request: ") + curl_multi_strerror(rc);
      co_return std::string();
    }
    t.added = true;
    transfers.insert(&t);
    while (!t.done) {
      t.wake.expires_at(Clock::time_point::max());
      co_await t.wake.async_wait(asio::experimental::as_tuple(here(at)));
    }
    result.elapsed = Clock::now() - start;
    co_return classify(t, request, url, result);
  }

  std::string classify(Transfer& t, const FetchRequest& request, const config::Url& url,
                       FetchResult& result) {
    CURL* e = t.easy;
    auto fail = [&](const char* kind, std::string message) {
      result.error_kind = kind;
      result.error_message = std::move(message);
      result.body.clear();
      return std::string();
    };
    if (t.cancelled) return fail("cancelled", "the request was cancelled before the response came");
    if (t.headers_too_large)
      return fail("too_large",
                  fmt::format("response headers larger than {} KB", kMaxHeaderBytes / 1024));
    if (t.body_too_large && t.cut_body) return response(e, result);  // cut, as asked
    if (t.body_too_large || t.code == CURLE_FILESIZE_EXCEEDED)
      return fail("too_large",
                  fmt::format("body larger than max_body ({} bytes)", request.max_body));
    if (t.code == CURLE_OK) return response(e, result);
    const std::string detail = t.error[0] ? t.error : curl_easy_strerror(t.code);
    // How far it came: a TCP connection (0 for a reused one), the request about to go out.
    curl_off_t connected = 0, sending = 0;
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connected);
    curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &sending);
    const bool tls = url.scheme == "https";
    switch (t.code) {
      case CURLE_COULDNT_RESOLVE_HOST: return fail("dns", "cannot resolve host '" + url.host + "'");
      case CURLE_COULDNT_RESOLVE_PROXY:
        return fail("dns", "cannot resolve the proxy's host (" + detail + ")");
      case CURLE_COULDNT_CONNECT:
        return fail("connect", request.proxy.empty()
                                   ? "cannot connect to " + url.origin()
                                   : "cannot connect through the proxy (" + detail + ")");
      case CURLE_OPERATION_TIMEDOUT:
        // curl records no connect time when the TLS handshake is what stalled; its message
        // says so ("SSL connection timeout").
        if (sending == 0 && tls && (connected > 0 || detail.find("SSL") != std::string::npos))
          return fail("tls", "TLS: the handshake with " + url.origin() + " did not complete (" +
                                 detail + ")");
        if (sending == 0)
          return fail("timeout", "connect to " + url.origin() + " timed out after " +
                                     seconds(std::min(request.connect_timeout, request.timeout)));
        return fail("timeout", "response not complete within " + seconds(request.timeout));
      case CURLE_SSL_CONNECT_ERROR:
      case CURLE_PEER_FAILED_VERIFICATION:
      case CURLE_SSL_CERTPROBLEM:
      case CURLE_SSL_CIPHER:
      case CURLE_SSL_CACERT_BADFILE:
      case CURLE_SSL_ISSUER_ERROR:
      case CURLE_SSL_ENGINE_NOTFOUND:
      case CURLE_SSL_ENGINE_SETFAILED:
      case CURLE_SSL_ENGINE_INITFAILED:
      case CURLE_SSL_CRL_BADFILE:
      case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      case CURLE_SSL_INVALIDCERTSTATUS:
      case CURLE_USE_SSL_FAILED: return fail("tls", "TLS: " + detail);
      case CURLE_OUT_OF_MEMORY:
        // What curl 7.88 answers for one response header line over its 100 KB limit (its
        // error buffer stays empty).
        return fail("too_large",
                    "a response header line longer than 100 KB (curl: " + detail + ")");
      case CURLE_URL_MALFORMAT: return fail("parse", "curl cannot use this URL (" + detail + ")");
      case CURLE_BAD_CONTENT_ENCODING:
        return fail("parse", "cannot decode the body (" + detail + ")");
      default:
        // Before the handshake finished, a failure on a TLS connection is the handshake's.
        if (tls && connected > 0 && sending == 0 &&
            (t.code == CURLE_RECV_ERROR || t.code == CURLE_SEND_ERROR))
          return fail("tls", "TLS: " + detail);
        // A short body, a bad chunk, a reset, not HTTP: never a result.
        return fail("read", "the connection failed during the exchange (" + detail + ")");
    }
  }

  // A response came: its status, version and the headers the engine acts on; the Location of
  // a redirect, empty otherwise.
  static std::string response(CURL* e, FetchResult& result) {
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    long version = 0;
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &version);
    result.status = static_cast<int>(status);
    result.http_version = version == CURL_HTTP_VERSION_2_0   ? "2"
                          : version == CURL_HTTP_VERSION_3   ? "3"
                          : version == CURL_HTTP_VERSION_1_0 ? "1.0"
                                                             : "1.1";
    result.retry_after = header(e, "Retry-After");
    result.etag = header(e, "ETag");
    result.last_modified = header(e, "Last-Modified");
    result.content_type = header(e, "Content-Type");
    bool redirect =
        status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
    return redirect ? header(e, "Location") : std::string();
  }

  asio::io_context& io;
  asio::steady_timer timer;                               // curl's
  Clock::time_point timer_at = Clock::time_point::max();  // when `timer` fires; max: unarmed
  Clock::time_point curl_at = Clock::time_point::max();   // when curl wants to act; max: never
  bool act_posted = false;                                // an act "as soon as possible" is posted
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);  // false once destroyed
  CURLM* multi;
  std::unordered_map<curl_socket_t, std::shared_ptr<Socket>> sockets;
  std::unordered_set<Transfer*> transfers;  // in the multi handle
  bool closed = false;
};

Fetcher::Fetcher(asio::io_context& io, std::size_t max_connections)
    : state_(std::make_unique<State>(io, static_cast<long>(max_connections))) {}

Fetcher::~Fetcher() = default;

void Fetcher::cancel(std::uint64_t group) {
  state_->cancel(group, false);
}

void Fetcher::close() {
  state_->close();
}

std::size_t Fetcher::in_flight() const {
  return state_->transfers.size();
}

asio::awaitable<FetchResult> Fetcher::fetch(FetchRequest request, std::source_location at) {
  FetchResult result;
  const auto start = Clock::now();
  const auto deadline = start + request.timeout;
  std::string origin;  // of the request's own URL: credentials go there only
  std::string current = request.url;
  std::string method = request.method;
  std::string body = request.body;
  std::vector<std::string> visited{current};
  for (int hop = 0;; ++hop) {
    auto url = config::parse_url(current);
    if (!url) {
      result.error_kind = "parse";
      result.error_message = "not an absolute http(s) URL: " + current;
      co_return result;
    }
    if (hop == 0) origin = url->origin();
    const bool same_origin = hop == 0 || url->origin() == origin;
    std::string location = co_await state_->exchange(request, current, *url, method, body,
                                                     same_origin, start, deadline, result, at);
    if (!result.ok() || location.empty()) {
      if (hop > 0 && result.ok()) result.final_url = current;
      co_return result;
    }
    // A redirect: follow it, within bounds, never in circles.
    auto next = config::resolve_url(current, location);
    if (!next || !config::parse_url(*next)) {
      result.error_kind = "http";
      result.error_message = "redirect to a URL that is not http(s): '" + location + "'";
      result.body.clear();
      co_return result;
    }
    if (std::find(visited.begin(), visited.end(), *next) != visited.end()) {
      std::string chain;
      for (const auto& v : visited) chain += v + " -> ";
      result.error_kind = "redirect_loop";
      result.error_message = "redirect loop: " + chain + *next;
      result.body.clear();
      co_return result;
    }
    if (hop >= request.max_redirects) {
      result.error_kind = "redirect_loop";
      result.error_message =
          fmt::format("more than {} redirects (the last to {})", request.max_redirects, *next);
      result.body.clear();
      co_return result;
    }
    // 303, and 301/302 after a POST, continue as a GET without the body (what browsers do).
    if (result.status == 303 ||
        ((result.status == 301 || result.status == 302) && method == "POST")) {
      method = method == "HEAD" ? "HEAD" : "GET";
      body.clear();
    }
    visited.push_back(*next);
    current = *next;
  }
}

std::size_t connections_to_keep(int concurrency, std::uint64_t open_files) {
  std::uint64_t idle = 1024;
  if (open_files > 0) idle = std::min<std::uint64_t>(idle, open_files / 2);
  return std::max<std::size_t>(static_cast<std::size_t>(std::max(concurrency, 1)),
                               static_cast<std::size_t>(idle));
}

FetchRequest request_for(const config::Job& job, const std::string& url) {
  FetchRequest r;
  r.url = url;
  r.method = job.method;
  r.headers = job.headers;
  r.body = job.body;
  r.connect_timeout = job.connect_timeout;
  r.timeout = job.timeout;
  r.user_agent = job.user_agent;
  r.max_body = job.max_body;
  r.proxy = job.proxy;
  r.max_redirects = job.max_redirects;
  r.ca_file = job.tls.ca_file;
  r.verify_tls = job.tls.verify;
  r.http2 = job.http2;
  return r;
}

namespace {
asio::awaitable<void> fetch_into(Fetcher& fetcher, FetchRequest request, FetchResult& out) {
  out = co_await fetcher.fetch(std::move(request));
}
}  // namespace

FetchResult fetch_blocking(const FetchRequest& request) {
  asio::io_context io(1);
  FetchResult out;
  std::exception_ptr failed;
  Fetcher fetcher(io);
  // Stops the loop when the fetch is done: curl may keep a timer for its idle connections.
  asio::co_spawn(io, fetch_into(fetcher, request, out), [&](std::exception_ptr e) {
    failed = e;
    io.stop();
  });
  io.run();
  if (failed) std::rethrow_exception(failed);
  return out;
}

}  // namespace scraperd::daemon
