#include "daemon/service/api.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include <malloc.h>
#include <unistd.h>

#include "config/text.h"
#include "daemon/cli/format.h"
#include "daemon/service/api_impl.h"
#include "daemon/service/ui.h"
#include "storage/store.h"

namespace scraperd::daemon {
namespace {

// The token of the systemd credential "api-token" (LoadCredential=api-token:FILE), or "".
std::string credential_token() {
  const char* dir = std::getenv("CREDENTIALS_DIRECTORY");
  if (!dir || !*dir) return "";
  std::ifstream in(std::string(dir) + "/api-token", std::ios::binary);
  std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  return token;
}

// host and port of "127.0.0.1:9184" or "[::1]:9184".
std::pair<std::string, int> split_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return {host, std::atoi(listen.c_str() + colon + 1)};
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The segments of the request target's path, each percent-decoded, so that a job named "a/b"
// (written a%2Fb) is one segment. Empty segments are dropped ("/api//jobs/" is /api/jobs).
std::vector<std::string> path_segments(const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= path.size()) {
    auto slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    std::string segment;
    for (std::size_t i = at; i < slash; ++i) {
      if (path[i] == '%' && i + 2 < slash && hex(path[i + 1]) >= 0 && hex(path[i + 2]) >= 0) {
        segment += static_cast<char>(hex(path[i + 1]) * 16 + hex(path[i + 2]));
        i += 2;
      } else {
        segment += path[i];
      }
    }
    if (!segment.empty()) out.push_back(std::move(segment));
    at = slash + 1;
  }
  return out;
}

bool same_secret(std::string_view given, const std::string& token) {  // constant time
  unsigned char diff = given.size() == token.size() ? 0 : 1;
  for (std::size_t i = 0; i < token.size(); ++i)
    diff |= static_cast<unsigned char>(token[i] ^ (i < given.size() ? given[i] : 0));
  return diff == 0;
}

// "Authorization: Bearer TOKEN", the scheme in any case, spaces around ignored; the token is
// compared in constant time.
bool authorized(const httplib::Request& req, const std::string& token) {
  const std::string header = req.get_header_value("Authorization");
  std::string_view h = config::trim(header);
  auto space = h.find(' ');
  if (space == std::string_view::npos || config::lower(h.substr(0, space)) != "bearer")
    return false;
  return same_secret(config::trim(h.substr(space + 1)), token);
}

// The dashboard's login cookie holds the token in hex (any byte of a token is then a valid
// cookie value).
constexpr std::string_view kCookie = "scraperd_token";

std::string to_hex(std::string_view s) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// The value of the cookie `name` in the request's Cookie headers, or "".
std::string cookie(const httplib::Request& req, std::string_view name) {
  for (std::size_t n = 0; n < req.get_header_value_count("Cookie"); ++n) {
    const std::string header = req.get_header_value("Cookie", n);
    std::string_view rest = header;
    while (!rest.empty()) {
      auto semi = rest.find(';');
      std::string_view pair = config::trim(rest.substr(0, semi));
      rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
      auto eq = pair.find('=');
      if (eq != std::string_view::npos && config::trim(pair.substr(0, eq)) == name)
        return std::string(config::trim(pair.substr(eq + 1)));
    }
  }
  return "";
}

bool cookie_authorized(const httplib::Request& req, const std::string& token) {
  std::string given = cookie(req, kCookie);
  return !given.empty() && same_secret(given, to_hex(token));
}

bool loopback(const std::string& addr) {
  return addr.starts_with("127.") || addr == "::1" || addr.starts_with("::ffff:127.");
}

// True when the client asks for HTML (a browser) rather than JSON (curl sends */*).
bool wants_html(const httplib::Request& req) {
  return req.get_header_value("Accept").find("text/html") != std::string::npos;
}

// The Origin header's host[:port] is the Host the request was sent to: the POST comes from a
// page of the daemon itself, not from another site (CSRF).
bool same_origin(const std::string& origin, const std::string& host) {
  auto scheme = origin.find("://");
  return scheme != std::string::npos && !host.empty() && origin.substr(scheme + 3) == host;
}

// Headers of every dashboard answer: no inline script or style can run, nothing is sniffed,
// framed, or sent as a referrer to another site.
void ui_headers(httplib::Response& res) {
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                 "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                 "base-uri 'none'");
  res.set_header("X-Frame-Options", "DENY");
  // same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on a
  // form POST, and the login form would be refused as cross-origin.
  res.set_header("Referrer-Policy", "same-origin");
}

std::string content_type(std::string_view name) {
  if (name.ends_with(".html")) return "text/html; charset=utf-8";
  if (name.ends_with(".js")) return "text/javascript; charset=utf-8";
  if (name.ends_with(".css")) return "text/css; charset=utf-8";
  return "application/octet-stream";
}

const UiFile* ui_file(std::string_view name) {
  for (const auto& f : ui_files())
    if (f.name == name) return &f;
  return nullptr;
}

void redirect(httplib::Response& res, const std::string& to) {
  res.status = 303;
  res.set_header("Location", to);
  res.set_content("see " + to + "\n", "text/plain");
}

}  // namespace

