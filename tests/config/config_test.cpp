#include "config/config.h"

#include <catch2/catch.hpp>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/support/temp_dir.h"

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
  CHECK(job.schedule.every == std::chrono::minutes(15));
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
  CHECK(cfg.jobs[0].schedule.every == std::chrono::minutes(90));
  CHECK(cfg.jobs[0].timeout == std::chrono::seconds(5));
  CHECK(cfg.jobs[0].user_agent == "bot/1");
  CHECK(cfg.jobs[0].max_body == 512u * 1024);
  CHECK(cfg.jobs[1].timeout == std::chrono::seconds(2));
  CHECK(cfg.jobs[1].schedule.every == std::chrono::seconds(90));
}

TEST_CASE("every mistake is reported at its line and column", "[config]") {
  SECTION("unknown key, with a suggestion") {
    CHECK(errors_of("jobs:\n  - name: p\n    url: http://x.example/\n    evry: 15m\n") ==
          std::vector<std::string>{
              "2:5: a job needs a schedule: 'every' (e.g. every: 15m) or 'cron' (e.g. cron: "
              "\"0 3 * * *\") (in job 'p')",
              "4:5: unknown key 'evry' in a job (did you mean 'every'?) (in job 'p')"});
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
          std::vector<std::string>{"3:12: duplicate job name 'p' (first defined at t.yaml:2)"});
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

TEST_CASE("every key of the job language loads into the Config", "[config]") {
  auto r = load_string(R"yaml(
concurrency: 64
storage: {path: /var/lib/scraperd/r.db, keep: 30d}
api: {listen: "127.0.0.1:9000", token: secret}
log: {level: debug}
defaults:
  retries: {max: 4, backoff: 2s, max_backoff: 30s, on_status: [429, 503]}
  per_host: {rate: 30/m, burst: 2, concurrency: 1, delay: 500ms}
  robots: ignore
jobs:
  - name: shop
    urls: ["http://shop.example/p/{1..3}", "http://shop.example/q/{08..10}"]
    method: post
    headers: {Accept: text/html, X-Token: abc}
    body: "q=1"
    cron: "*/5 9-17 * * mon-fri"
    timezone: Europe/Paris
    jitter: 30s
    timeout: {connect: 2s, total: 20s}
    max_body: 2MB
    max_redirects: 3
    user_agent: bot/2
    proxy: http://proxy.internal:3128
    follow: {css: "a.next", same_host: false, max_depth: 2, max_pages: 50, allow: ["/p/"], deny: ["\\.pdf$"]}
    extract:
      title: h1
      price: {xpath: "//span[@class='price']/text()", regex: "[0-9.]+", type: number}
      links: {css: a, attr: href, all: true}
      stock: {json: /items/0/stock, type: int}
    store: on_change
    notify: {webhook: "https://hooks.example/x", failing_streak: 3}
    paused: true
)yaml",
                       "t.yaml");
  for (const auto& e : r.errors) FAIL(e.str());
  const auto& cfg = *r.config;
  CHECK(cfg.concurrency == 64);
  CHECK(cfg.storage.keep == std::chrono::hours(24 * 30));
  CHECK(cfg.api.listen == "127.0.0.1:9000");
  CHECK(cfg.api.token == "secret");
  CHECK(cfg.log.level == "debug");
  const auto& j = cfg.jobs.at(0);
  CHECK(j.urls == std::vector<std::string>{"http://shop.example/p/1", "http://shop.example/p/2",
                                           "http://shop.example/p/3", "http://shop.example/q/08",
                                           "http://shop.example/q/09", "http://shop.example/q/10"});
  CHECK(j.method == "POST");
  CHECK(j.headers.size() == 2);
  CHECK(j.body == "q=1");
  REQUIRE(j.schedule.cron);
  CHECK(j.schedule.cron->text == "*/5 9-17 * * mon-fri");
  CHECK(j.schedule.timezone.name() == "Europe/Paris");
  CHECK(j.schedule.jitter == std::chrono::seconds(30));
  CHECK(j.connect_timeout == std::chrono::seconds(2));
  CHECK(j.timeout == std::chrono::seconds(20));
  CHECK(j.retries.max == 4);
  CHECK(j.retries.on_status == std::vector<int>{429, 503});
  CHECK(j.per_host.rate == Approx(0.5));
  CHECK(j.per_host.burst == 2);
  CHECK(j.per_host.delay == std::chrono::milliseconds(500));
  CHECK_FALSE(j.robots);
  CHECK(j.max_body == 2u * 1024 * 1024);
  CHECK(j.max_redirects == 3);
  CHECK(j.proxy == "http://proxy.internal:3128");
  REQUIRE(j.follow);
  CHECK(j.follow->xpath == "//a[contains(concat(' ', normalize-space(@class), ' '), ' next ')]");
  CHECK(j.follow->deny == std::vector<std::string>{"\\.pdf$"});
  REQUIRE(j.extract.size() == 4);
  CHECK(j.extract[0].name == "title");
  CHECK(j.extract[0].xpath == "//h1");
  CHECK(j.extract[1].type == scraperd::config::Field::Type::kNumber);
  CHECK(j.extract[2].attr == "href");
  CHECK(j.extract[2].all);
  CHECK(j.extract[3].json == "/items/0/stock");
  CHECK(j.store_on_change);
  REQUIRE(j.notify);
  CHECK(j.notify->failing_streak == 3);
  CHECK(j.paused);
}

