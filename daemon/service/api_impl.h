// Internal to daemon/service/api*.cpp: the API server's state and handlers, shared by
// api.cpp (the server: start/stop, dispatch, auth, cookie and CSRF checks, the dashboard's
// files) and api_routes.cpp (the route table and its handlers). Not for other modules.
#pragma once

#include <httplib.h>

#include <cstddef>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "daemon/service/api.h"
#include "storage/store.h"

namespace scraperd::daemon {

inline void reply_json(httplib::Response& res, int status, const nlohmann::json& body) {
  res.status = status;
  res.set_content(body.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                  "application/json");
}

inline void reply_error(httplib::Response& res, int status, const std::string& message) {
  reply_json(res, status, {{"error", message}});
}

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

  // A route: its method, its path (a "*" segment matches any one segment: a job name), what it
  // does (for the index at /), and its handler, given the segments the "*"s matched.
  using Handler = std::function<void(const httplib::Request&, httplib::Response&,
                                     const std::vector<std::string>&)>;
  struct Route {
    std::string method;
    std::vector<std::string> path;
    std::string about;
    Handler handle;
  };
  std::vector<Route> routes;

  // Every storage::Error becomes a 503 (no database yet, locked, unreadable): never a crash.
  template <typename F>
  void query(httplib::Response& res, F&& f) {
    try {
      f();
    } catch (const storage::Error& e) {
      reply_error(res, 503, e.what());
    }
  }

  void add(std::string method, const std::string& path, std::string about, Handler handle);

  storage::Table jobs_table(const storage::Filter& f);
  nlohmann::json jobs(const storage::Filter& f);

  // /api/jobs's filter and page: ?q= (in the name or a URL of the job, any case), ?state=,
  // ?job= (that name), ?offset=, ?limit=, and ?recent=N (each job's last N finished runs).
  struct JobsQuery {
    std::string q, state, job;
    std::size_t offset = 0;
    std::size_t limit = std::numeric_limits<std::size_t>::max();
    int recent = 0;
  };

  static std::string shown_state(const std::string& state, const storage::Cell& last_status);
  storage::Table jobs_page(const JobsQuery& q, std::size_t& total, std::vector<std::string>& extra);
  std::vector<std::string> recent_runs(const storage::Table& jobs, int n);
  struct Series;
  void define_routes();

  void dispatch(const httplib::Request& req, httplib::Response& res);
  bool csrf_safe(const httplib::Request& req, httplib::Response& res, bool by_cookie);
  void dashboard(const httplib::Request& req, httplib::Response& res,
                 const std::vector<std::string>& segments);
  void login(const httplib::Request& req, httplib::Response& res);
  void serve();
};

}  // namespace scraperd::daemon
