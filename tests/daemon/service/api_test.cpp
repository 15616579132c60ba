// The daemon's HTTP API, through a real HTTP client against the real binary.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "storage/writer.h"
#include "tests/support/http_server.h"
#include "tests/support/process.h"
#include "tests/support/sql.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;
using namespace std::chrono_literals;
using test::eventually;

namespace {

// Checks the Prometheus text exposition format (0.0.4) the way a scraper reads it: HELP and
// TYPE before a family's samples, sample lines well formed, histograms cumulative with a
// +Inf bucket equal to _count. Returns the samples by "name{labels}", or fails.
std::map<std::string, double> parse_metrics(const std::string& text) {
  static const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? )"
      R"(([-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?|NaN|[-+]Inf)$)");
  std::map<std::string, std::string> types;
  std::map<std::string, double> samples;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("# HELP ")) continue;
    if (line.starts_with("# TYPE ")) {
      std::istringstream t(line.substr(7));
      std::string name, type;
      t >> name >> type;
      CHECK((type == "counter" || type == "gauge" || type == "histogram"));
      types[name] = type;
      continue;
    }
    std::smatch m;
    INFO(line);
    REQUIRE(std::regex_match(line, m, sample));
    std::string name = m[1];
    std::string family = name;
    for (auto suffix : {"_bucket", "_sum", "_count"})
      if (name.ends_with(suffix) && types.count(name.substr(0, name.size() - strlen(suffix))))
        family = name.substr(0, name.size() - strlen(suffix));
    CHECK(types.count(family) == 1);  // declared before its samples
    samples[name + m[2].str()] = std::stod(m[m.size() - 2].str());
  }
  for (const auto& [family, type] : types) {
    if (type != "histogram") continue;
    std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
    const std::string prefix = family + "_bucket{le=\"";
    for (const auto& [key, v] : samples)
      if (key.starts_with(prefix)) {
        std::string le = key.substr(prefix.size(), key.size() - prefix.size() - 2);
        buckets.emplace_back(le == "+Inf" ? INFINITY : std::stod(le), v);
      }
    std::sort(buckets.begin(), buckets.end());
    REQUIRE_FALSE(buckets.empty());
    for (std::size_t i = 1; i < buckets.size(); ++i)
      CHECK(buckets[i].second >= buckets[i - 1].second);  // cumulative
    CHECK(buckets.back().first == INFINITY);
    CHECK(buckets.back().second == samples[family + "_count"]);
  }
  return samples;
}

}  // namespace

TEST_CASE("HTTP API: token, health, jobs, results, errors, metrics, run now, reload", "[api]") {
  std::atomic<int> hits{0};
  test::HttpServer site;
  site.server().Get("/page", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    res.set_content("<p>ok</p>", "text/html");
  });
  site.start();
  test::TempDir dir;
  auto good =
      "api: {listen: '127.0.0.1:0', token: 'sesame'}\njobs:\n"
      "  - {name: a, url: '" +
      site.url("/page") +
      "', every: 1h, robots: ignore}\n"
      "  - {name: gone, url: '" +
      site.url("/missing") + "', every: 1h, robots: ignore, retries: {max: 0}}\n";
  auto cfg = dir.write("jobs.yaml", good);
  auto db = dir.file("api.db");
  pid_t pid = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);
  int port = 0;
  REQUIRE(eventually([&] {
    std::smatch m;
    std::string log = test::slurp(dir.file("e"));
    static const std::regex listening(R"(api: listening on http://127\.0\.0\.1:(\d+))");
    if (!std::regex_search(log, m, listening)) return false;
    port = std::stoi(m[1]);
    return true;
  }));
  httplib::Client anonymous("127.0.0.1", port), client("127.0.0.1", port);
  client.set_bearer_token_auth("sesame");

  auto health = anonymous.Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  CHECK(health->body == "ok\n");
  for (auto path : {"/api/jobs", "/metrics", "/api/errors"}) {
    auto r = anonymous.Get(path);
    REQUIRE(r);
    CHECK(r->status == 401);
  }

  // The first runs come within an hour's start offset: ask for one now instead.
  auto run = client.Post("/api/jobs/a/run");
  REQUIRE(run);
  CHECK(run->status == 202);
  CHECK(eventually([&] { return hits >= 1; }));
  CHECK(client.Post("/api/jobs/nope/run")->status == 404);
  client.Post("/api/jobs/gone/run");

  REQUIRE(eventually([&] {
    auto r = client.Get("/api/jobs/a/results?limit=5");
    return r && r->status == 200 && !nlohmann::json::parse(r->body).empty();
  }));
  auto results = nlohmann::json::parse(client.Get("/api/jobs/a/results?since=1h")->body);
  CHECK(results[0]["url"] == site.url("/page"));
  CHECK(results[0]["status"] == 200);

  auto jobs = client.Get("/api/jobs");
  REQUIRE(jobs->status == 200);
  CHECK(nlohmann::json::parse(jobs->body).size() == 2);
  auto one = client.Get("/api/jobs/a");
  REQUIRE(one->status == 200);
  CHECK(nlohmann::json::parse(one->body)["job"]["job"] == "a");
  CHECK(client.Get("/api/jobs/none")->status == 404);

  REQUIRE(eventually([&] {
    auto r = client.Get("/api/errors?job=gone&kind=http");
    return r && r->status == 200 && nlohmann::json::parse(r->body).size() == 1;
  }));
  auto bad = client.Get("/api/errors?kind=bogus");
  CHECK(bad->status == 400);
  CHECK_THAT(bad->body, Catch::Contains("kind must be one of"));
  CHECK(client.Get("/api/errors?limit=0")->status == 400);
  CHECK(client.Get("/api/errors?since=yesterday")->status == 400);
  CHECK(client.Get("/api/errors?job=x%27%3B%20DROP%20TABLE%20results%3B--")->status == 200);
  CHECK(client.Get("/nowhere")->status == 404);

  auto metrics = client.Get("/metrics");
  REQUIRE(metrics->status == 200);
  auto samples = parse_metrics(metrics->body);
  CHECK(samples["scraperd_jobs"] == 2);
  CHECK(samples["scraperd_requests_total{job=\"a\",host=\"127.0.0.1:" +
                std::to_string(site.port()) + "\",outcome=\"ok\"}"] >= 1);
  CHECK(samples["scraperd_config_last_reload_successful"] == 1);
  CHECK(samples["scraperd_build_info{version=\"" SCRAPERD_VERSION "\"}"] == 1);
  CHECK(samples["scraperd_runs_total{job=\"a\",status=\"ok\"}"] >= 1);
  CHECK(samples["process_open_fds"] >= 3);
  CHECK(samples["process_resident_memory_bytes"] > 0);
  CHECK(eventually([&] {
    return parse_metrics(client.Get("/metrics")
                             ->body)["scraperd_runs_total{job=\"gone\",status=\"failed\"}"] == 1;
  }));

  // Reload through the API: a bad file is refused with its errors and changes nothing.
  dir.write("jobs.yaml", good + "  - {name: broken, every: 1h}\n");
  auto refused = client.Post("/api/reload");
  REQUIRE(refused);
  CHECK(refused->status == 422);
  auto answer = nlohmann::json::parse(refused->body);
  CHECK(answer["ok"] == false);
  CHECK_THAT(answer["errors"][0].get<std::string>(), Catch::Contains("jobs.yaml:5:"));
  CHECK(parse_metrics(client.Get("/metrics")->body)["scraperd_config_last_reload_successful"] == 0);
  dir.write("jobs.yaml", good);
  auto accepted = client.Post("/api/reload");
  REQUIRE(accepted);
  CHECK(accepted->status == 200);
  CHECK(parse_metrics(client.Get("/metrics")->body)["scraperd_config_last_reload_successful"] == 1);

  kill(pid, SIGTERM);
  CHECK(test::wait_exit(pid) == 0);
}

