// Which node runs which job (daemon/cluster/ownership.h): groups by shared hosts, rendezvous
// ownership that is stable, balanced, and moves only what it must.
#include "daemon/cluster/ownership.h"
#include "daemon/cluster/cluster.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

using namespace scraperd;
using daemon::cluster::group_jobs;
using daemon::cluster::owner;

namespace {

config::Job job(const std::string& name, std::vector<std::string> urls) {
  config::Job j;
  j.name = name;
  j.urls = std::move(urls);
  return j;
}

}  // namespace

TEST_CASE("jobs that share a host are one group, transitively", "[cluster]") {
  std::vector<config::Job> jobs = {
      job("a", {"http://one.example/x", "http://two.example/y"}),
      job("b", {"http://two.example/z", "https://three.example/"}),
      job("c", {"http://four.example/"}),
      job("d", {"http://four.example:8080/"}),  // another port: another host
      job("e", {"https://three.example/q"}),
      job("f", {}),
  };
  auto g = group_jobs(jobs);
  CHECK(g.of_job["a"] == g.of_job["b"]);
  CHECK(g.of_job["a"] == g.of_job["e"]);
  CHECK(g.of_job["c"] != g.of_job["d"]);
  CHECK(g.of_job["a"] != g.of_job["c"]);
  CHECK(g.of_job["f"] == "job:f");
  // The key is the group's smallest host; its hosts and jobs are listed.
  CHECK(g.of_job["a"] == "one.example:80");
  CHECK(g.hosts[g.of_job["a"]] ==
        std::vector<std::string>{"one.example:80", "three.example:443", "two.example:80"});
  CHECK(g.jobs[g.of_job["a"]] == std::vector<std::string>{"a", "b", "e"});
  CHECK(g.jobs.size() == 4);
  // The same file read in another order groups alike.
  std::vector<config::Job> reversed(jobs.rbegin(), jobs.rend());
  CHECK(group_jobs(reversed).of_job == g.of_job);
}

TEST_CASE("rendezvous ownership: stable, balanced, and a node's loss moves only its groups",
          "[cluster]") {
  std::vector<std::string> groups;
  for (int i = 0; i < 600; ++i) groups.push_back("host" + std::to_string(i) + ".example:443");
  const std::vector<std::string> three = {"node-a", "node-b", "node-c"};
  std::map<std::string, int> count;
  for (const auto& g : groups) {
    auto o = owner(g, three);
    ++count[o];
    CHECK(owner(g, {"node-c", "node-a", "node-b"}) == o);  // the order read does not matter
  }
  REQUIRE(count.size() == 3);
  for (const auto& [node, n] : count) {
    INFO(node);
    CHECK(n > 150);  // 200 each when perfectly even
    CHECK(n < 250);
  }
  // node-b dies: its groups move to the others, no other group moves.
  int moved = 0;
  for (const auto& g : groups) {
    auto before = owner(g, three);
    auto after = owner(g, {"node-a", "node-c"});
    if (before == "node-b") {
      CHECK(after != "node-b");
      ++moved;
    } else {
      CHECK(after == before);
    }
  }
  CHECK(moved == count["node-b"]);
  // node-d joins: the groups that move all go to it.
  int taken = 0;
  for (const auto& g : groups) {
    auto before = owner(g, three);
    auto after = owner(g, {"node-a", "node-b", "node-c", "node-d"});
    if (after != before) {
      CHECK(after == "node-d");
      ++taken;
    }
  }
  CHECK(taken > 100);
  CHECK(taken < 200);
  CHECK(owner("x", {}).empty());
}

TEST_CASE("shares count each node's groups and hosts", "[cluster]") {
  std::vector<config::Job> jobs;
  for (int i = 0; i < 30; ++i)
    jobs.push_back(job("j" + std::to_string(i), {"http://h" + std::to_string(i) + ".example/",
                                                 "http://s" + std::to_string(i) + ".example/"}));
  auto g = group_jobs(jobs);
  auto s = daemon::cluster::shares(g, {"a", "b", "c"});
  int groups = 0, hosts = 0;
  for (const auto& [node, share] : s) {
    groups += share.groups;
    hosts += share.hosts;
    CHECK(share.hosts == 2 * share.groups);
  }
  CHECK(groups == 30);
  CHECK(hosts == 60);
  CHECK(daemon::cluster::shares(g, {}).empty());
}

TEST_CASE("the handover tail: a second, or the gap per_host allows when longer", "[cluster]") {
  config::PerHost limits;  // rate 2/s
  CHECK(daemon::cluster::handover_tail(limits) == std::chrono::seconds(1));
  limits.rate = 0.25;  // one request every 4 s
  CHECK(daemon::cluster::handover_tail(limits) == std::chrono::seconds(4));
  limits.rate = 50;
  limits.delay = std::chrono::milliseconds(2500);
  CHECK(daemon::cluster::handover_tail(limits) == std::chrono::milliseconds(2500));
}
