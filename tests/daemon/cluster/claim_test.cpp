// The cluster's SQL alone (storage/cluster.h), on a private PostgreSQL: joins, liveness by the
// database's clock, and each outcome of a claim. No daemon, no sleeping: staleness and expiry
// are written into the rows.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "storage/cluster.h"
#include "storage/writer.h"
#include "tests/storage/test_db.h"

using namespace scraperd;
using namespace std::chrono_literals;
namespace sc = storage::cluster;

namespace {

sc::Self self(const std::string& id) {
  sc::Self s;
  s.id = id;
  s.file_hash = "hash-" + id;
  s.hostname = "host";
  s.pid = 42;
  s.heartbeat = 1000ms;
  return s;
}

// The owner is whichever node the test says.
sc::OwnerOf fixed(const std::string& owner) {
  return [owner](const std::string&, const std::vector<std::string>& live) {
    for (const auto& id : live)
      if (id == owner) return owner;
    return live.empty() ? std::string() : live.front();
  };
}

sc::ClaimRequest request(const std::string& job, storage::Clock::time_point due) {
  sc::ClaimRequest q;
  q.job = job;
  q.schedule = "every 1m";
  q.urls = 1;
  q.due = due;
  q.next = due + 1min;
  q.group = "h.example:443";
  q.lease = 30s;
  return q;
}

}  // namespace

TEST_CASE("cluster SQL: a live node's id is refused, a stale one's taken over with its leases",
          "[cluster][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "join");
  storage::migrate(db.locator);
  sc::Connection a(db.locator), b(db.locator);
  a.join(self("n1"));
  CHECK_THROWS_WITH(b.join(self("n1")), Catch::Contains("node id 'n1' is held by a live node"));
  auto now = storage::Clock::now();
  REQUIRE(a.claim("n1", request("j", now), fixed("n1")).state == sc::Claimed::kYes);
  // n1 stops beating: three heartbeats later it is dead, and its id free.
  test::execute(db, "UPDATE nodes SET heartbeat_at = now() - interval '3.1 seconds'");
  auto nodes = b.nodes();
  REQUIRE(nodes.size() == 1);
  CHECK_FALSE(nodes[0].live);
  CHECK(nodes[0].age_s > 3.0);
  b.join(self("n1"));
  CHECK(test::scalar(db, "SELECT count(*) FROM leases") == "0");  // the dead one's
  CHECK(b.nodes()[0].live);
  b.heartbeat(self("n1"), 7);
  CHECK(b.nodes()[0].hosts == 7);
  b.leave("n1");
  CHECK(b.nodes().empty());
}

