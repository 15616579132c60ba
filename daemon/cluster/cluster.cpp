#include "daemon/cluster/cluster.h"

#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio/experimental/as_tuple.hpp>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "daemon/core/blocking.h"

namespace scraperd::daemon::cluster {

namespace sc = storage::cluster;

std::string file_hash(const config::Config& config) {
  std::vector<std::string> files{config.source};
  for (const auto& job : config.jobs)
    if (std::find(files.begin(), files.end(), job.file) == files.end()) files.push_back(job.file);
  std::string all;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    all += '\0';
  }
  return fmt::format("{:016x}", stable_hash(all));
}

std::string to_json(const View& view) {
  nlohmann::ordered_json nodes = nlohmann::ordered_json::array();
  for (const auto& n : view.nodes)
    nodes.push_back({{"id", n.row.id},
                     {"file_hash", n.row.file_hash},
                     {"hostname", n.row.hostname},
                     {"pid", n.row.pid},
                     {"started_at", n.row.started_at},
                     {"heartbeat_at", n.row.heartbeat_at},
                     {"heartbeat_age_s", n.row.age_s},
                     {"live", n.row.live},
                     {"leases", n.row.leases},
                     {"groups", n.groups},
                     {"hosts", n.hosts}});
  nlohmann::ordered_json out = {{"node", view.self},
                                {"file_hash", view.file_hash},
                                {"nodes", nodes},
                                {"warnings", view.warnings}};
  return out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::chrono::milliseconds handover_tail(const config::PerHost& limits) {
  std::chrono::milliseconds tail = std::chrono::seconds(1);
  if (limits.rate > 0)
    tail = std::max(tail, std::chrono::milliseconds(static_cast<std::int64_t>(1000 / limits.rate)));
  return std::max(tail, limits.delay);
}

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

Node::Node(asio::any_io_executor loop, Settings settings,
           std::shared_ptr<const config::Config> config)
    : settings_(std::move(settings)), timer_(loop), ready_(loop) {
  ready_.expires_at(asio::steady_timer::time_point::max());
  self_.id = settings_.node_id;
  self_.file_hash = file_hash(*config);
  self_.hostname = host_name();
  self_.pid = ::getpid();
  self_.heartbeat = settings_.timing.heartbeat;
  groups_ = group_jobs(config->jobs);
  conn_ = std::make_unique<sc::Connection>(settings_.url);
  conn_->join(self_);
  take(conn_->nodes());
  spdlog::info(
      "cluster: node '{}' joined ({} live node(s)); job files {}, lease {} ms, heartbeat {} ms",
      self_.id, live_ids().size(), self_.file_hash, settings_.timing.lease.count(),
      settings_.timing.heartbeat.count());
}

Node::~Node() {
  thread_.join();
  if (left_) return;
  // Not left through leave() (the engine failed, or the daemon did not get to run): leave
  // now, so that the others need not wait for the row to go stale.
  try {
    if (!conn_) conn_ = std::make_unique<sc::Connection>(settings_.url);
    conn_->leave(self_.id);
  } catch (const std::exception& e) {
    spdlog::warn("cluster: cannot leave ({}); the row goes stale and the leases expire", e.what());
  }
}

template <typename F>
auto Node::blocking(F fn) -> asio::awaitable<decltype(fn(std::declval<sc::Connection&>()))> {
  auto* conn = &conn_;
  std::string url = settings_.url;
  auto call = [conn, url, fn]() {
    try {
      if (!*conn) *conn = std::make_unique<sc::Connection>(url);
      return fn(**conn);
    } catch (...) {
      conn->reset();  // a fresh connection next time (the server may have restarted)
      throw;
    }
  };
  auto result = co_await run_blocking(thread_, std::move(call));
  co_return result;
}

asio::awaitable<void> Node::run() {
  // Leases are renewed every lease / 3; the row at least every heartbeat.
  auto tick = std::min<std::chrono::steady_clock::duration>(settings_.timing.heartbeat,
                                                            settings_.timing.lease / 3);
  while (!stopped_) {
    timer_.expires_after(tick);
    co_await timer_.async_wait(asio::experimental::as_tuple(here()));
    if (stopped_) break;
    co_await beat();
    if (!is_ready_) {
      is_ready_ = true;
      ready_.cancel();
    }
  }
}

asio::awaitable<void> Node::beat() {
  sc::Self self = self_;
  auto mine = shares(groups_, live_ids());
  int hosts = mine.contains(self.id) ? mine[self.id].hosts : 0;
  bool renew = leased_ > 0;
  auto lease = settings_.timing.lease;
  try {
    auto call = [self, hosts, renew, lease](sc::Connection& c) {
      if (renew) c.renew(self.id, lease);
      c.heartbeat(self, hosts);
      return c.nodes();
    };
    auto nodes = co_await blocking(std::move(call));
    if (failing_) spdlog::info("cluster: the database answers again");
    failing_ = false;
    take(std::move(nodes));
  } catch (const std::exception& e) {
    if (!failing_)
      spdlog::warn("cluster: heartbeat failed ({}); runs wait until it works again", e.what());
    failing_ = true;
  }
}

void Node::take(std::vector<sc::Node> nodes) {
  const auto before = live_ids();
  nodes_ = std::move(nodes);
  const auto now = live_ids();
  if (before != now && !before.empty())
    spdlog::info("cluster: live nodes now {}", fmt::join(now, ", "));
  for (const auto& n : nodes_) {
    if (!n.live || n.id == self_.id || n.file_hash == self_.file_hash) continue;
    if (hashes_warned_.insert(n.id + " " + n.file_hash).second)
      spdlog::warn(
          "cluster: node '{}' runs job files with hash {}, this node {}: the nodes' job files "
          "differ, so they may disagree on which node runs which job",
          n.id, n.file_hash, self_.file_hash);
  }
}

std::vector<std::string> Node::live_ids() const {
  std::vector<std::string> out;
  for (const auto& n : nodes_)
    if (n.live) out.push_back(n.id);
  return out;  // by id: nodes() orders them
}

void Node::stop() {
  stopped_ = true;
  timer_.cancel();
  is_ready_ = true;
  ready_.cancel();
}

asio::awaitable<void> Node::leave() {
  stop();
  std::string id = self_.id;
  try {
    auto call = [id](sc::Connection& c) {
      c.leave(id);
      return true;
    };
    co_await blocking(std::move(call));
    left_ = true;
    spdlog::info("cluster: node '{}' left", id);
  } catch (const std::exception& e) {
    spdlog::warn("cluster: cannot leave ({}); the row goes stale and the leases expire", e.what());
  }
}

asio::awaitable<ClaimAnswer> Node::claim(const config::Job& job, TimePoint due, TimePoint next,
                                         bool scheduled) {
  ClaimAnswer answer;
  answer.run = false;
  if (!is_ready_) co_await ready_.async_wait(asio::experimental::as_tuple(here()));
  auto group = groups_.of_job.find(job.name);
  if (group == groups_.of_job.end() || stopped_) co_return answer;
  // Not ours in this node's view: no query (the view is at most a heartbeat old; the
  // claim's own check in the database decides when it says ours).
  std::string owner = cluster::owner(group->second, live_ids());
  if (!owner.empty() && owner != self_.id) co_return answer;
  sc::ClaimRequest q;
  q.job = job.name;
  q.schedule = describe(job.schedule);
  q.urls = static_cast<int>(job.urls.size());
  q.due = due;
  q.next = next;
  q.scheduled = scheduled;
  q.group = group->second;
  q.lease = settings_.timing.lease;
  std::string id = self_.id;
  sc::ClaimResult result;
  try {
    auto call = [id, q](sc::Connection& c) {
      return c.claim(id, q, [](const std::string& g, const std::vector<std::string>& live) {
        return cluster::owner(g, live);
      });
    };
    result = co_await blocking(std::move(call));
  } catch (const std::exception& e) {
    spdlog::warn("job '{}': cannot claim its run due {} ({}); it waits for its next due time",
                 job.name, storage::format_time(due), e.what());
    co_return answer;
  }
  switch (result.state) {
    case sc::Claimed::kYes:
      ++leased_;
      answer.run = true;
      if (!result.other.empty())
        spdlog::warn(
            "job '{}': node '{}' let its lease expire during a run (dead?); that run is marked "
            "interrupted, this node runs the job now",
            job.name, result.other);
      break;
    case sc::Claimed::kLater: answer.due = result.next_due; break;
    case sc::Claimed::kPaused:
      spdlog::debug("job '{}' is paused in the database: its run due {} does not start", job.name,
                    storage::format_time(due));
      break;
    case sc::Claimed::kNotOwner:
      spdlog::debug("job '{}': node '{}' owns its hosts now", job.name, result.other);
      break;
    case sc::Claimed::kHeld:
      spdlog::info("job '{}': node '{}' still runs a job of its hosts; this node takes over after",
                   job.name, result.other);
      break;
  }
  if (!answer.run && !scheduled)
    spdlog::info("job '{}': run now refused (node '{}' runs its hosts)", job.name,
                 result.other.empty() ? owner : result.other);
  co_return answer;
}

asio::awaitable<void> Node::release(const config::Job& job) {
  --leased_;
  std::string id = self_.id;
  std::string name = job.name;
  auto tail = handover_tail(job.per_host);
  try {
    auto call = [id, name, tail](sc::Connection& c) {
      c.release(id, name, tail);
      return true;
    };
    co_await blocking(std::move(call));
  } catch (const std::exception& e) {
    spdlog::warn("job '{}': cannot release its lease ({}); it expires", name, e.what());
  }
}

asio::awaitable<void> Node::reconfigure(std::shared_ptr<const config::Config> config) {
  auto read = [config] { return file_hash(*config); };
  auto hash = co_await run_blocking(thread_, std::move(read));
  groups_ = group_jobs(config->jobs);
  if (hash != self_.file_hash) hashes_warned_.clear();
  self_.file_hash = hash;
  co_await beat();
}

std::string Node::owner_of(const std::string& job) const {
  auto group = groups_.of_job.find(job);
  if (group == groups_.of_job.end()) return "";
  return cluster::owner(group->second, live_ids());
}

View Node::view() const {
  View v;
  v.self = self_.id;
  v.file_hash = self_.file_hash;
  auto owned = shares(groups_, live_ids());
  for (const auto& n : nodes_) {
    NodeView nv{n};
    if (auto it = owned.find(n.id); it != owned.end()) {
      nv.groups = it->second.groups;
      nv.hosts = it->second.hosts;
    }
    if (n.live && n.file_hash != self_.file_hash)
      v.warnings.push_back("node '" + n.id + "' runs job files with hash " + n.file_hash +
                           ", node '" + self_.id + "' " + self_.file_hash +
                           ": the nodes' job files differ");
    v.nodes.push_back(std::move(nv));
  }
  return v;
}

}  // namespace scraperd::daemon::cluster
