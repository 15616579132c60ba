// Several `scraperd run` processes on one job file and one PostgreSQL (daemon/cluster/): each
// due run happens once, on the node owning the job's hosts; a killed node's jobs move; a
// host's rate holds cluster-wide; /api/cluster and `scraperd status` show the nodes; a node id
// is one live node's only. Real daemons (tests/support/process.h), real test servers on
// 127.0.0.1, a private PostgreSQL (tests/support/pg_cluster.h). Label `postgres`.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/cluster/ownership.h"
#include "tests/storage/test_db.h"
#include "tests/support/http_server.h"
#include "tests/support/process.h"

using namespace scraperd;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::system_clock;

// One host (a test server on its own port): every request it answered, with the node that
// sent it (the X-Node header, from each daemon's environment).
struct Host {
  struct Hit {
    Clock::time_point at;
    std::string node;
  };
  test::HttpServer server;
  std::mutex mu;
  std::vector<Hit> hits;
  std::atomic<int> in_flight{0};

  // `delay`: each answer takes that long.
  explicit Host(std::chrono::milliseconds delay = 0ms) {
    server.server().Get(".*", [this, delay](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mu);
        hits.push_back({Clock::now(), req.get_header_value("X-Node")});
      }
      ++in_flight;
      std::this_thread::sleep_for(delay);
      --in_flight;
      res.set_content("<html><body><p>ok</p></body></html>", "text/html");
    });
    server.start();
  }
  std::string key() const { return "127.0.0.1:" + std::to_string(server.port()); }
  std::vector<Hit> copy() {
    std::lock_guard lock(mu);
    return hits;
  }
};

// A job file: each job `every: 1s` on one host (job i on host i % hosts), lease 3s,
// heartbeat 1s, the API on any free port.
std::string job_file(const test::TestDb& db, const std::vector<std::unique_ptr<Host>>& hosts,
                     int jobs, const std::string& extra_job_keys = "") {
  std::ostringstream y;
  y << "storage: {url: '" << db.locator << "'}\n"
    << "cluster: {lease: 3s, heartbeat: 1s}\n"
    << "api: {listen: '127.0.0.1:0'}\n"
    << "jobs:\n";
  for (int i = 0; i < jobs; ++i)
    y << "  - {name: j" << i << ", url: '"
      << hosts[static_cast<std::size_t>(i) % hosts.size()]->server.url("/j" + std::to_string(i))
      << "', every: 1s, robots: ignore, headers: {X-Node: '${SCRAPERD_TEST_NODE}'}"
      << extra_job_keys << "}\n";
  return y.str();
}

// Three node ids that each own at least `min_groups` of the hosts' groups (one job's host is
// one group here), so that every node has work.
std::vector<std::string> spread_ids(const std::vector<std::unique_ptr<Host>>& hosts,
                                    int min_groups) {
  for (int base = 0; base < 1000; ++base) {
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) ids.push_back("node" + std::to_string(base * 3 + i));
    std::map<std::string, int> owned;
    for (const auto& h : hosts) ++owned[daemon::cluster::owner(h->key(), ids)];
    if (owned.size() == 3 &&
        std::all_of(owned.begin(), owned.end(), [&](auto& o) { return o.second >= min_groups; }))
      return ids;
  }
  FAIL("no spread of node ids");
  return {};
}

struct Node {
  std::string id;
  pid_t pid = -1;
  std::string err;  // its log
  int port = 0;     // its API
  std::unique_ptr<test::Reaper> reaper;
};

// Starts `scraperd run --node-id ID` and waits for its API.
std::unique_ptr<Node> start(const test::TempDir& dir, const std::string& cfg,
                            const std::string& id) {
  auto n = std::make_unique<Node>();
  n->id = id;
  n->err = dir.file(id + ".err");
  n->pid = test::spawn({"run", "--config", cfg, "--node-id", id}, dir.file(id + ".out"), n->err,
                       {"SCRAPERD_TEST_NODE=" + id});
  n->reaper = std::make_unique<test::Reaper>(n->pid);
  const std::string mark = "api: listening on http://127.0.0.1:";
  bool up = test::eventually(
      [&] {
        auto log = test::slurp(n->err);
        auto at = log.find(mark);
        if (at == std::string::npos) return false;
        n->port = std::atoi(log.c_str() + at + mark.size());
        return n->port > 0;
      },
      20s);
  INFO(test::slurp(n->err));
  REQUIRE(up);
  return n;
}

// SIGTERM, and the exit status.
int stop(Node& n) {
  ::kill(n.pid, SIGTERM);
  return test::wait_exit(n.pid);
}

nlohmann::json get_json(const Node& n, const std::string& path) {
  httplib::Client c("127.0.0.1", n.port);
  auto r = c.Get(path.c_str());
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return nlohmann::json::parse(r->body);
}