void Api::Impl::add(std::string method, const std::string& path, std::string about,
                    Handler handle) {
  routes.push_back({std::move(method), path_segments(path), std::move(about), std::move(handle)});
}

// Every request comes here, routed by its percent-decoded path segments.
void Api::Impl::dispatch(const httplib::Request& req, httplib::Response& res) {
  auto segments = path_segments(req.target);
  res.set_header("X-Content-Type-Options", "nosniff");
  std::string method = req.method == "HEAD" ? "GET" : req.method;
  if (!segments.empty() && segments[0] == "ui") return dashboard(req, res, segments);
  // A browser at / goes to the dashboard; API clients get the index below.
  if (segments.empty() && method == "GET" && wants_html(req)) return redirect(res, "/ui/");
  bool health = segments.size() == 1 && segments[0] == "healthz";
  bool by_header = !settings.token.empty() && authorized(req, settings.token);
  bool by_cookie = !by_header && !settings.token.empty() && cookie_authorized(req, settings.token);
  if (!settings.token.empty() && !health && !by_header && !by_cookie) {
    res.set_header("WWW-Authenticate", "Bearer");
    return reply_error(res, 401, "this API needs 'Authorization: Bearer <api.token>'");
  }
  if (method != "GET" && !csrf_safe(req, res, by_cookie)) return;
  std::vector<std::string> allowed;
  for (const auto& route : routes) {
    if (route.path.size() != segments.size()) continue;
    std::vector<std::string> args;
    bool match = true;
    for (std::size_t i = 0; match && i < segments.size(); ++i) {
      if (route.path[i] == "*")
        args.push_back(segments[i]);
      else
        match = route.path[i] == segments[i];
    }
    if (!match) continue;
    if (route.method == method) return route.handle(req, res, args);
    allowed.push_back(route.method == "GET" ? "GET, HEAD" : route.method);
  }
  if (allowed.empty()) return reply_error(res, 404, "no such endpoint (GET / lists them)");
  std::string allow;
  for (const auto& a : allowed) allow += (allow.empty() ? "" : ", ") + a;
  res.set_header("Allow", allow);
  reply_error(res, 405, req.method + " is not allowed here (allowed: " + allow + ")");
}

// Browsers send Origin with every POST. An action from a page must come from the daemon's
// own pages (another site's form or script cannot use the login cookie), and needs a token:
// without one, the dashboard is read-only. Clients that send no Origin (curl, scripts)
// authenticate with the header, which a browser never adds by itself; a request that only
// has the cookie must carry Origin. False, with the answer sent, when refused.
bool Api::Impl::csrf_safe(const httplib::Request& req, httplib::Response& res, bool by_cookie) {
  const std::string origin = req.get_header_value("Origin");
  if (origin.empty()) {
    if (!by_cookie) return true;
    reply_error(res, 403, "a request authenticated by the dashboard's cookie needs Origin");
    return false;
  }
  if (settings.token.empty()) {
    reply_error(res, 403, "actions from a browser need api.token (the dashboard is read-only)");
    return false;
  }
  if (!same_origin(origin, req.get_header_value("Host"))) {
    reply_error(res, 403, "cross-origin request refused (Origin " + origin + ")");
    return false;
  }
  return true;
}