TEST_CASE("${VAR} comes from the environment and never appears in messages", "[config]") {
  ::setenv("SCRAPERD_TEST_TOKEN", "s3cr3t-value", 1);
  auto ok = load_string(
      "jobs:\n  - name: a\n    url: http://x.example/\n    every: 1m\n"
      "    headers: {Authorization: 'Bearer ${SCRAPERD_TEST_TOKEN}'}\n    body: '$$5'\n"
      "    method: POST\n",
      "t.yaml");
  REQUIRE(ok.ok());
  CHECK(ok.config->jobs[0].headers[0].second == "Bearer s3cr3t-value");
  CHECK(ok.config->jobs[0].body == "$5");

  auto bad = load_string(
      "jobs:\n  - {name: a, url: http://x.example/, every: '${SCRAPERD_TEST_TOKEN}'}\n", "t.yaml");
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].message.find("s3cr3t") == std::string::npos);
  CHECK(bad.errors[0].message.find("${SCRAPERD_TEST_TOKEN}") != std::string::npos);
  ::unsetenv("SCRAPERD_TEST_TOKEN");
}

TEST_CASE("include: adds the jobs of a directory's files, in name order", "[config]") {
  scraperd::test::TempDir dir;
  std::filesystem::create_directory(dir.file("jobs.d"));
  dir.write("jobs.d/20-b.yaml", "jobs:\n  - {name: b, url: 'http://b.example/', every: 1m}\n");
  dir.write("jobs.d/10-a.yaml", "jobs:\n  - {name: a, url: 'http://a.example/', every: 1m}\n");
  dir.write("jobs.d/notes.txt", "not yaml");
  auto main = dir.write("jobs.yaml",
                        "defaults: {timeout: 3s}\ninclude: jobs.d\n"
                        "jobs:\n  - {name: main, url: 'http://m.example/', every: 1m}\n");
  auto r = scraperd::config::load_file(main);
  for (const auto& e : r.errors) FAIL(e.str());
  REQUIRE(r.config->jobs.size() == 3);
  CHECK(r.config->jobs[0].name == "main");
  CHECK(r.config->jobs[1].name == "a");
  CHECK(r.config->jobs[2].name == "b");
  CHECK(r.config->jobs[2].timeout == std::chrono::seconds(3));  // defaults apply to includes
  CHECK(r.config->jobs[2].file == dir.file("jobs.d/20-b.yaml"));

  dir.write("jobs.d/30-dup.yaml", "jobs:\n  - {name: a, url: 'http://c.example/', every: 1m}\n");
  auto dup = scraperd::config::load_file(main);
  REQUIRE(dup.errors.size() == 1);
  CHECK(dup.errors[0].str() == dir.file("jobs.d/30-dup.yaml") +
                                   ":2:12: duplicate job name 'a' (first defined at " +
                                   dir.file("jobs.d/10-a.yaml") + ":2)");
}

TEST_CASE("the examples in docs/configuration.md load without errors", "[config][docs]") {
  std::ifstream in(std::string(SCRAPERD_SOURCE_DIR) + "/docs/configuration.md");
  std::stringstream text;
  text << in.rdbuf();
  std::string doc = text.str();
  std::regex block("```yaml\n([\\s\\S]*?)```");
  int examples = 0;
  ::setenv("SHOP_TOKEN", "t", 1);
  ::setenv("SCRAPERD_API_TOKEN", "t", 1);
  for (std::sregex_iterator it(doc.begin(), doc.end(), block), end; it != end; ++it) {
    std::string yaml = (*it)[1];
    if (yaml.find("jobs:") == std::string::npos) continue;  // a fragment, not a whole file
    INFO(yaml);
    auto r = load_string(yaml, "configuration.md");
    for (const auto& e : r.errors) FAIL(e.str());
    ++examples;
  }
  CHECK(examples >= 3);
}