TEST_CASE("HTTP API: without api.token, the token is the systemd credential api-token", "[api]") {
  test::TempDir dir, credentials;
  credentials.write("api-token", "from-systemd\n");
  auto cfg = dir.write("jobs.yaml", "api: {listen: '127.0.0.1:0'}\njobs: []\n");
  pid_t pid = test::spawn({"run", "--config", cfg, "--db", dir.file("c.db")}, dir.file("o"),
                          dir.file("e"), {"CREDENTIALS_DIRECTORY=" + credentials.file("")});
  test::Reaper reaper(pid);
  int port = 0;
  REQUIRE(eventually([&] {
    std::smatch m;
    std::string log = test::slurp(dir.file("e"));
    static const std::regex listening(R"(api: listening on http://127\.0\.0\.1:(\d+) \(token)");
    if (!std::regex_search(log, m, listening)) return false;
    port = std::stoi(m[1]);
    return true;
  }));
  httplib::Client anonymous("127.0.0.1", port), client("127.0.0.1", port);
  client.set_bearer_token_auth("from-systemd");
  CHECK(anonymous.Get("/metrics")->status == 401);
  CHECK(client.Get("/metrics")->status == 200);
}

TEST_CASE("HTTP API: /metrics counts the engine's runs, changes and webhook deliveries",
          "[api][metrics]") {
  std::atomic<int> version{1};
  test::HttpServer site, hooks;
  site.server().Get("/item", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("<p class=price>" + std::to_string(version.load()) + "</p>", "text/html");
  });
  hooks.server().Post("/hook",
                      [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  hooks.server().Post("/broken",
                      [](const httplib::Request&, httplib::Response& res) { res.status = 500; });
  site.start();
  hooks.start();
  test::TempDir dir;
  // Yearly: no run but the ones the test asks for.
  auto cfg = dir.write("jobs.yaml",
                       "api: {listen: '127.0.0.1:0'}\n"
                       "defaults: {robots: ignore, cron: '0 0 1 1 *', retries: {max: 0}}\njobs:\n"
                       "  - {name: watch, url: '" +
                           site.url("/item") + "', extract: {price: .price}, notify: '" +
                           hooks.url("/hook") +
                           "'}\n"
                           "  - {name: unheard, url: '" +
                           site.url("/item") + "', extract: {price: .price}, notify: '" +
                           hooks.url("/broken") + "'}\n");
  pid_t pid =
      test::spawn({"run", "--config", cfg, "--db", dir.file("m.db")}, dir.file("o"), dir.file("e"));
  test::Reaper reaper(pid);
  int port = 0;
  REQUIRE(eventually([&] {
    std::smatch m;
    std::string log = test::slurp(dir.file("e"));
    static const std::regex listening(R"(api: listening on http://127\.0\.0\.1:(\d+))");
    if (!std::regex_search(log, m, listening)) return false;
    port = std::stoi(m[1]);
    return true;
  }));
  httplib::Client client("127.0.0.1", port);
  auto metric = [&](const std::string& series) {
    return parse_metrics(client.Get("/metrics")->body)[series];
  };
  // Runs both jobs until each has `ok` runs that ended well.
  auto run_both = [&](double ok) {
    return eventually([&] {
      for (auto job : {"watch", "unheard"})
        if (metric("scraperd_runs_total{job=\"" + std::string(job) + "\",status=\"ok\"}") < ok)
          client.Post("/api/jobs/" + std::string(job) + "/run");  // 409 while it runs
      return metric("scraperd_runs_total{job=\"watch\",status=\"ok\"}") >= ok &&
             metric("scraperd_runs_total{job=\"unheard\",status=\"ok\"}") >= ok;
    });
  };
  REQUIRE(run_both(1));  // first sight of the page: not a change
  CHECK(metric("scraperd_changes_total{job=\"watch\"}") == 0);
  version = 2;
  REQUIRE(run_both(2));
  CHECK(metric("scraperd_changes_total{job=\"watch\"}") == 1);
  CHECK(metric("scraperd_changes_total{job=\"unheard\"}") == 1);
  CHECK(metric("scraperd_webhook_deliveries_total{job=\"watch\",outcome=\"ok\"}") == 1);
  CHECK(metric("scraperd_webhook_deliveries_total{job=\"unheard\",outcome=\"failed\"}") == 1);
  CHECK(metric("scraperd_runs_total{job=\"watch\",status=\"failed\"}") == 0);
}

namespace {

// Starts `scraperd run` on `cfg` and `db` and returns the API's port, read off its log.
int start_daemon(const test::TempDir& dir, const std::string& cfg, const std::string& db,
                 pid_t& pid, const std::string& log = "e") {
  pid = test::spawn({"run", "--config", cfg, "--db", db}, dir.file("o"), dir.file(log));
  int port = 0;
  bool up = eventually([&] {
    std::smatch m;
    std::string text = test::slurp(dir.file(log));
    static const std::regex listening(R"(api: listening on http://127\.0\.0\.1:(\d+))");
    if (!std::regex_search(text, m, listening)) return false;
    port = std::stoi(m[1]);
    return true;
  });
  REQUIRE(up);
  return port;
}

// Sends `request` as it is over a new connection and returns what comes back until the server
// closes it (bounded by a 30 s receive timeout, far beyond any answer here).
std::string raw_http(int port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{30, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(request.size()));
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    if (out.find("\r\n\r\n") != std::string::npos) {  // a whole answer: headers and body
      auto head = out.substr(0, out.find("\r\n\r\n"));
      std::smatch m;
      static const std::regex length(R"(Content-Length: (\d+))", std::regex::icase);
      if (std::regex_search(head, m, length) && out.size() >= head.size() + 4 + std::stoul(m[1]))
        break;
    }
  }
  ::close(fd);
  return out;
}

}  // namespace

