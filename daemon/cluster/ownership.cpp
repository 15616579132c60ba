#include "daemon/cluster/ownership.h"

#include <algorithm>

#include "config/text.h"
#include "config/url.h"
#include "daemon/crawl/politeness.h"

namespace scraperd::daemon::cluster {

Groups group_jobs(const std::vector<config::Job>& jobs) {
  // Union-find over hosts, indexed in order of first appearance.
  std::map<std::string, std::size_t> index;
  std::vector<std::size_t> parent;
  auto find = [&](std::size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  };
  std::vector<std::vector<std::size_t>> job_hosts(jobs.size());
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    for (const auto& text : jobs[j].urls) {
      auto url = config::parse_url(text);
      if (!url) continue;
      auto [it, fresh] = index.emplace(host_key(*url), parent.size());
      if (fresh) parent.push_back(parent.size());
      job_hosts[j].push_back(it->second);
    }
    for (std::size_t h = 1; h < job_hosts[j].size(); ++h)
      parent[find(job_hosts[j][h])] = find(job_hosts[j][0]);
  }
  // Each root's key: the smallest host of its set.
  std::vector<std::string> key(parent.size());
  for (const auto& [host, i] : index) {  // in host order: the first seen per root is smallest
    auto& k = key[find(i)];
    if (k.empty()) k = host;
  }
  Groups out;
  for (const auto& [host, i] : index) out.hosts[key[find(i)]].push_back(host);
  for (std::size_t j = 0; j < jobs.size(); ++j) {
    std::string k = job_hosts[j].empty() ? "job:" + jobs[j].name : key[find(job_hosts[j][0])];
    out.of_job[jobs[j].name] = k;
    out.jobs[k].push_back(jobs[j].name);
  }
  for (auto& [k, names] : out.jobs) std::sort(names.begin(), names.end());
  return out;
}

std::uint64_t stable_hash(std::string_view text) {
  std::uint64_t h = config::fnv1a(text);
  // splitmix64's finalizer: FNV's low bits alone spread short, similar keys poorly.
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

std::string owner(const std::string& group, const std::vector<std::string>& nodes) {
  std::string best;
  std::uint64_t best_score = 0;
  for (const auto& node : nodes) {
    std::string both = node;
    both += '\0';
    both += group;
    std::uint64_t score = stable_hash(both);
    if (best.empty() || score > best_score || (score == best_score && node < best)) {
      best = node;
      best_score = score;
    }
  }
  return best;
}

std::map<std::string, Share> shares(const Groups& groups, const std::vector<std::string>& nodes) {
  std::map<std::string, Share> out;
  for (const auto& node : nodes) out[node];
  for (const auto& [key, jobs] : groups.jobs) {
    std::string o = owner(key, nodes);
    if (o.empty()) continue;
    auto hosts = groups.hosts.find(key);
    out[o].groups += 1;
    out[o].hosts += hosts == groups.hosts.end() ? 0 : static_cast<int>(hosts->second.size());
  }
  return out;
}

}  // namespace scraperd::daemon::cluster
