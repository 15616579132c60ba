// Which node of a cluster runs which job: pure functions, the same on every node that reads
// the same job file and the same membership.
//
// Jobs are grouped by the hosts of their URLs ("host:port", the politeness key): two jobs that
// share a host are in one group (union-find), so a group's hosts are touched by its jobs
// only. Each group is owned by one live node, chosen by rendezvous hashing (the node with the
// highest hash(node id, group key) wins): when a node goes, only its groups move; when one
// comes, it takes about 1/N of the groups and no other group moves. All runs of a group happen
// on its owner, so each host's rate and concurrency hold cluster-wide. (A `follow` with
// `same_host: false` can reach hosts outside its group: those are polite per node only.)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace scraperd::daemon::cluster {

struct Groups {
  std::map<std::string, std::string> of_job;              // job name → group key
  std::map<std::string, std::vector<std::string>> hosts;  // group key → its hosts, sorted
  std::map<std::string, std::vector<std::string>> jobs;   // group key → its jobs, sorted
};

// The groups of `jobs`. A group's key is its smallest host; a job with no URL that parses is a
// group of its own, keyed "job:NAME".
Groups group_jobs(const std::vector<config::Job>& jobs);

// A stable 64-bit hash (FNV-1a, then a mixing step): the same on every machine and build.
std::uint64_t stable_hash(std::string_view text);

// The owner of `group` among `nodes` (rendezvous hashing; ties, which need equal hashes, go to
// the smaller id); "" when `nodes` is empty.
std::string owner(const std::string& group, const std::vector<std::string>& nodes);

// How many groups and hosts each of `nodes` owns.
struct Share {
  int groups = 0;
  int hosts = 0;
};
std::map<std::string, Share> shares(const Groups& groups, const std::vector<std::string>& nodes);

}  // namespace scraperd::daemon::cluster