TEST_CASE("HTTP API: decoded job names, 405, bodiless POSTs, queries across jobs, index", "[api]") {
  test::HttpServer site;
  site.server().Get(R"(/p/(\d+))", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("<p>ok</p>", "text/html");
  });
  site.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml",
                       "api: {listen: '127.0.0.1:0', token: 'sesame'}\n"
                       "defaults: {robots: ignore}\njobs:\n"
                       "  - {name: 'shop/eu', url: '" +
                           site.url("/p/1") +
                           "', every: 1h}\n"
                           "  - {name: 'café', url: '" +
                           site.url("/p/2") +
                           "', every: 1h}\n"
                           // A hostile name for the JSON writer: quote, backslash.
                           "  - {name: \"q\\\"x\\\\y<\", url: '" +
                           site.url("/p/3") + "', cron: '0 0 1 1 *'}\n");
  auto db = dir.file("api.db");
  pid_t pid = 0;
  int port = start_daemon(dir, cfg, db, pid);
  test::Reaper reaper(pid);
  httplib::Client client("127.0.0.1", port);
  client.set_default_headers({{"Authorization", "bEaReR   sesame"}});  // any case, any spaces

  SECTION("the scheme of Authorization in any case; a wrong token is still refused") {
    CHECK(client.Get("/api/jobs")->status == 200);
    httplib::Client wrong("127.0.0.1", port);
    wrong.set_default_headers({{"Authorization", "Bearer sesam"}});
    CHECK(wrong.Get("/api/jobs")->status == 401);
    wrong.set_default_headers({{"Authorization", "Basic sesame"}});
    CHECK(wrong.Get("/api/jobs")->status == 401);
  }

  SECTION("/api/jobs escapes what it writes: a hostile name reads back as it was") {
    auto r = client.Get("/api/jobs");
    REQUIRE(r->status == 200);
    auto jobs = nlohmann::json::parse(r->body);
    std::set<std::string> names;
    for (const auto& j : jobs) names.insert(j["job"].get<std::string>());
    CHECK(names == std::set<std::string>{"café", "q\"x\\y<", "shop/eu"});
  }

  SECTION("job names with / and non-ASCII are reachable percent-encoded") {
    auto run = client.Post("/api/jobs/shop%2Feu/run");
    REQUIRE(run);
    CHECK(run->status == 202);
    CHECK(client.Post("/api/jobs/caf%C3%A9/run")->status == 202);
    REQUIRE(eventually([&] {
      auto r = client.Get("/api/results?limit=10");
      return r && r->status == 200 && nlohmann::json::parse(r->body).size() == 2;
    }));
    auto one = client.Get("/api/jobs/shop%2Feu");
    REQUIRE(one->status == 200);
    CHECK(nlohmann::json::parse(one->body)["job"]["job"] == "shop/eu");
    auto results = client.Get("/api/jobs/caf%C3%A9/results");
    REQUIRE(results->status == 200);
    auto rows = nlohmann::json::parse(results->body);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0]["job"] == "café");
    CHECK(rows[0]["url"] == site.url("/p/2"));

    // Across jobs, with the filters.
    CHECK(nlohmann::json::parse(client.Get("/api/results?limit=1")->body).size() == 1);
    CHECK(nlohmann::json::parse(client.Get("/api/results?job=shop%2Feu")->body).size() == 1);
    CHECK(nlohmann::json::parse(client.Get("/api/results?since=2099-01-01")->body).empty());
    REQUIRE(eventually([&] {  // the run rows are finished a moment after the result rows
      auto r = client.Get("/api/runs?since=1h");
      if (!r || r->status != 200) return false;
      auto runs = nlohmann::json::parse(r->body);
      return runs.size() == 2 && runs[0]["status"] == "ok" && runs[1]["status"] == "ok";
    }));
    CHECK(nlohmann::json::parse(client.Get("/api/runs?limit=1")->body).size() == 1);
    CHECK(client.Get("/api/runs?limit=x")->status == 400);
  }

  SECTION("404 for results of an unknown job; 405 with Allow for a wrong method") {
    auto unknown = client.Get("/api/jobs/nobody/results");
    CHECK(unknown->status == 404);
    CHECK_THAT(unknown->body, Catch::Contains("no job 'nobody'"));
    auto get_reload = client.Get("/api/reload");
    CHECK(get_reload->status == 405);
    CHECK(get_reload->get_header_value("Allow") == "POST");
    auto post_jobs = client.Post("/api/jobs", "", "text/plain");
    CHECK(post_jobs->status == 405);
    CHECK(post_jobs->get_header_value("Allow") == "GET, HEAD");
    CHECK(client.Delete("/api/jobs/shop%2Feu")->status == 405);
    CHECK(client.Get("/api/nowhere")->status == 404);
  }

  SECTION("a POST without a body needs no Content-Length") {
    std::string answer = raw_http(port,
                                  "POST /api/jobs/shop%2Feu/pause HTTP/1.1\r\nHost: x\r\n"
                                  "Authorization: Bearer sesame\r\nConnection: close\r\n\r\n");
    CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 200"));
    CHECK_THAT(answer, Catch::Contains("\"paused\": true"));
    answer = raw_http(port,
                      "POST /api/reload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sesame\r\n"
                      "Connection: close\r\n\r\n");
    CHECK_THAT(answer, Catch::StartsWith("HTTP/1.1 200"));
  }

  SECTION("/ lists the endpoints") {
    auto index = client.Get("/");
    REQUIRE(index->status == 200);
    auto j = nlohmann::json::parse(index->body);
    std::vector<std::string> paths;
    for (const auto& e : j["endpoints"])
      paths.push_back(e["method"].get<std::string>() + " " + e["path"].get<std::string>());
    CHECK(std::find(paths.begin(), paths.end(), "GET /api/runs") != paths.end());
    CHECK(std::find(paths.begin(), paths.end(), "POST /api/jobs/NAME/pause") != paths.end());
    CHECK(std::find(paths.begin(), paths.end(), "GET /healthz") != paths.end());
  }

  kill(pid, SIGTERM);
  CHECK(test::wait_exit(pid) == 0);
}