// Seconds since the epoch, from the database.
double epoch(const Clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

// Every runs row as (job, due_at in seconds, status).
struct RunRow {
  std::string job;
  double due = 0;
  std::string status;
};
std::vector<RunRow> runs(const test::TestDb& db) {
  std::vector<RunRow> out;
  std::istringstream lines(test::scalar(
      db,
      "SELECT string_agg(job || ' ' || extract(epoch FROM due_at)::text || ' ' || status, "
      "E'\\n' ORDER BY job, due_at) FROM runs"));
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream f(line);
    RunRow r;
    f >> r.job >> r.due >> r.status;
    out.push_back(r);
  }
  return out;
}

// No two runs rows for one (job, due time).
void check_no_duplicate(const test::TestDb& db) {
  CHECK(test::scalar(db,
                     "SELECT coalesce(string_agg(job || ' ' || due_at::text || ' x' || n, ', '), "
                     "'') FROM (SELECT job, due_at, count(*) AS n FROM runs GROUP BY job, due_at "
                     "HAVING count(*) > 1) d") == "");
}

// Between `from` and `to` (seconds), each job's due times (runs rows, skipped ones included)
// leave no 1-s point without a row: consecutive ones at most 1.5 s apart, and the first and
// last within 1.5 s of the window's ends.
void check_no_gap(const std::vector<RunRow>& rows, const std::string& job, double from, double to) {
  std::vector<double> due;
  for (const auto& r : rows)
    if (r.job == job && r.due >= from - 1.5 && r.due <= to + 1.5) due.push_back(r.due);
  INFO("job " << job << ", window " << std::fixed << from << " to " << to);
  REQUIRE(due.size() >= 2);
  CHECK(due.front() <= from + 1.5);
  CHECK(due.back() >= to - 1.5);
  for (std::size_t i = 1; i < due.size(); ++i) {
    INFO("due " << due[i - 1] << " then " << due[i]);
    CHECK(due[i] - due[i - 1] <= 1.5);
  }
}

}  // namespace

TEST_CASE("three nodes on one job file: every due run once, each host on one node",
          "[cluster][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "three");
  std::vector<std::unique_ptr<Host>> hosts;
  for (int i = 0; i < 6; ++i) hosts.push_back(std::make_unique<Host>());
  auto cfg = dir.write("jobs.yaml", job_file(db, hosts, 12));
  auto ids = spread_ids(hosts, 1);
  std::vector<std::unique_ptr<Node>> nodes;
  for (const auto& id : ids) nodes.push_back(start(dir, cfg, id));
  std::this_thread::sleep_for(5s);  // the nodes see each other (one heartbeat), runs begin
  const auto from = Clock::now();
  std::this_thread::sleep_for(60s);
  const auto to = Clock::now();
  for (auto& n : nodes) {
    INFO(test::slurp(n->err));
    CHECK(stop(*n) == 0);
  }
  check_no_duplicate(db);
  auto rows = runs(db);
  for (int i = 0; i < 12; ++i) check_no_gap(rows, "j" + std::to_string(i), epoch(from), epoch(to));
  CHECK(test::scalar(db, "SELECT count(*) FROM runs WHERE status NOT IN ('ok', 'skipped')") == "0");
  // Each host heard from one node over the window, and each node ran some.
  std::set<std::string> busy;
  for (auto& h : hosts) {
    std::set<std::string> senders;
    for (const auto& hit : h->copy())
      if (hit.at >= from && hit.at <= to) senders.insert(hit.node);
    INFO("host " << h->key());
    CHECK(senders.size() == 1);
    busy.insert(senders.begin(), senders.end());
  }
  CHECK(busy == std::set<std::string>(ids.begin(), ids.end()));
  // A clean stop leaves no row and no lease held behind: only released ones, whose handover
  // tail (1 s here) ends soon.
  CHECK(test::scalar(db, "SELECT count(*) FROM nodes") == "0");
  CHECK(test::scalar(db, "SELECT count(*) FROM leases WHERE NOT released") == "0");
  CHECK(test::scalar(db,
                     "SELECT count(*) FROM leases WHERE expires_at > now() + interval '1 "
                     "second'") == "0");
}