TEST_CASE("cluster SQL: a claim runs once per due time, on the owner, never beside a lease",
          "[cluster][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "claim");
  storage::migrate(db.locator);
  sc::Connection a(db.locator), b(db.locator);
  a.join(self("a"));
  b.join(self("b"));
  auto due = std::chrono::time_point_cast<std::chrono::milliseconds>(storage::Clock::now());

  // Not the owner in the database's view: refused, naming the owner.
  auto not_owner = b.claim("b", request("j1", due), fixed("a"));
  CHECK(not_owner.state == sc::Claimed::kNotOwner);
  CHECK(not_owner.other == "a");

  // The owner claims: lease written, next_due moved on (the jobs row made if missing).
  auto yes = a.claim("a", request("j1", due), fixed("a"));
  CHECK(yes.state == sc::Claimed::kYes);
  CHECK(yes.other.empty());
  CHECK(test::scalar(db, "SELECT node_id || ' ' || group_key FROM leases WHERE job = 'j1'") ==
        "a h.example:443");
  CHECK(test::scalar(db,
                     "SELECT next_due = due + interval '1 minute' FROM leases JOIN jobs ON "
                     "jobs.name = leases.job") == "t");

  // The same due time again (another node's view lagging): another node ran it.
  auto later = a.claim("a", request("j1", due), fixed("a"));
  CHECK(later.state == sc::Claimed::kLater);
  CHECK(later.next_due == due + 1min);

  // Ownership moves to b while a's lease on a job of the group is unexpired: b waits.
  auto held = b.claim("b", request("j2", due), fixed("b"));
  CHECK(held.state == sc::Claimed::kHeld);
  CHECK(held.other == "a");
  a.renew("a", 30s);
  // a's run ends: its lease is released with a tail, which b still waits for (the host's
  // last requests from a must be a second old or more), but a itself does not.
  a.release("a", "j1", 1min);
  CHECK(b.claim("b", request("j2", due), fixed("b")).state == sc::Claimed::kHeld);
  CHECK(test::scalar(db, "SELECT count(*) FROM leases WHERE NOT released") == "0");
  CHECK(b.nodes()[0].leases == 0);  // a released lease is not one held
  test::execute(db, "UPDATE leases SET expires_at = now() - interval '1 ms'");  // the tail ends
  CHECK(b.claim("b", request("j2", due), fixed("b")).state == sc::Claimed::kYes);
  CHECK(b.nodes()[1].leases == 1);
  b.release("b", "j2", 0ms);
  // Leaving keeps a tail not yet over (for the next owner), drops what has ended.
  a.release("a", "j1", 1min);
  a.leave("a");
  CHECK(test::scalar(db,
                     "SELECT string_agg(job || ' ' || node_id, ',' ORDER BY job) FROM leases "
                     "WHERE released") == "j1 a,j2 b");
  test::execute(db, "UPDATE leases SET expires_at = now() - interval '1 ms' WHERE job = 'j1'");

  // Paused in the database (another node's API, or scraperd pause): no run.
  test::execute(db, "INSERT INTO paused (job, since) VALUES ('j2', now())");
  CHECK(b.claim("b", request("j2", due + 1min), fixed("b")).state == sc::Claimed::kPaused);
  test::execute(db, "DELETE FROM paused");

  // An extra run (run now) leaves next_due alone.
  CHECK(test::scalar(db, "SELECT next_due::text FROM jobs WHERE name = 'j2'") != "");
  auto before = test::scalar(db, "SELECT next_due::text FROM jobs WHERE name = 'j2'");
  auto extra = request("j2", due - 1h);
  extra.scheduled = false;
  CHECK(b.claim("b", extra, fixed("b")).state == sc::Claimed::kYes);
  CHECK(test::scalar(db, "SELECT next_due::text FROM jobs WHERE name = 'j2'") == before);
  b.release("b", "j2", 0ms);
}

TEST_CASE("cluster SQL: a lease that expired during a run is taken over and the run closed",
          "[cluster][postgres]") {
  test::TempDir dir;
  auto db = test::fresh_db(dir, "expired");
  storage::migrate(db.locator);
  sc::Connection a(db.locator), b(db.locator);
  a.join(self("a"));
  b.join(self("b"));
  auto due = storage::Clock::now();
  REQUIRE(a.claim("a", request("j", due), fixed("a")).state == sc::Claimed::kYes);
  test::execute(db,
                "INSERT INTO runs (job, due_at, started_at, status) VALUES ('j', now(), now(), "
                "'running')");
  // a dies: no heartbeat, no renewal.
  test::execute(db,
                "UPDATE nodes SET heartbeat_at = now() - interval '1 minute' WHERE node_id "
                "= 'a'");
  test::execute(db, "UPDATE leases SET expires_at = now() - interval '1 second'");
  auto took = b.claim("b", request("j", due + 1min), [](auto&, auto& live) {
    return live.size() == 1 ? live.front() : std::string("?");  // only b is live
  });
  CHECK(took.state == sc::Claimed::kYes);
  CHECK(took.other == "a");
  CHECK(test::scalar(db, "SELECT status FROM runs WHERE job = 'j'") == "interrupted");
  CHECK(test::scalar(db, "SELECT node_id FROM leases WHERE job = 'j'") == "b");
  // A start (the writer's) leaves a run alone while its job holds a live lease.
  test::execute(db,
                "INSERT INTO runs (job, due_at, started_at, status) VALUES ('j', now(), now(), "
                "'running')");
  { storage::Writer w(db.locator); }
  CHECK(test::scalar(db, "SELECT count(*) FROM runs WHERE status = 'running'") == "1");
  b.release("b", "j", 0ms);
  { storage::Writer w(db.locator); }
  CHECK(test::scalar(db, "SELECT count(*) FROM runs WHERE status = 'running'") == "0");
}