TEST_CASE("pause and resume through the API: persisted, no run starts, through reload and restart",
          "[api][pause]") {
  std::atomic<int> hits{0};
  test::HttpServer site;
  site.server().Get("/", [&](const httplib::Request&, httplib::Response& res) {
    ++hits;
    res.set_content("ok", "text/plain");
  });
  site.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml",
                       "api: {listen: '127.0.0.1:0'}\n"
                       "defaults: {robots: ignore}\njobs:\n"
                       "  - {name: fast, url: '" +
                           site.url("/") + "', every: 1s}\n");
  auto db = dir.file("p.db");
  pid_t pid = 0;
  int port = start_daemon(dir, cfg, db, pid);
  std::optional<test::Reaper> reaper(pid);
  httplib::Client client("127.0.0.1", port);
  REQUIRE(eventually([&] { return hits >= 1; }));  // it runs, every second

  auto paused = client.Post("/api/jobs/fast/pause");
  REQUIRE(paused);
  CHECK(paused->status == 200);
  CHECK(client.Post("/api/jobs/nope/pause")->status == 404);
  CHECK(test::sql1(db, "SELECT job FROM paused") == "fast");
  auto jobs = nlohmann::json::parse(client.Get("/api/jobs")->body);
  REQUIRE(jobs.size() == 1);
  CHECK(jobs[0]["state"] == "paused");
  auto run = client.Post("/api/jobs/fast/run");
  CHECK(run->status == 409);
  CHECK_THAT(run->body, Catch::Contains("paused"));

  // The scheduler passes due times without starting runs: next_due moves on while the number
  // of requests stays where it was (counted once a run started before the pause is over).
  std::string due = test::sql1(db, "SELECT next_due FROM jobs");
  auto due_times_pass = [&](int n) {
    for (int i = 0; i < n; ++i) {
      REQUIRE(eventually([&] { return test::sql1(db, "SELECT next_due FROM jobs") != due; }));
      due = test::sql1(db, "SELECT next_due FROM jobs");
    }
  };
  due_times_pass(2);
  int before = hits.load();
  due_times_pass(3);
  CHECK(hits.load() == before);

  // A reload keeps it paused; so does a restart.
  CHECK(client.Post("/api/reload")->status == 200);
  CHECK(client.Post("/api/jobs/fast/run")->status == 409);
  kill(pid, SIGTERM);
  REQUIRE(test::wait_exit(pid) == 0);
  reaper.reset();
  port = start_daemon(dir, cfg, db, pid, "e2");
  reaper.emplace(pid);
  httplib::Client again("127.0.0.1", port);
  CHECK(again.Post("/api/jobs/fast/run")->status == 409);
  CHECK(nlohmann::json::parse(again.Get("/api/jobs")->body)[0]["state"] == "paused");

  // Resumed, it runs again.
  auto resumed = again.Post("/api/jobs/fast/resume");
  REQUIRE(resumed);
  CHECK(resumed->status == 200);
  CHECK(test::sql1(db, "SELECT count(*) FROM paused") == "0");
  CHECK(eventually([&] { return hits > before; }));
  kill(pid, SIGTERM);
  CHECK(test::wait_exit(pid) == 0);
}