// /ui/...: the dashboard. Its script and stylesheet are public; its pages need the token
// (the login cookie, or the header), or, with no token configured, a client on loopback.
void Api::Impl::dashboard(const httplib::Request& req, httplib::Response& res,
                          const std::vector<std::string>& segments) {
  ui_headers(res);
  std::string method = req.method == "HEAD" ? "GET" : req.method;
  std::string page = segments.size() == 1 ? "index" : segments[1];
  if (segments.size() > 2) return reply_error(res, 404, "no such page");
  if (page == "login" && method == "POST") return login(req, res);
  if (page == "logout" && method == "POST") {
    res.set_header("Set-Cookie",
                   std::string(kCookie) + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
    return redirect(res, "/ui/login");
  }
  const UiFile* file = ui_file(page.find('.') == std::string::npos ? page + ".html" : page);
  if (!file) return reply_error(res, 404, "no such page");
  if (method != "GET") {
    res.set_header("Allow", "GET, HEAD");
    return reply_error(res, 405, req.method + " is not allowed here (allowed: GET, HEAD)");
  }
  bool page_html = file->name.ends_with(".html") && file->name != "login.html";
  if (page_html && settings.token.empty() && !loopback(req.remote_addr))
    return reply_error(res, 403,
                       "without api.token the dashboard is served to loopback clients only");
  if (page_html && !settings.token.empty() && !authorized(req, settings.token) &&
      !cookie_authorized(req, settings.token))
    return redirect(res, "/ui/login");
  // Pages are read every time; the script and stylesheet may be kept but are checked
  // (the binary changes them on upgrade).
  res.set_header("Cache-Control", file->name.ends_with(".html") ? "no-store" : "no-cache");
  res.set_content(std::string(file->body), content_type(file->name));
}

// POST /ui/login, form field `token`: the cookie, and on to the jobs; a wrong token back to
// the form with ?failed=1.
void Api::Impl::login(const httplib::Request& req, httplib::Response& res) {
  const std::string origin = req.get_header_value("Origin");
  if (!origin.empty() && !same_origin(origin, req.get_header_value("Host")))
    return reply_error(res, 403, "cross-origin request refused (Origin " + origin + ")");
  if (settings.token.empty()) return redirect(res, "/ui/");
  std::string given = req.has_param("token") ? req.get_param_value("token") : "";
  if (!same_secret(given, settings.token)) return redirect(res, "/ui/login?failed=1");
  res.set_header("Set-Cookie", std::string(kCookie) + "=" + to_hex(settings.token) +
                                   "; Path=/; HttpOnly; SameSite=Strict");
  redirect(res, "/ui/");
}

void Api::Impl::serve() {
  define_routes();
  // A request without Content-Length or Transfer-Encoding has no body (RFC 9112 6.3), but
  // cpp-httplib would wait for one on a POST until the connection closes: such requests are
  // answered here, before it reads. The others reach the catch-all handlers below.
  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    bool body_expected = req.method == "POST" || req.method == "PUT" || req.method == "PATCH" ||
                         req.method == "DELETE";
    if (body_expected && !req.has_header("Content-Length") &&
        !req.has_header("Transfer-Encoding")) {
      dispatch(req, res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  const std::string any = R"([\s\S]*)";
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    dispatch(req, res);
  };
  server.Get(any, handler);
  server.Post(any, handler);
  server.Put(any, handler);
  server.Patch(any, handler);
  server.Delete(any, handler);
  server.Options(any, handler);
  server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    reply_error(res, res.status, "HTTP " + std::to_string(res.status));
  });
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr e) {
        std::string what = "internal error";
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          what = ex.what();
        } catch (...) {
        }
        spdlog::error("api: {}", what);
        reply_error(res, 500, what);
      });
}

Api::Api(config::Api settings, std::string db_path, Metrics& metrics, const storage::Writer& writer,
         ApiHooks hooks)
    : impl_(std::make_unique<Impl>(std::move(settings), std::move(db_path), metrics, writer,
                                   std::move(hooks))) {
  // No api.token in the file: the systemd credential, if the unit passes one.
  if (impl_->settings.token.empty()) impl_->settings.token = credential_token();
}

Api::~Api() {
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

bool Api::start(std::string* error) {
  // glibc raises its mmap and trim thresholds (up to 32 MB) each time a large block is freed:
  // after a few big answers, each arena of cpp-httplib's pool threads keeps megabytes it no
  // longer uses (+13 MB over the dashboard's bench). Fixed at glibc's own starting values,
  // large blocks are mapped and unmapped and freed tops go back to the system (+2 MB).
  // Process-wide: the daemon's other large blocks are mapped the same way.
  ::mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  ::mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  impl_->serve();
  auto [host, port] = split_listen(impl_->settings.listen);
  // cpp-httplib's default sets SO_REUSEPORT, with which a second daemon binds the same port
  // and the kernel splits the connections between them. SO_REUSEADDR alone still lets a
  // restart bind over connections in TIME_WAIT, and fails on a port another socket listens on.
  impl_->server.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (port == 0)
    port_ = impl_->server.bind_to_any_port(host);
  else
    port_ = impl_->server.bind_to_port(host, port) ? port : -1;
  if (port_ <= 0) {
    *error = "api: cannot listen on " + impl_->settings.listen + ": " + std::strerror(errno);
    return false;
  }
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  while (!impl_->server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  spdlog::info("api: listening on http://{}:{}{}",
               host.find(':') != std::string::npos ? "[" + host + "]" : host, port_,
               impl_->settings.token.empty() ? "" : " (token required)");
  return true;
}

}  // namespace scraperd::daemon