TEST_CASE("a node killed with -9: its jobs resume on the others within lease + 3 heartbeats",
          "[cluster][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "kill");
  std::vector<std::unique_ptr<Host>> hosts;
  for (int i = 0; i < 6; ++i) hosts.push_back(std::make_unique<Host>());
  // A seventh host answers in 2 s: its job's runs last longer than its period, so the victim
  // is killed in the middle of one.
  hosts.push_back(std::make_unique<Host>(2000ms));
  auto cfg = dir.write("jobs.yaml", job_file(db, hosts, 7));
  auto ids = spread_ids(hosts, 1);
  std::vector<std::unique_ptr<Node>> nodes;
  for (const auto& id : ids) nodes.push_back(start(dir, cfg, id));
  // The victim: the node running the slow job, killed while its request is in flight (and
  // the run's row is committed).
  Host& slow = *hosts[6];
  const std::string victim = daemon::cluster::owner(slow.key(), ids);
  REQUIRE(test::eventually(
      [&] {
        auto hits = slow.copy();
        return slow.in_flight > 0 && !hits.empty() && hits.back().node == victim &&
               test::scalar(db,
                            "SELECT count(*) FROM runs WHERE job = 'j6' AND status = "
                            "'running'") == "1";
      },
      20s));
  auto dead = std::find_if(nodes.begin(), nodes.end(), [&](auto& n) { return n->id == victim; });
  REQUIRE(dead != nodes.end());
  const auto killed_at = Clock::now();
  ::kill((*dead)->pid, SIGKILL);
  test::wait_exit((*dead)->pid);
  std::this_thread::sleep_for(15s);
  const auto to = Clock::now();
  // The others see it dead and take its hosts.
  auto& survivor = *nodes[dead == nodes.begin() ? 1 : 0];
  auto view = get_json(survivor, "/api/cluster");
  for (const auto& n : view["nodes"]) CHECK(n["live"] == (n["id"] != victim));
  for (auto& n : nodes)
    if (n->id != victim) CHECK(stop(*n) == 0);
  check_no_duplicate(db);
  auto rows = runs(db);
  // Lease 3 s + 3 heartbeats of 1 s; then up to a 1-s due point, and a second and a half of
  // slack for the nodes' own heartbeat ticks.
  const double resumed_by = epoch(killed_at) + 3 + 3 + 1 + 1.5;
  for (int i = 0; i < 7; ++i) {
    std::string job = "j" + std::to_string(i);
    INFO(job);
    // The first run after the kill comes in time, and the victim's hosts are on other nodes.
    auto& host = *hosts[static_cast<std::size_t>(i)];
    std::vector<Host::Hit> after;
    for (const auto& hit : host.copy())
      if (hit.at > killed_at) after.push_back(hit);
    REQUIRE(!after.empty());
    CHECK(epoch(after.front().at) <= resumed_by);
    for (const auto& hit : after) CHECK(hit.node != victim);
    // From then on, no due time is lost (the slow job's last runs end after the window).
    if (i < 6) check_no_gap(rows, job, resumed_by, epoch(to));
  }
  // The run the victim had going is closed as interrupted by the node that took its job
  // over; nothing is left running.
  INFO(test::scalar(db,
                    "SELECT string_agg(id || ' ' || job || ' ' || due_at || ' ' || status || "
                    "' ' || started_at, E'\\n' ORDER BY id) FROM runs WHERE job = 'j6'"));
  CHECK(test::scalar(db, "SELECT count(*) FROM runs WHERE status = 'running'") == "0");
  CHECK(test::scalar(db,
                     "SELECT count(*) FROM runs WHERE job = 'j6' AND status = "
                     "'interrupted'") == "1");
  CHECK(test::scalar(db, "SELECT count(*) FROM runs WHERE status = 'interrupted'") == "1");
  bool warned = false;
  for (auto& n : nodes)
    if (n->id != victim)
      warned = warned ||
               test::slurp(n->err).find("node '" + victim +
                                        "' let its lease expire during a run") != std::string::npos;
  CHECK(warned);
}

TEST_CASE("a host limited to 5/s across the cluster never sees more", "[cluster][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "rate");
  std::vector<std::unique_ptr<Host>> hosts;
  for (int i = 0; i < 4; ++i) hosts.push_back(std::make_unique<Host>());
  Host limited;
  // Four jobs each on their own host, and six jobs with three URLs each on the limited host:
  // 18 requests a second asked of it.
  std::ostringstream y;
  y << job_file(db, hosts, 4);
  for (int i = 0; i < 6; ++i) {
    y << "  - name: limited" << i << "\n    urls:\n";
    for (int u = 0; u < 3; ++u)
      y << "      - '" << limited.server.url("/l" + std::to_string(i) + "/" + std::to_string(u))
        << "'\n";
    y << "    every: 1s\n    robots: ignore\n    per_host: {rate: 5, burst: 1}\n"
      << "    headers: {X-Node: '${SCRAPERD_TEST_NODE}'}\n";
  }
  auto cfg = dir.write("jobs.yaml", y.str());
  auto ids = spread_ids(hosts, 1);
  std::vector<std::unique_ptr<Node>> nodes;
  for (const auto& id : ids) nodes.push_back(start(dir, cfg, id));
  std::this_thread::sleep_for(25s);
  for (auto& n : nodes) CHECK(stop(*n) == 0);
  check_no_duplicate(db);
  auto hits = limited.copy();
  REQUIRE(hits.size() > 50);  // it was busy
  std::set<std::string> senders;
  std::size_t most = 0;
  for (std::size_t i = 0, j = 0; i < hits.size(); ++i) {
    senders.insert(hits[i].node);
    while (hits[i].at - hits[j].at >= 1s) ++j;
    most = std::max(most, i - j + 1);
  }
  CHECK(senders.size() == 1);  // one owner for the host's group
  CHECK(most <= 5 + 1);        // rate + burst in any 1-s window
}