TEST_CASE("dashboard: pages, login cookie, CSRF on actions, security headers, / by Accept",
          "[api][ui]") {
  test::HttpServer site;
  site.server().Get("/p", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("<p>ok</p>", "text/html");
  });
  site.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml",
                       "api: {listen: '127.0.0.1:0', token: 'ses ame;'}\n"
                       "defaults: {robots: ignore}\njobs:\n"
                       "  - {name: shop, url: '" +
                           site.url("/p") + "', every: 1h}\n");
  auto db = dir.file("ui.db");
  pid_t pid = 0;
  int port = start_daemon(dir, cfg, db, pid);
  test::Reaper reaper(pid);
  httplib::Client anon("127.0.0.1", port);
  const std::string origin = "http://127.0.0.1:" + std::to_string(port);

  SECTION("/ redirects a browser to /ui/ and answers API clients with the index") {
    auto html = anon.Get("/", {{"Accept", "text/html,application/xhtml+xml,*/*;q=0.8"}});
    REQUIRE(html);
    CHECK(html->status == 303);
    CHECK(html->get_header_value("Location") == "/ui/");
    httplib::Client api("127.0.0.1", port);
    api.set_default_headers({{"Authorization", "Bearer ses ame;"}});
    auto json = api.Get("/", {{"Accept", "application/json"}});
    REQUIRE(json->status == 200);
    CHECK(nlohmann::json::parse(json->body)["service"] == "scraperd");
  }

  SECTION("pages without the token go to the login; the script and stylesheet are public") {
    for (auto page : {"/ui/", "/ui/job?name=shop", "/ui/errors"}) {
      auto r = anon.Get(page);
      REQUIRE(r);
      INFO(page);
      CHECK(r->status == 303);
      CHECK(r->get_header_value("Location") == "/ui/login");
    }
    auto login = anon.Get("/ui/login");
    REQUIRE(login->status == 200);
    CHECK_THAT(login->body, Catch::Contains("<form method=\"post\" action=\"/ui/login\">"));
    CHECK(login->get_header_value("Content-Type") == "text/html; charset=utf-8");
    auto js = anon.Get("/ui/app.js");
    REQUIRE(js->status == 200);
    CHECK(js->get_header_value("Content-Type") == "text/javascript; charset=utf-8");
    CHECK_THAT(js->body, Catch::Contains("textContent"));
    CHECK(anon.Get("/ui/style.css")->status == 200);
    CHECK(anon.Get("/ui/nothing.js")->status == 404);
    CHECK(anon.Get("/ui/a/b")->status == 404);
    CHECK(anon.Post("/ui/app.js", "", "text/plain")->status == 405);
    // The API itself still wants the token.
    CHECK(anon.Get("/api/jobs")->status == 401);
  }

  SECTION("every dashboard answer carries a strict CSP, nosniff and a cache policy") {
    auto page = anon.Get("/ui/login");
    std::string csp = page->get_header_value("Content-Security-Policy");
    CHECK_THAT(csp, Catch::Contains("default-src 'none'"));
    CHECK_THAT(csp, Catch::Contains("script-src 'self'"));
    CHECK_THAT(csp, !Catch::Contains("unsafe-inline"));
    CHECK(page->get_header_value("X-Content-Type-Options") == "nosniff");
    CHECK(page->get_header_value("Cache-Control") == "no-store");
    CHECK(anon.Get("/ui/style.css")->get_header_value("Cache-Control") == "no-cache");
    // No inline script or style (the CSP would block it anyway); no markup built from text.
    auto login = anon.Get("/ui/login");
    CHECK_THAT(login->body, !Catch::Contains("<script>"));
    CHECK_THAT(login->body, !Catch::Contains("<style"));
    CHECK_THAT(login->body, !Catch::Contains("style="));
    auto js = anon.Get("/ui/app.js");
    CHECK_THAT(js->body, !Catch::Contains("innerHTML"));
    CHECK_THAT(js->body, !Catch::Contains(".style"));
  }

  SECTION("login: a wrong token back to the form, the right one an HttpOnly SameSite cookie") {
    httplib::Params bad{{"token", "sesame"}};
    auto wrong = anon.Post("/ui/login", bad);
    REQUIRE(wrong);
    CHECK(wrong->status == 303);
    CHECK(wrong->get_header_value("Location") == "/ui/login?failed=1");
    CHECK_FALSE(wrong->has_header("Set-Cookie"));
    httplib::Params good{{"token", "ses ame;"}};
    auto right = anon.Post("/ui/login", good);
    REQUIRE(right->status == 303);
    CHECK(right->get_header_value("Location") == "/ui/");
    std::string set = right->get_header_value("Set-Cookie");
    CHECK_THAT(set, Catch::Contains("HttpOnly"));
    CHECK_THAT(set, Catch::Contains("SameSite=Strict"));
    std::string cookie = set.substr(0, set.find(';'));
    CHECK(cookie == "scraperd_token=73657320616d653b");  // the token in hex

    httplib::Client browser("127.0.0.1", port);
    browser.set_default_headers({{"Cookie", "theme=x; " + cookie}});
    auto jobs_page = browser.Get("/ui/");
    REQUIRE(jobs_page->status == 200);
    CHECK_THAT(jobs_page->body, Catch::Contains("<script src=\"/ui/app.js\" defer></script>"));
    CHECK(browser.Get("/ui/job?name=shop")->status == 200);
    CHECK(browser.Get("/ui/errors")->status == 200);
    CHECK(browser.Get("/api/jobs")->status == 200);  // the API takes the cookie too

    // Actions: with the cookie only from the daemon's own origin; the header needs none.
    CHECK(browser.Post("/api/jobs/shop/pause")->status == 403);  // no Origin
    auto cross =
        browser.Post("/api/jobs/shop/pause", {{"Origin", "http://evil.example"}}, "", "text/plain");
    CHECK(cross->status == 403);
    CHECK_THAT(cross->body, Catch::Contains("cross-origin"));
    auto same = browser.Post("/api/jobs/shop/pause", {{"Origin", origin}}, "", "text/plain");
    REQUIRE(same->status == 200);
    CHECK(nlohmann::json::parse(same->body)["paused"] == true);
    CHECK(browser.Post("/api/jobs/shop/resume", {{"Origin", origin}}, "", "text/plain")->status ==
          200);
    httplib::Client script("127.0.0.1", port);
    script.set_default_headers({{"Authorization", "Bearer ses ame;"}});
    CHECK(script.Post("/api/jobs/shop/pause")->status == 200);
    // A login form posted from another site is refused too.
    auto foreign = anon.Post("/ui/login", {{"Origin", "http://evil.example"}}, "token=ses+ame%3B",
                             "application/x-www-form-urlencoded");
    CHECK(foreign->status == 403);
    // Log out: the cookie is cleared.
    auto out = browser.Post("/ui/logout", {{"Origin", origin}}, "", "text/plain");
    CHECK(out->status == 303);
    CHECK_THAT(out->get_header_value("Set-Cookie"), Catch::Contains("Max-Age=0"));
  }

  kill(pid, SIGTERM);
  CHECK(test::wait_exit(pid) == 0);
}

