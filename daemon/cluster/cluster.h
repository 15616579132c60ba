// This daemon as a node of a cluster: several daemons, one job file, one PostgreSQL database
// (docs/operations.md, "Several nodes"). With storage.url every daemon is one (alone, a
// cluster of one); on SQLite there is none.
//
// Owns one thread and one database connection (storage/cluster.h), so no query runs on the
// loop. Joins at construction (refused when a live node has the id), then run() beats: every
// `heartbeat` (and every lease / 3 while runs hold leases) it writes the node's row, renews its
// leases and reads the membership, from which it works out which groups of jobs it owns
// (ownership.h). claim() is the scheduler's hook before each run; release() ends a run's lease.
// Claims start one heartbeat after the join, once this node has seen the others. leave() at
// a clean stop deletes the node's row and leases. Loop-thread only.
//
//   cluster::Node node(io.get_executor(), {url, "a", config->cluster}, *config);
//   co_spawn(io, node.run(), detached);
//   ... scheduler options.claim = [&](job, due, next, scheduled) {
//         return node.claim(job, due, next, scheduled); };
//   co_await node.leave();
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <asio/thread_pool.hpp>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "daemon/cluster/ownership.h"
#include "daemon/schedule/scheduler.h"
#include "storage/cluster.h"

namespace scraperd::daemon::cluster {

struct Settings {
  std::string url;      // storage.url
  std::string node_id;  // --node-id
  config::Cluster timing;
};

// A node as /api/cluster shows it: its row, and what it owns in this node's view.
struct NodeView {
  storage::cluster::Node row;
  int groups = 0;
  int hosts = 0;
};

struct View {
  std::string self;
  std::string file_hash;  // this node's
  std::vector<NodeView> nodes;
  std::vector<std::string> warnings;  // file hashes that differ
};

// /api/cluster's body: {"node": self, "file_hash", "nodes": [{"id", "file_hash", "hostname",
// "pid", "started_at", "heartbeat_at", "heartbeat_age_s", "live", "leases", "groups",
// "hosts"}], "warnings": [...]}.
std::string to_json(const View& view);

// The hash of the job files `config` was read from (its main file and every file with a job,
// their bytes in that order): 16 hex digits, the same on every node whose files agree.
std::string file_hash(const config::Config& config);

// How long after a run another node may start a run of the same hosts: a second, or the
// gap between two requests the job's per_host allows when that is longer (1 / rate, delay),
// so that no host sees the old owner's last requests and the new owner's burst within it.
std::chrono::milliseconds handover_tail(const config::PerHost& limits);

// The host name (the default --node-id).
std::string host_name();

class Node {
 public:
  // Connects and joins, blocking (call it before the loop runs). Throws storage::Error when the
  // database cannot be reached or a live node holds the id.
  Node(asio::any_io_executor loop, Settings settings, std::shared_ptr<const config::Config> config);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Beats until leave() or stop().
  asio::awaitable<void> run();
  // Ends run() without leaving (the engine failed); the destructor leaves.
  void stop();
  // A clean stop, once every run has ended: the beats end, the row and leases are deleted.
  asio::awaitable<void> leave();

  // The scheduler's claim (SchedulerOptions::claim).
  asio::awaitable<ClaimAnswer> claim(const config::Job& job, TimePoint due, TimePoint next,
                                     bool scheduled);
  // A claimed run ended: its lease is released with a tail (handover_tail).
  asio::awaitable<void> release(const config::Job& job);
  // A reload: new groups, new file hash.
  asio::awaitable<void> reconfigure(std::shared_ptr<const config::Config> config);

  // The owner of `job`'s group in this node's view ("" when it knows no live node).
  std::string owner_of(const std::string& job) const;
  const std::string& id() const { return self_.id; }
  View view() const;

 private:
  template <typename F>
  auto blocking(F fn)
      -> asio::awaitable<decltype(fn(std::declval<storage::cluster::Connection&>()))>;
  asio::awaitable<void> beat();
  void take(std::vector<storage::cluster::Node> nodes);
  std::vector<std::string> live_ids() const;

  Settings settings_;
  storage::cluster::Self self_;
  asio::thread_pool thread_{1};                         // every query, one at a time
  std::unique_ptr<storage::cluster::Connection> conn_;  // used on thread_ only; null: reconnect
  asio::steady_timer timer_;
  // Claims wait for the first heartbeat after the join, so that nodes started together see
  // each other before any of them runs a job (instead of one running everything for a beat).
  asio::steady_timer ready_;
  bool is_ready_ = false;
  bool stopped_ = false;
  bool left_ = false;     // leave() deleted the row (else the destructor does)
  bool failing_ = false;  // the last beat failed (said once in the log)
  int leased_ = 0;        // runs going on under a lease
  Groups groups_;
  std::vector<storage::cluster::Node> nodes_;  // as last read
  std::set<std::string> hashes_warned_;        // "node hash" pairs said in the log
};

}  // namespace scraperd::daemon::cluster
