#include "storage/cluster.h"

#include <algorithm>
#include <cstdlib>

#include "storage/pg.h"

namespace scraperd::storage::cluster {
namespace {

std::string text(const PGresult* r, int row, int col) {
  return std::string(PQgetvalue(r, row, col), static_cast<std::size_t>(PQgetlength(r, row, col)));
}

std::string ms(std::chrono::milliseconds d) {
  return std::to_string(d.count());
}

// Due times are compared and stored to the millisecond (what format_time keeps).
Clock::time_point to_ms(Clock::time_point t) {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(t);
}

// A live node: its last heartbeat is younger than three of its own heartbeats, by the
// database's clock (so every node judges alike, whatever its own clock says).
constexpr const char* kLive = "heartbeat_at > now() - 3 * heartbeat_ms * interval '1 millisecond'";

// pg_advisory_xact_lock's first key for the claims of a group ("clst"); the second is the
// group key's hashtext.
constexpr const char* kGroupLock = "SELECT pg_advisory_xact_lock(1668052852, hashtext($1))";

}  // namespace

Connection::Connection(const std::string& url) : conn_(std::make_unique<pg::Conn>(url)) {}

Connection::~Connection() = default;
Connection::Connection(Connection&&) noexcept = default;

void Connection::join(const Self& self) {
  auto& c = *conn_;
  c.exec("BEGIN");
  try {
    // Locks the row of a node of this id, if there is one, so two joins of one id serialize.
    auto r = c.query(
        std::string("SELECT ") + kLive + ", pid, hostname FROM nodes WHERE node_id = $1 FOR UPDATE",
        {self.id});
    if (PQntuples(r.get()) > 0 && PQgetvalue(r.get(), 0, 0)[0] == 't')
      throw Error("node id '" + self.id + "' is held by a live node (pid " + text(r.get(), 0, 1) +
                      " on " + text(r.get(), 0, 2) +
                      "): give this daemon another --node-id, or stop that one first",
                  pg::kPgError);
    c.query("DELETE FROM leases WHERE node_id = $1", {self.id});
    c.query(
        "INSERT INTO nodes (node_id, file_hash, started_at, heartbeat_at, heartbeat_ms, leases, "
        "hosts, pid, hostname) VALUES ($1, $2, now(), now(), $3, 0, 0, $4, $5) "
        "ON CONFLICT (node_id) DO UPDATE SET file_hash = $2, started_at = now(), "
        "heartbeat_at = now(), heartbeat_ms = $3, leases = 0, hosts = 0, pid = $4, hostname = $5",
        {self.id, self.file_hash, ms(self.heartbeat), std::to_string(self.pid), self.hostname});
    c.exec("COMMIT");
  } catch (...) {
    c.rollback();
    throw;
  }
}

void Connection::heartbeat(const Self& self, int hosts) {
  conn_->query(
      "INSERT INTO nodes (node_id, file_hash, started_at, heartbeat_at, heartbeat_ms, leases, "
      "hosts, pid, hostname) VALUES ($1, $2, now(), now(), $3, "
      "(SELECT count(*) FROM leases WHERE node_id = $1 AND NOT released), $4, $5, $6) "
      "ON CONFLICT (node_id) DO UPDATE SET file_hash = $2, heartbeat_at = now(), "
      "heartbeat_ms = $3, leases = excluded.leases, hosts = $4",
      {self.id, self.file_hash, ms(self.heartbeat), std::to_string(hosts), std::to_string(self.pid),
       self.hostname});
}

std::vector<Node> Connection::nodes() {
  auto r = conn_->query(
      std::string("SELECT n.node_id, n.file_hash, n.hostname, n.pid, n.started_at, "
                  "n.heartbeat_at, extract(epoch FROM now() - n.heartbeat_at), ") +
      kLive +
      ", (SELECT count(*) FROM leases l WHERE l.node_id = n.node_id AND NOT l.released AND "
      "l.expires_at > now()), n.hosts FROM nodes n ORDER BY n.node_id");
  std::vector<Node> out;
  const PGresult* p = r.get();
  for (int i = 0; i < PQntuples(p); ++i) {
    Node n;
    n.id = text(p, i, 0);
    n.file_hash = text(p, i, 1);
    n.hostname = text(p, i, 2);
    n.pid = std::atoll(PQgetvalue(p, i, 3));
    n.started_at = format_time(pg::parse_timestamptz(PQgetvalue(p, i, 4)));
    n.heartbeat_at = format_time(pg::parse_timestamptz(PQgetvalue(p, i, 5)));
    n.age_s = std::strtod(PQgetvalue(p, i, 6), nullptr);
    n.live = PQgetvalue(p, i, 7)[0] == 't';
    n.leases = std::atoi(PQgetvalue(p, i, 8));
    n.hosts = std::atoi(PQgetvalue(p, i, 9));
    out.push_back(std::move(n));
  }
  return out;
}

ClaimResult Connection::claim(const std::string& node, const ClaimRequest& q,
                              const OwnerOf& owner_of) {
  auto& c = *conn_;
  if (std::find(known_jobs_.begin(), known_jobs_.end(), q.job) == known_jobs_.end()) {
    // The writer registers jobs too, through its queue: the row may not be there yet.
    c.query(
        "INSERT INTO jobs (name, schedule, urls, first_seen, last_seen) "
        "VALUES ($1, $2, $3, now(), now()) ON CONFLICT (name) DO NOTHING",
        {q.job, q.schedule, std::to_string(q.urls)});
    known_jobs_.push_back(q.job);
  }
  ClaimResult result;
  c.exec("BEGIN");
  try {
    c.query(kGroupLock, {q.group});
    auto live = c.query(std::string("SELECT node_id FROM nodes WHERE ") + kLive);
    std::vector<std::string> ids;
    for (int i = 0; i < PQntuples(live.get()); ++i) ids.push_back(text(live.get(), i, 0));
    std::string owner = owner_of(q.group, ids);
    if (owner != node) {
      c.rollback();
      result.state = Claimed::kNotOwner;
      result.other = owner;
      return result;
    }
    auto held = c.query(
        "SELECT node_id FROM leases WHERE group_key = $1 AND node_id <> $2 AND expires_at > now() "
        "LIMIT 1",
        {q.group, node});
    if (PQntuples(held.get()) > 0) {
      c.rollback();
      result.state = Claimed::kHeld;
      result.other = text(held.get(), 0, 0);
      return result;
    }
    // The job's row: claims of its group wait on the advisory lock, so what holds it is at
    // most a writer's short statement (a reload's jobs upsert): wait for it, bounded.
    c.exec("SET LOCAL lock_timeout = '5s'");
    auto due = c.query(
        "SELECT next_due, EXISTS (SELECT 1 FROM paused WHERE job = $1) FROM jobs WHERE name = $1 "
        "FOR UPDATE OF jobs",
        {q.job});
    // Paused through another node's API, or `scraperd pause` without one: no run.
    if (PQntuples(due.get()) > 0 && PQgetvalue(due.get(), 0, 1)[0] == 't') {
      c.rollback();
      result.state = Claimed::kPaused;
      return result;
    }
    const auto due_ms = to_ms(q.due);
    if (q.scheduled && PQntuples(due.get()) > 0 && !PQgetisnull(due.get(), 0, 0)) {
      auto next_due = pg::parse_timestamptz(PQgetvalue(due.get(), 0, 0));
      if (next_due > due_ms) {
        c.rollback();
        result.state = Claimed::kLater;
        result.next_due = next_due;
        return result;
      }
    }
    // An expired lease of another node on this job: that node died during the run.
    auto dead =
        c.query("SELECT node_id FROM leases WHERE job = $1 AND node_id <> $2 AND NOT released",
                {q.job, node});
    if (PQntuples(dead.get()) > 0) {
      result.other = text(dead.get(), 0, 0);
      c.query(
          "UPDATE runs SET status = 'interrupted', finished_at = now() WHERE job = $1 AND "
          "status = 'running'",
          {q.job});
    }
    c.query(
        "INSERT INTO leases (job, node_id, group_key, due, expires_at) "
        "VALUES ($1, $2, $3, $4, now() + $5 * interval '1 millisecond') "
        "ON CONFLICT (job) DO UPDATE SET node_id = $2, group_key = $3, due = $4, "
        "expires_at = excluded.expires_at, released = false",
        {q.job, node, q.group, pg::time_param(due_ms), ms(q.lease)});
    if (q.scheduled)
      c.query("UPDATE jobs SET next_due = $1 WHERE name = $2",
              {pg::time_param(to_ms(q.next)), q.job});
    c.exec("COMMIT");
  } catch (...) {
    c.rollback();
    throw;
  }
  return result;
}

void Connection::renew(const std::string& node, std::chrono::milliseconds lease) {
  conn_->query(
      "UPDATE leases SET expires_at = now() + $2 * interval '1 millisecond' WHERE node_id = $1 "
      "AND NOT released",
      {node, ms(lease)});
}

void Connection::release(const std::string& node, const std::string& job,
                         std::chrono::milliseconds tail) {
  conn_->query(
      "UPDATE leases SET released = true, expires_at = now() + $3 * interval '1 millisecond' "
      "WHERE job = $1 AND node_id = $2",
      {job, node, ms(tail)});
}

void Connection::leave(const std::string& node) {
  auto& c = *conn_;
  c.exec("BEGIN");
  try {
    // Released leases stay until their tail ends: the hosts' next owner waits for it.
    c.query("DELETE FROM leases WHERE node_id = $1 AND (NOT released OR expires_at <= now())",
            {node});
    c.query("DELETE FROM nodes WHERE node_id = $1", {node});
    c.exec("COMMIT");
  } catch (...) {
    c.rollback();
    throw;
  }
}

std::vector<Node> read_nodes(const std::string& url) {
  {
    pg::Conn probe(url);
    auto r = probe.query("SELECT to_regclass('nodes') IS NOT NULL");
    if (PQgetvalue(r.get(), 0, 0)[0] != 't') return {};
  }
  Connection c(url);
  return c.nodes();
}

}  // namespace scraperd::storage::cluster
