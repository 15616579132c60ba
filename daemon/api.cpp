#include "daemon/api.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "daemon/format.h"
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

void reply_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  "application/json");
}

void reply_error(httplib::Response& res, int status, const std::string& message) {
  reply_json(res, status, {{"error", message}});
}

// Filter from ?since=&limit=&kind=&changed=; false (and the reply sent) when one is bad.
bool read_filter(const httplib::Request& req, httplib::Response& res, storage::Filter& f) {
  if (req.has_param("since")) {
    auto since = parse_since(req.get_param_value("since"));
    if (!since) {
      reply_error(res, 400, "since must be a duration (1h, 30m, 2d) or a date (2026-11-24 08:00)");
      return false;
    }
    f.since = since;
  }
  if (req.has_param("limit")) {
    std::string text = req.get_param_value("limit");
    int n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size() || n < 1 || n > 10'000) {
      reply_error(res, 400, "limit must be a number from 1 to 10000");
      return false;
    }
    f.limit = n;
  }
  if (req.has_param("kind")) {
    f.kind = req.get_param_value("kind");
    if (!is_error_kind(f.kind)) {
      reply_error(res, 400, "kind must be one of: " + error_kinds());
      return false;
    }
  }
  if (req.has_param("job")) f.job = req.get_param_value("job");
  f.changed_only = req.has_param("changed") && req.get_param_value("changed") != "0";
  return true;
}

// host and port of "127.0.0.1:9184" or "[::1]:9184".
std::pair<std::string, int> split_listen(const std::string& listen) {
  auto colon = listen.rfind(':');
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return {host, std::atoi(listen.c_str() + colon + 1)};
}

}  // namespace

// Failed commit attempts in a row (retried after 0.1, 0.2, 0.4 s, ...) that make /healthz 503.
constexpr int kUnhealthyAfterFailures = 3;

struct Api::Impl {
  Impl(config::Api s, std::string db, Metrics& m, const storage::Writer& w, ApiHooks h)
      : settings(std::move(s)),
        db_path(std::move(db)),
        metrics(m),
        writer(w),
        hooks(std::move(h)) {}

  config::Api settings;
  std::string db_path;
  Metrics& metrics;
  const storage::Writer& writer;
  ApiHooks hooks;
  httplib::Server server;
  std::thread thread;

  // Every storage::Error becomes a 503 (no database yet, locked, unreadable): never a crash.
  template <typename F>
  void query(httplib::Response& res, F&& f) {
    try {
      f();
    } catch (const storage::Error& e) {
      reply_error(res, 503, e.what());
    }
  }

  void routes() {
    server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      if (settings.token.empty() || req.path == "/healthz")
        return httplib::Server::HandlerResponse::Unhandled;
      if (req.get_header_value("Authorization") == "Bearer " + settings.token)
        return httplib::Server::HandlerResponse::Unhandled;
      res.set_header("WWW-Authenticate", "Bearer");
      reply_error(res, 401, "this API needs 'Authorization: Bearer <api.token>'");
      return httplib::Server::HandlerResponse::Handled;
    });
    server.Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
      // Unhealthy while commits keep failing: rows pile up in memory and are lost if the
      // daemon stops before the database takes them again.
      if (int failing = writer.failing(); failing >= kUnhealthyAfterFailures) {
        res.status = 503;
        res.set_content(fmt::format("database: {} commits failed in a row, {} rows waiting: {}\n",
                                    failing, writer.queued(), writer.last_error()),
                        "text/plain");
        return;
      }
      res.set_content("ok\n", "text/plain");
    });
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(
          metrics.render({writer.queued(), writer.committed(), writer.commit_failures()}),
          "text/plain; version=0.0.4; charset=utf-8");
    });
    server.Get("/api/jobs", [this](const httplib::Request&, httplib::Response& res) {
      query(res, [&] { reply_json(res, 200, to_json(storage::query_jobs(db_path))); });
    });
    server.Get(R"(/api/jobs/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
      std::string name = req.matches[1];
      query(res, [&] {
        auto jobs = to_json(storage::query_jobs(db_path));
        for (auto& job : jobs)
          if (job["job"] == name) {
            storage::Filter f;
            f.job = name;
            f.limit = 10;
            reply_json(res, 200,
                       {{"job", job}, {"runs", to_json(storage::query_runs(db_path, f))}});
            return;
          }
        reply_error(res, 404, "no job '" + name + "'");
      });
    });
    server.Get(R"(/api/jobs/([^/]+)/results)", [this](const httplib::Request& req,
                                                      httplib::Response& res) {
      storage::Filter f;
      if (!read_filter(req, res, f)) return;
      f.job = req.matches[1];
      query(res, [&] { reply_json(res, 200, to_json(storage::query_results(db_path, f))); });
    });
    server.Get("/api/errors", [this](const httplib::Request& req, httplib::Response& res) {
      storage::Filter f;
      if (!read_filter(req, res, f)) return;
      query(res, [&] { reply_json(res, 200, to_json(storage::query_errors(db_path, f))); });
    });
    server.Post("/api/reload", [this](const httplib::Request&, httplib::Response& res) {
      ReloadOutcome outcome = hooks.reload();
      reply_json(res, outcome.ok ? 200 : 422, {{"ok", outcome.ok}, {"errors", outcome.errors}});
    });
    server.Post(R"(/api/jobs/([^/]+)/run)",
                [this](const httplib::Request& req, httplib::Response& res) {
                  std::string name = req.matches[1];
                  switch (hooks.run_now(name)) {
                    case RunNow::kStarted: reply_json(res, 202, {{"started", name}}); break;
                    case RunNow::kUnknownJob: reply_error(res, 404, "no job '" + name + "'"); break;
                    case RunNow::kAlreadyRunning:
                      reply_error(res, 409, "job '" + name + "' is running");
                      break;
                  }
                });
    server.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (!res.body.empty()) return;
      reply_error(res, res.status,
                  res.status == 404   ? "no such endpoint"
                  : res.status == 400 ? "bad request (a POST needs a Content-Length, even 0)"
                                      : "HTTP " + std::to_string(res.status));
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
};

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
  impl_->routes();
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