TEST_CASE("/api/cluster and scraperd status list the nodes and warn when job files differ",
          "[cluster][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "view");
  std::vector<std::unique_ptr<Host>> hosts;
  for (int i = 0; i < 6; ++i) hosts.push_back(std::make_unique<Host>());
  auto text = job_file(db, hosts, 6);
  auto cfg = dir.write("jobs.yaml", text);
  auto ids = spread_ids(hosts, 1);
  std::vector<std::unique_ptr<Node>> nodes;
  for (const auto& id : ids) nodes.push_back(start(dir, cfg, id));
  REQUIRE(test::eventually(
      [&] {
        auto v = get_json(*nodes[0], "/api/cluster");
        return v["nodes"].size() == 3 &&
               std::all_of(v["nodes"].begin(), v["nodes"].end(), [](auto& n) { return n["live"]; });
      },
      10s));
  auto view = get_json(*nodes[0], "/api/cluster");
  CHECK(view["node"] == ids[0]);
  CHECK(view["warnings"].empty());
  int groups = 0, hosts_owned = 0;
  for (const auto& n : view["nodes"]) {
    CHECK(n["file_hash"] == view["file_hash"]);
    double age = n["heartbeat_age_s"];
    CHECK(age < 3.0);
    groups += n["groups"].get<int>();
    hosts_owned += n["hosts"].get<int>();
  }
  CHECK(groups == 6);
  CHECK(hosts_owned == 6);

  auto status = test::run_cli(dir, {"status", "--config", cfg});
  INFO(status.out << status.err);
  CHECK(status.exit_code == 0);
  CHECK_THAT(status.out, Catch::Contains("cluster: 3 live node(s)"));
  for (const auto& id : ids) CHECK_THAT(status.out, Catch::Contains(id));
  CHECK_THAT(status.out, !Catch::Contains("warning"));

  // Run now on a node that does not own the job: 409 naming the owner.
  std::string owner = daemon::cluster::owner(hosts[0]->key(), ids);
  auto other = std::find_if(nodes.begin(), nodes.end(), [&](auto& n) { return n->id != owner; });
  httplib::Client c("127.0.0.1", (*other)->port);
  auto refused = c.Post("/api/jobs/j0/run");
  REQUIRE(refused);
  CHECK(refused->status == 409);
  CHECK_THAT(refused->body, Catch::Contains("'" + owner + "'"));

  // A fourth node with another job file (the same jobs and a comment).
  auto other_cfg = dir.write("other.yaml", text + "# changed\n");
  auto fourth = start(dir, other_cfg, "node-other");
  REQUIRE(test::eventually([&] { return !get_json(*nodes[0], "/api/cluster")["warnings"].empty(); },
                           10s));
  CHECK_THAT(get_json(*nodes[0], "/api/cluster")["warnings"][0].get<std::string>(),
             Catch::Contains("node-other"));
  REQUIRE(test::eventually(
      [&] {
        return test::slurp(nodes[0]->err).find("node 'node-other' runs job files with hash") !=
               std::string::npos;
      },
      10s));
  auto warned = test::run_cli(dir, {"status", "--config", cfg});
  CHECK_THAT(warned.out, Catch::Contains("warning: the live nodes' job files differ"));
  CHECK(stop(*fourth) == 0);
  for (auto& n : nodes) CHECK(stop(*n) == 0);
}

TEST_CASE("a second daemon with a live node's id refuses to start", "[cluster][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "same");
  std::vector<std::unique_ptr<Host>> hosts;
  hosts.push_back(std::make_unique<Host>());
  auto cfg = dir.write("jobs.yaml", job_file(db, hosts, 1));
  auto first = start(dir, cfg, "twin");
  auto second = test::run_cli(dir, {"run", "--config", cfg, "--node-id", "twin"},
                              {"SCRAPERD_TEST_NODE=twin"});
  CHECK(second.exit_code == 1);
  CHECK_THAT(second.err, Catch::Contains("node id 'twin' is held by a live node (pid " +
                                         std::to_string(first->pid)));
  CHECK(stop(*first) == 0);
  // Once it left, the id is free again.
  auto again = start(dir, cfg, "twin");
  CHECK(stop(*again) == 0);
}
