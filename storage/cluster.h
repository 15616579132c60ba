// Several daemons on one PostgreSQL database (docs/operations.md, "Several nodes"): the
// blocking SQL of the cluster. Membership is the table `nodes` (a row per live daemon, its
// heartbeat written by the node, liveness judged by the database's clock); a job run is held
// by a row of `leases`; jobs.next_due is each job's due time for the whole cluster. No Asio:
// daemon/cluster/ calls these on a thread of its own, each Connection used by one thread.
//
//   storage::cluster::Connection c(url);
//   c.join(self);                          // throws when a live node has this id
//   c.heartbeat(self, hosts);              // every `heartbeat`
//   auto r = c.claim(self.id, request, owner_of);   // before a run; kYes: run it
//   c.renew(self.id, lease);               // every lease / 3 while runs go on
//   c.release(self.id, job, tail);         // when the run ends
//   c.leave(self.id);                      // a clean stop: the row and its leases go
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "storage/store.h"

namespace scraperd::storage {
namespace pg {
class Conn;
}

namespace cluster {

// This daemon as the cluster knows it.
struct Self {
  std::string id;         // --node-id
  std::string file_hash;  // of the job files it runs (updated on reload)
  std::string hostname;
  std::int64_t pid = 0;
  std::chrono::milliseconds heartbeat{5000};  // live while its last beat is < 3 × this old
};

// A row of `nodes`, with what the database knows of it now.
struct Node {
  std::string id, file_hash, hostname;
  std::int64_t pid = 0;
  std::string started_at, heartbeat_at;  // format_time's text (UTC)
  double age_s = 0;                      // since its last heartbeat, by the database's clock
  bool live = false;
  int leases = 0;  // leases it holds now (unexpired)
  int hosts = 0;   // hosts it owned at its last heartbeat, as it counted them
};

// What a claim came to.
enum class Claimed {
  kYes,       // the lease is this node's and jobs.next_due moved on: run it
  kNotOwner,  // another live node owns the job's group (`other`)
  kHeld,      // another node holds an unexpired lease on a job of the group (`other`)
  kLater,     // another node ran it: jobs.next_due (`next_due`) is later than the due time
  kPaused,    // the job is paused in the database (table `paused`)
};

struct ClaimResult {
  Claimed state = Claimed::kYes;
  std::string other;             // the owner or the lease holder
  Clock::time_point next_due{};  // kLater: the cluster's next due time
};

struct ClaimRequest {
  std::string job;
  std::string schedule;  // describe(schedule) and the URL count, for a jobs row not there yet
  int urls = 0;
  Clock::time_point due;   // the run's due time
  Clock::time_point next;  // the schedule's point after it: jobs.next_due once claimed
  bool scheduled = true;   // false: an extra run (run now), jobs.next_due untouched
  std::string group;       // the job's group key (daemon/cluster/ownership.h)
  std::chrono::milliseconds lease{30000};
};

// Which live node owns `group` (rendezvous over `live`, the live node ids).
using OwnerOf =
    std::function<std::string(const std::string& group, const std::vector<std::string>& live)>;

// One connection to the cluster's database. Throws storage::Error on every failure.
class Connection {
 public:
  explicit Connection(const std::string& url);
  ~Connection();
  Connection(Connection&&) noexcept;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Writes this node's row, replacing a stale one of the same id (and its leases: that
  // process is gone). Throws Error when a live node holds the id.
  void join(const Self& self);
  // The node's heartbeat: heartbeat_at = now(), its file hash and host count. A row that
  // went missing (deleted by hand) is written again.
  void heartbeat(const Self& self, int hosts);
  // Every row of `nodes`, by id.
  std::vector<Node> nodes();
  // Before a run, in one short transaction (claims of one group serialized by an advisory
  // lock): the job must not be paused, the node must own the group among the live nodes (by
  // the database's clock), no
  // other node may hold an unexpired lease on a job of the group, and (scheduled runs)
  // jobs.next_due must not be later than the due time. Then the lease is written (expiring
  // after `lease`) and jobs.next_due set to `next`; an expired, unreleased lease of another
  // node on the job is replaced, and that node's runs of the job left `running` are closed as
  // interrupted.
  ClaimResult claim(const std::string& node, const ClaimRequest& request, const OwnerOf& owner_of);
  // Pushes the expiry of every lease of `node` to now() + lease.
  void renew(const std::string& node, std::chrono::milliseconds lease);
  // The run ended: its lease is marked released and expires after `tail`, so that another
  // node taking the group over waits that long after this node's last request to its hosts
  // (their rate limiters are not handed over).
  void release(const std::string& node, const std::string& job, std::chrono::milliseconds tail);
  // A clean stop: the node's row and leases go (released ones at the end of their tail).
  void leave(const std::string& node);

 private:
  std::unique_ptr<pg::Conn> conn_;
  std::vector<std::string> known_jobs_;  // jobs rows this connection made sure of
};

// For `scraperd status`: the rows of `nodes` (none when the table is not there).
std::vector<Node> read_nodes(const std::string& url);

}  // namespace cluster
}  // namespace scraperd::storage