TEST_CASE("dashboard without api.token: read-only pages on loopback, browser actions refused",
          "[api][ui]") {
  test::HttpServer site;
  site.server().Get("/p", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content("<p>ok</p>", "text/html");
  });
  site.start();
  test::TempDir dir;
  auto cfg = dir.write("jobs.yaml",
                       "api: {listen: '127.0.0.1:0'}\ndefaults: {robots: ignore}\njobs:\n"
                       "  - {name: shop, url: '" +
                           site.url("/p") + "', every: 1h}\n");
  auto db = dir.file("ui.db");
  pid_t pid = 0;
  int port = start_daemon(dir, cfg, db, pid);
  test::Reaper reaper(pid);
  httplib::Client client("127.0.0.1", port);
  const std::string origin = "http://127.0.0.1:" + std::to_string(port);
  CHECK(client.Get("/ui/")->status == 200);  // loopback: served, no login
  CHECK(client.Get("/ui/errors")->status == 200);
  auto action = client.Post("/api/jobs/shop/pause", {{"Origin", origin}}, "", "text/plain");
  REQUIRE(action);
  CHECK(action->status == 403);
  CHECK_THAT(action->body, Catch::Contains("read-only"));
  CHECK(client.Post("/api/reload", {{"Origin", origin}}, "", "text/plain")->status == 403);
  // A client that is not a browser (no Origin) keeps the API as it was.
  CHECK(client.Post("/api/jobs/shop/pause")->status == 200);
  kill(pid, SIGTERM);
  CHECK(test::wait_exit(pid) == 0);
}

