// `cluster:` (config/config.h): its defaults, its durations, and its rules.
#include <catch2/catch.hpp>

#include "config/config.h"

using namespace scraperd;

namespace {

const char* kJobs = "jobs:\n  - {name: a, url: 'http://127.0.0.1/', every: 1m}\n";

std::string first_error(const std::string& yaml) {
  auto r = config::load_string(yaml, "jobs.yaml");
  return r.errors.empty() ? "" : r.errors.front().str();
}

}  // namespace

TEST_CASE("cluster: defaults, durations, and only on PostgreSQL", "[config][cluster]") {
  auto plain = config::load_string(std::string("storage: {url: 'postgresql://u@/db'}\n") + kJobs,
                                   "jobs.yaml");
  REQUIRE(plain.ok());
  CHECK(plain.config->cluster.lease == std::chrono::seconds(30));
  CHECK(plain.config->cluster.heartbeat == std::chrono::seconds(5));

  auto set = config::load_string(
      std::string("storage: {url: 'postgresql://u@/db'}\ncluster: {lease: 3s, heartbeat: 1s}\n") +
          kJobs,
      "jobs.yaml");
  REQUIRE(set.ok());
  CHECK(set.config->cluster.lease == std::chrono::seconds(3));
  CHECK(set.config->cluster.heartbeat == std::chrono::seconds(1));

  CHECK(first_error(std::string("cluster: {lease: 10s}\n") + kJobs) ==
        "jobs.yaml:1:10: 'cluster' needs storage.url (PostgreSQL): on SQLite one daemon runs "
        "alone");
  CHECK_THAT(first_error(std::string("storage: {url: 'postgresql://u@/db'}\n"
                                     "cluster:\n  lease: 10s\n  heartbeat: 5s\n") +
                         kJobs),
             Catch::StartsWith("jobs.yaml:4:14: 'cluster.heartbeat' (5s) must be less than half "
                               "of 'cluster.lease' (10s)"));
  CHECK_THAT(first_error(std::string("storage: {url: 'postgresql://u@/db'}\n"
                                     "cluster: {lease: soon}\n") +
                         kJobs),
             Catch::StartsWith("jobs.yaml:2:18: "));
  CHECK_THAT(first_error(std::string("storage: {url: 'postgresql://u@/db'}\n"
                                     "cluster: {leases: 1m}\n") +
                         kJobs),
             Catch::Contains("leases"));
}
