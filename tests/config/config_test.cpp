#include "config/config.h"

#include <catch2/catch.hpp>

using scraperd::config::load_string;

namespace {

// All diagnostics of `yaml`, as "line:col: message" (the file name is always "t.yaml").
std::vector<std::string> errors_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& d : load_string(yaml, "t.yaml").errors) {
    REQUIRE(d.file == "t.yaml");
    out.push_back(std::to_string(d.line) + ":" + std::to_string(d.column) + ": " + d.message);
  }
  return out;
}

}  // namespace

TEST_CASE("a minimal job file loads with defaults filled in", "[config]") {
  auto r = load_string(R"(
jobs:
  - name: home
    url: http://127.0.0.1:8080/
    every: 15m
)",
                       "t.yaml");
  REQUIRE(r.errors.empty());
  REQUIRE(r.ok());
  REQUIRE(r.config->jobs.size() == 1);
  const auto& job = r.config->jobs[0];
  CHECK(job.name == "home");
  CHECK(job.urls == std::vector<std::string>{"http://127.0.0.1:8080/"});
  CHECK(job.every == std::chrono::minutes(15));
  CHECK(job.timeout == std::chrono::seconds(30));
  CHECK(job.max_body == 10u * 1024 * 1024);
  CHECK_FALSE(job.user_agent.empty());
  CHECK(r.config->storage.path == "scraperd.db");
  CHECK(r.config->concurrency == 32);
}

TEST_CASE("defaults apply to every job and a job overrides them", "[config]") {
  auto r = load_string(R"(
concurrency: 8
storage: {path: /var/lib/scraperd/results.db}
defaults:
  timeout: 5s
  user_agent: bot/1
  max_body: 512KB
jobs:
  - name: a
    urls: [http://a.example/1, http://a.example/2]
    every: 1h30m
  - name: b
    url: https://b.example/
    every: 90s
    timeout: 2s
)",
                       "t.yaml");
  REQUIRE(r.ok());
  const auto& cfg = *r.config;
  CHECK(cfg.concurrency == 8);
  CHECK(cfg.storage.path == "/var/lib/scraperd/results.db");
  CHECK(cfg.jobs[0].urls.size() == 2);
  CHECK(cfg.jobs[0].every == std::chrono::minutes(90));
  CHECK(cfg.jobs[0].timeout == std::chrono::seconds(5));
  CHECK(cfg.jobs[0].user_agent == "bot/1");
  CHECK(cfg.jobs[0].max_body == 512u * 1024);
  CHECK(cfg.jobs[1].timeout == std::chrono::seconds(2));
  CHECK(cfg.jobs[1].every == std::chrono::seconds(90));
}

TEST_CASE("every mistake is reported at its line and column", "[config]") {
  SECTION("unknown key, with a suggestion") {
    CHECK(errors_of("jobs:\n  - name: p\n    url: http://x.example/\n    evry: 15m\n") ==
          std::vector<std::string>{
              "4:5: unknown key 'evry' in a job (did you mean 'every'?) (in job 'p')",
              "2:5: a job needs a schedule: 'every' (e.g. every: 15m) (in job 'p')"});
  }
  SECTION("bad duration") {
    CHECK(errors_of("jobs:\n  - name: p\n    url: http://x.example/\n    every: 15 minutes\n") ==
          std::vector<std::string>{"4:12: 'every' is not a duration: '15 minutes' (write e.g. "
                                   "90s, 15m, 1h30m) (in job 'p')"});
  }
  SECTION("bad URL") {
    CHECK(errors_of("jobs:\n  - name: p\n    url: ftp://x.example/\n    every: 1m\n") ==
          std::vector<std::string>{
              "3:10: 'ftp://x.example/' is not an absolute http:// or https:// URL (in job 'p')"});
  }
  SECTION("duplicate job names") {
    CHECK(errors_of("jobs:\n"
                    "  - {name: p, url: 'http://x.example/', every: 1m}\n"
                    "  - {name: p, url: 'http://y.example/', every: 1m}\n") ==
          std::vector<std::string>{"3:12: duplicate job name 'p'"});
  }
  SECTION("duplicate keys") {
    CHECK(errors_of("jobs:\n  - name: p\n    url: http://x.example/\n    every: 1m\n"
                    "    every: 2m\n") ==
          std::vector<std::string>{"5:5: duplicate key 'every' in a job (in job 'p')"});
  }
  SECTION("wrong type") {
    CHECK(errors_of("concurrency: lots\njobs: []\n") ==
          std::vector<std::string>{"1:14: 'concurrency' must be a whole number"});
  }
  SECTION("a YAML syntax error") {
    auto e = errors_of("jobs:\n  - name: [unclosed\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].starts_with("3:1: "));
  }
  SECTION("a tab used for indentation") {
    auto e = errors_of("jobs:\n\t- name: p\n");
    REQUIRE(e.size() == 1);
    CHECK(e[0].starts_with("2:"));
  }
  SECTION("an empty file") {
    auto r = load_string("", "t.yaml");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].str() == "t.yaml: the file is empty: it needs a 'jobs' list");
  }
  SECTION("all errors, not just the first") {
    auto e = errors_of(
        "jobs:\n"
        "  - {name: a, url: 'nope', every: 1m}\n"
        "  - {name: b, url: 'http://x.example/', every: 0s}\n"
        "  - {url: 'http://x.example/', every: 1m}\n");
    CHECK(e.size() == 3);
  }
}

TEST_CASE("a file that cannot be read is an error, not a crash", "[config]") {
  auto r = scraperd::config::load_file("/nonexistent/jobs.yaml");
  REQUIRE_FALSE(r.ok());
  CHECK(r.errors[0].str() == "/nonexistent/jobs.yaml: cannot open the file");
}