TEST_CASE("dashboard endpoints: a job's numeric series, errors grouped by job, kind and host",
          "[api][ui]") {
  std::atomic<int> fetches{0};
  test::HttpServer site;
  site.server().Get(R"(/p/(\d))", [&](const httplib::Request& req, httplib::Response& res) {
    int n = ++fetches;
    res.set_content("<h1>" + req.matches[1].str() + "</h1><p class=price>" + std::to_string(n) +
                        ".5</p><p class=n>" + std::to_string(n) + "</p>",
                    "text/html");
  });
  site.start();
  test::TempDir dir;
  auto cfg = dir.write(
      "jobs.yaml",
      "api: {listen: '127.0.0.1:0', token: 't'}\n"
      "defaults: {robots: ignore, retries: {max: 0}}\njobs:\n"
      "  - {name: shop, urls: ['" +
          site.url("/p/1") + "', '" + site.url("/p/2") +
          "'], cron: '0 0 1 1 *',\n"
          "     extract: {title: h1, price: {css: .price, type: number}, n: {css: .n, type: "
          "number},\n"
          // A hostile field name: quote, backslash, a control character, non-ASCII.
          "       \"q\\\"x\\\\y\\x01\xc3\xa9\": {css: .n, type: number}}}\n"
          "  - {name: broken, urls: ['" +
          site.url("/missing") + "', '" + site.url("/gone") +
          "', 'http://127.0.0.1:9/'], cron: '0 0 1 1 *'}\n");
  auto db = dir.file("ui.db");
  pid_t pid = 0;
  int port = start_daemon(dir, cfg, db, pid);
  test::Reaper reaper(pid);
  httplib::Client client("127.0.0.1", port);
  client.set_default_headers({{"Authorization", "Bearer t"}});
  auto run = [&](const std::string& job, int runs_done) {
    // The last run's row may be committed a moment before its job is idle again (409).
    REQUIRE(eventually([&] {
      auto r = client.Post("/api/jobs/" + job + "/run");
      return r && r->status == 202;
    }));
    REQUIRE(eventually([&] {
      auto r = client.Get("/api/runs?job=" + job + "&limit=100");
      if (!r || r->status != 200) return false;
      auto rows = nlohmann::json::parse(r->body);
      return static_cast<int>(rows.size()) == runs_done && !rows[0]["finished_at"].is_null();
    }));
  };
  for (int i = 1; i <= 3; ++i) run("shop", i);
  run("broken", 1);
  run("broken", 2);

  SECTION("series: every stored numeric value, per field and URL, oldest first") {
    auto r = client.Get("/api/jobs/shop/series");
    REQUIRE(r->status == 200);
    auto s = nlohmann::json::parse(r->body);
    CHECK(s.size() == 3);  // price, n and the hostile one; title is text
    // Not downsampled: every value (fewer than the 600 points of a line).
    CHECK(r->get_header_value("X-Values-Total") == "18");
    CHECK(r->get_header_value("X-Values-Shown") == "18");
    // The writer escapes what it writes: the hostile field name reads back as it was.
    const std::string hostile = "q\"x\\y\x01\xc3\xa9";
    REQUIRE(s.contains(hostile));
    CHECK(s[hostile] == s["n"]);
    REQUIRE(s.contains("price"));
    REQUIRE(s["price"].size() == 2);  // two URLs
    std::vector<double> values;
    for (const auto& [url, points] : s["price"].items()) {
      CHECK(points.size() == 3);
      for (std::size_t i = 1; i < points.size(); ++i)
        CHECK(points[i][0].get<std::int64_t>() >= points[i - 1][0].get<std::int64_t>());
      for (const auto& p : points) values.push_back(p[1].get<double>());
    }
    std::sort(values.begin(), values.end());
    CHECK(values == std::vector<double>{1.5, 2.5, 3.5, 4.5, 5.5, 6.5});
    CHECK(s["n"][site.url("/p/1")].size() == 3);
    // limit keeps the newest values; since, the recent ones.
    auto newest = nlohmann::json::parse(client.Get("/api/jobs/shop/series?limit=2")->body);
    std::size_t n = 0;
    for (const auto& [field, urls] : newest.items())
      for (const auto& [url, points] : urls.items()) n += points.size();
    CHECK(n == 2);
    CHECK(
        nlohmann::json::parse(client.Get("/api/jobs/shop/series?since=2099-01-01")->body).empty());
    CHECK(client.Get("/api/jobs/shop/series?limit=0")->status == 400);
    CHECK(client.Get("/api/jobs/shop/series?points=1")->status == 400);
    CHECK(client.Get("/api/jobs/shop/series?points=10001")->status == 400);
    CHECK(client.Get("/api/jobs/shop/series?points=x")->status == 400);
    CHECK(client.Get("/api/jobs/shop/series?limit=100001")->status == 400);
    CHECK(client.Get("/api/jobs/nobody/series")->status == 404);
  }

  SECTION("results: the latest of each URL; changes with the result before them") {
    auto latest = nlohmann::json::parse(client.Get("/api/jobs/shop/results?latest=1")->body);
    REQUIRE(latest.size() == 2);  // two URLs, three fetches each
    CHECK(latest[0]["url"] != latest[1]["url"]);
    auto all = nlohmann::json::parse(client.Get("/api/jobs/shop/results?limit=100")->body);
    REQUIRE(all.size() == 6);
    CHECK(latest[0] == all[0]);  // newest first
    auto newest_of = std::find_if(all.begin(), all.end(),
                                  [&](const auto& r) { return r["url"] == latest[1]["url"]; });
    CHECK(latest[1] == *newest_of);
    auto changed =
        nlohmann::json::parse(client.Get("/api/jobs/shop/results?changed=1&previous=1")->body);
    REQUIRE(changed.size() == 6);  // a URL's first fetch counts as changed
    int with_previous = 0;
    for (const auto& c : changed) {
      INFO(c.dump());
      if (c["previous_data"].is_null()) {  // the first fetch of its URL
        CHECK(c["run_id"] == 1);
        continue;
      }
      ++with_previous;
      REQUIRE(c["previous_data"].is_object());  // nested, as data is
      CHECK(c["previous_data"]["price"] != c["data"]["price"]);
      CHECK(c["previous_data"]["title"] == c["data"]["title"]);
    }
    CHECK(with_previous == 4);
  }

  SECTION("series: downsampled to the min and max of each time bucket beyond `points`") {
    auto all = nlohmann::json::parse(client.Get("/api/jobs/shop/series")->body);
    auto r = client.Get("/api/jobs/shop/series?points=2");  // one bucket a line: its min, max
    REQUIRE(r->status == 200);
    CHECK(r->get_header_value("X-Values-Total") == "18");
    CHECK(r->get_header_value("X-Values-Shown") == "12");
    auto s = nlohmann::json::parse(r->body);
    REQUIRE(s.size() == 3);
    for (const auto& [field, urls] : all.items()) {
      for (const auto& [url, points] : urls.items()) {
        REQUIRE(points.size() == 3);
        auto lo = points[0], hi = points[0];
        for (const auto& p : points) {
          if (p[1].get<double>() < lo[1].get<double>()) lo = p;
          if (p[1].get<double>() > hi[1].get<double>()) hi = p;
        }
        auto kept = s[field][url];
        INFO(field << " " << url);
        REQUIRE(kept.size() == 2);
        CHECK(kept[0][0].get<std::int64_t>() <= kept[1][0].get<std::int64_t>());  // time order
        CHECK(((kept[0] == lo && kept[1] == hi) || (kept[0] == hi && kept[1] == lo)));
      }
    }
    // points at or above the count of a line: no downsampling.
    auto three = client.Get("/api/jobs/shop/series?points=3");
    CHECK(three->get_header_value("X-Values-Shown") == "18");
    CHECK(nlohmann::json::parse(three->body) == all);
  }

  SECTION("error groups: one per job, kind and host, counted over 1 h and 24 h") {
    auto r = client.Get("/api/errors/groups");
    REQUIRE(r->status == 200);
    auto g = nlohmann::json::parse(r->body);
    REQUIRE(g.size() == 2);
    const std::string host = "127.0.0.1:" + std::to_string(site.port());
    CHECK(g[0]["job"] == "broken");
    CHECK(g[0]["kind"] == "http");
    CHECK(g[0]["host"] == host);
    CHECK(g[0]["last_24h"] == 4);  // two URLs, two runs
    CHECK(g[0]["last_1h"] == 4);
    CHECK(g[1]["kind"] == "connect");
    CHECK(g[1]["host"] == "127.0.0.1:9");
    CHECK(g[1]["last_24h"] == 2);
    CHECK_THAT(g[1]["message"].get<std::string>(), !Catch::Contains("404"));
    CHECK(nlohmann::json::parse(client.Get("/api/errors/groups?job=shop")->body).empty());
    CHECK(nlohmann::json::parse(client.Get("/api/errors/groups?job=broken")->body).size() == 2);
  }

  kill(pid, SIGTERM);
  CHECK(test::wait_exit(pid) == 0);
}

TEST_CASE("/api/jobs filters on the server (name or URL, state) before it pages, with the total",
          "[api][ui]") {
  test::TempDir dir;
  auto cfg =
      dir.write("jobs.yaml",
                "api: {listen: '127.0.0.1:0'}\n"
                "defaults: {robots: ignore}\njobs:\n"
                "  - {name: alpha, url: 'http://127.0.0.1:9/shop/alpha', cron: '0 0 1 1 *'}\n"
                "  - {name: beta, url: 'http://127.0.0.1:9/b', cron: '0 0 1 1 *'}\n"
                "  - {name: delta, url: 'http://127.0.0.1:9/d', cron: '0 0 1 1 *'}\n"
                "  - {name: gamma, url: 'http://127.0.0.1:9/g/SPECIAL', cron: '0 0 1 1 *'}\n"
                "  - {name: zeta, url: 'http://127.0.0.1:9/z', cron: '0 0 1 1 *', "
                "paused: true}\n");
  auto db = dir.file("jobs.db");
  auto now = storage::Clock::now();
  {  // a job the file no longer has, and a run of beta that failed
    storage::Writer w(db);
    w.push(storage::JobSeen{"old", "every 1m", 1, now});
    auto key = w.new_run_key();
    w.push(storage::RunStarted{key, "beta", now, now, 1});
    w.push(storage::RunFinished{key, now + std::chrono::milliseconds(1500), "failed", 0, 1});
  }
  pid_t pid = 0;
  int port = start_daemon(dir, cfg, db, pid);
  test::Reaper reaper(pid);
  httplib::Client client("127.0.0.1", port);
  REQUIRE(eventually([&] { return test::sql1(db, "SELECT count(*) FROM jobs") == "6"; }));
  REQUIRE(client.Post("/api/jobs/delta/pause")->status == 200);
  {  // gamma only in the job file: as if the daemon had not registered it yet
    sqlite3* con = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &con) == SQLITE_OK);
    sqlite3_busy_timeout(con, 5000);
    CHECK(sqlite3_exec(con, "DELETE FROM jobs WHERE name = 'gamma'", nullptr, nullptr, nullptr) ==
          SQLITE_OK);
    sqlite3_close(con);
  }

  // The names of the page, and the X-Total-Count of the answer.
  auto page = [&](const std::string& query) {
    auto r = client.Get("/api/jobs" + query);
    REQUIRE(r);
    REQUIRE(r->status == 200);
    std::string names;
    for (const auto& j : nlohmann::json::parse(r->body))
      names += (names.empty() ? "" : ",") + j["job"].get<std::string>();
    return names + " of " + r->get_header_value("X-Total-Count");
  };
  CHECK(page("") == "alpha,beta,delta,gamma,old,zeta of 6");
  CHECK(page("?limit=2") == "alpha,beta of 6");
  CHECK(page("?limit=2&offset=2") == "delta,gamma of 6");
  CHECK(page("?limit=2&offset=4") == "old,zeta of 6");
  CHECK(page("?limit=2&offset=6") == " of 6");
  // Text: in the name or a URL, in any case; the job-file-only job by its URL.
  CHECK(page("?q=special") == "gamma of 1");
  CHECK(page("?q=ALP") == "alpha of 1");
  CHECK(page("?q=/shop/") == "alpha of 1");
  CHECK(page("?q=nothing") == " of 0");
  // State, as the dashboard shows it.
  CHECK(page("?state=paused") == "delta,zeta of 2");  // by the API, by the job file
  CHECK(page("?state=paused&limit=1&offset=1") == "zeta of 2");
  CHECK(page("?state=failing") == "beta of 1");
  CHECK(page("?state=removed") == "old of 1");
  CHECK(page("?state=never%20run") == "alpha,gamma of 2");
  CHECK(page("?state=never%20run&q=g") == "gamma of 1");
  CHECK(page("?state=idle") == " of 0");
  CHECK(page("?job=beta") == "beta of 1");
  CHECK(page("?q=a&limit=10") == "alpha,beta,delta,gamma,zeta of 5");
  auto rows = nlohmann::json::parse(client.Get("/api/jobs?q=a&limit=10")->body);
  REQUIRE(rows.size() == 5);
  CHECK(rows[3]["state"] == "never run");  // gamma, from the job file
  CHECK(rows[3]["schedule"] == "cron '0 0 1 1 *'");
  CHECK(rows[4]["state"] == "paused");

  // recent=N: the last runs of each job of the page, from one query.
  auto beta = nlohmann::json::parse(client.Get("/api/jobs?q=beta&recent=5")->body);
  REQUIRE(beta.size() == 1);
  CHECK(beta[0]["durations_ms"] == nlohmann::json::array({1500}));
  CHECK(beta[0]["last_duration_ms"] == 1500);
  CHECK(beta[0]["last_ok"] == 0);
  CHECK(beta[0]["last_failed"] == 1);
  CHECK(beta[0]["last_change"].is_null());
  auto alpha = nlohmann::json::parse(client.Get("/api/jobs?q=alpha&recent=5")->body);
  CHECK(alpha[0]["durations_ms"] == nlohmann::json::array());
  CHECK(alpha[0]["last_duration_ms"].is_null());
  CHECK_FALSE(
      nlohmann::json::parse(client.Get("/api/jobs?q=alpha")->body)[0].contains("durations_ms"));

  for (auto bad : {"?state=bogus", "?offset=-1", "?offset=x", "?recent=101", "?limit=0"})
    CHECK(client.Get(std::string("/api/jobs") + bad)->status == 400);
  kill(pid, SIGTERM);
  CHECK(test::wait_exit(pid) == 0);
}
