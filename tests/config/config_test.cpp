#include "config/config.h"

#include <unistd.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
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
  CHECK(r.errors[0].str() == "/nonexistent/jobs.yaml: cannot open: No such file or directory");
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
    tls: {verify: true, ca_file: ""}
    cookies: false
    http2: false
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
  CHECK(j.tls == scraperd::config::Tls{"", true});
  CHECK_FALSE(j.cookies);
  CHECK_FALSE(j.http2);
  REQUIRE(j.follow);
  CHECK(j.follow->xpath ==
        "descendant-or-self::a[contains(concat(' ', normalize-space(@class), ' '), ' next ')]");
  CHECK(j.follow->deny == std::vector<std::string>{"\\.pdf$"});
  REQUIRE(j.extract.size() == 4);
  CHECK(j.extract[0].name == "title");
  CHECK(j.extract[0].xpath == "descendant-or-self::h1");
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

namespace {

// A file the loader takes for a PEM bundle (it looks for the BEGIN line; curl reads the rest).
constexpr const char* kPem =
    "# test CA\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

// Every warning of `yaml`, as "line:col: message", after checking that it loaded.
std::vector<std::string> warnings_of(const std::string& yaml) {
  auto r = load_string(yaml, "t.yaml");
  for (const auto& e : r.errors) FAIL(e.str());
  std::vector<std::string> out;
  for (const auto& d : r.warnings) {
    REQUIRE(d.file == "t.yaml");
    out.push_back(std::to_string(d.line) + ":" + std::to_string(d.column) + ": " + d.message);
  }
  return out;
}

}  // namespace

TEST_CASE("tls, cookies and http2 default to on with the system's CAs", "[config][tls]") {
  auto r = load_string("jobs:\n  - {name: a, url: 'https://x.example/', every: 1m}\n", "t.yaml");
  REQUIRE(r.ok());
  const auto& j = r.config->jobs[0];
  CHECK(j.tls == scraperd::config::Tls{});
  CHECK(j.tls.ca_file.empty());
  CHECK(j.tls.verify);
  CHECK(j.cookies);
  CHECK(j.http2);
  CHECK(j.proxy.empty());
  CHECK(r.warnings.empty());
}

TEST_CASE("tls, cookies, http2 and proxy come from defaults and a job overrides them",
          "[config][tls]") {
  scraperd::test::TempDir dir;
  std::filesystem::create_directory(dir.file("certs"));
  dir.write("certs/lab.pem", kPem);
  dir.write("certs/other.pem", kPem);
  auto main = dir.write("jobs.yaml", R"(
defaults:
  tls: {ca_file: certs/lab.pem}
  cookies: false
  http2: no
  proxy: socks5h://tor.internal
jobs:
  - {name: inherits, url: "https://a.example/", every: 1m}
  - name: overrides
    url: https://b.example/
    every: 1m
    tls: {ca_file: certs/other.pem, verify: true}
    cookies: true
    http2: yes
    proxy: ""
  - name: system-cas
    url: https://c.example/
    every: 1m
    tls: {ca_file: ""}
  - name: only-verify
    url: https://d.example/
    every: 1m
    tls: {verify: false}
)");
  auto r = scraperd::config::load_file(main);
  for (const auto& e : r.errors) FAIL(e.str());
  REQUIRE(r.config->jobs.size() == 4);
  const auto& inherits = r.config->jobs[0];
  CHECK(inherits.tls.ca_file == dir.file("certs/lab.pem"));  // absolute, from the file's dir
  CHECK(inherits.tls.verify);
  CHECK_FALSE(inherits.cookies);
  CHECK_FALSE(inherits.http2);
  CHECK(inherits.proxy == "socks5h://tor.internal:1080");
  const auto& overrides = r.config->jobs[1];
  CHECK(overrides.tls.ca_file == dir.file("certs/other.pem"));
  CHECK(overrides.tls.verify);
  CHECK(overrides.cookies);
  CHECK(overrides.http2);
  CHECK(overrides.proxy.empty());
  CHECK(r.config->jobs[2].tls.ca_file.empty());
  const auto& only_verify = r.config->jobs[3];  // the other tls key still comes from defaults
  CHECK(only_verify.tls.ca_file == dir.file("certs/lab.pem"));
  CHECK_FALSE(only_verify.tls.verify);
  CHECK_FALSE(only_verify.cookies);
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].str() ==
        main +
            ":23:19: tls.verify is false: certificates and host names are not checked (in job "
            "'only-verify')");
}

TEST_CASE("a relative ca_file is read from the directory of the file that names it",
          "[config][tls]") {
  scraperd::test::TempDir dir;
  std::filesystem::create_directory(dir.file("jobs.d"));
  dir.write("jobs.d/ca.pem", kPem);
  dir.write("jobs.d/lab.yaml",
            "jobs:\n  - {name: lab, url: 'https://lab.internal/', every: 1m,"
            " tls: {ca_file: ca.pem}}\n");
  auto main = dir.write("jobs.yaml",
                        "include: jobs.d\n"
                        "jobs:\n  - {name: main, url: 'https://m.example/', every: 1m,"
                        " tls: {ca_file: ca.pem}}\n");
  auto r = scraperd::config::load_file(main);
  REQUIRE(r.errors.size() == 1);  // jobs.yaml's ca.pem is looked for next to jobs.yaml
  CHECK(r.errors[0].str() == main + ":3:71: 'tls.ca_file' 'ca.pem' does not exist (relative to " +
                                 std::filesystem::path(main).parent_path().string() +
                                 ") (in job 'main')");

  dir.write("jobs.yaml", "include: jobs.d\njobs: []\n");
  r = scraperd::config::load_file(main);
  for (const auto& e : r.errors) FAIL(e.str());
  REQUIRE(r.config->jobs.size() == 1);
  CHECK(r.config->jobs[0].tls.ca_file == dir.file("jobs.d/ca.pem"));
}

TEST_CASE("a ca_file that is missing, a directory or not PEM is an error at its position",
          "[config][tls]") {
  scraperd::test::TempDir dir;
  dir.write("cert.der", std::string("\x30\x82\x01\x0a", 4));
  std::filesystem::create_directory(dir.file("certs"));
  auto job = [](const std::string& ca) {
    return "jobs:\n  - name: a\n    url: https://x.example/\n    every: 1m\n    tls:\n"
           "      ca_file: " +
           ca + "\n";
  };
  CHECK(errors_of(job(dir.file("missing.pem"))) ==
        std::vector<std::string>{"6:16: 'tls.ca_file' '" + dir.file("missing.pem") +
                                 "' does not exist (in job 'a')"});
  CHECK(errors_of(job(dir.file("certs"))) ==
        std::vector<std::string>{"6:16: 'tls.ca_file' '" + dir.file("certs") +
                                 "' is a directory, not a PEM file (in job 'a')"});
  CHECK(errors_of(job(dir.file("cert.der"))) ==
        std::vector<std::string>{"6:16: 'tls.ca_file' '" + dir.file("cert.der") +
                                 "' is not a PEM file of certificates (no -----BEGIN "
                                 "CERTIFICATE----- line) (in job 'a')"});
  // In defaults: the same message, without a job.
  CHECK(errors_of("defaults:\n  tls: {ca_file: " + dir.file("missing.pem") +
                  "}\njobs:\n  - {name: a, url: 'https://x.example/', every: 1m}\n") ==
        std::vector<std::string>{"2:18: 'tls.ca_file' '" + dir.file("missing.pem") +
                                 "' does not exist"});
  if (::geteuid() != 0) {  // root reads anything
    auto locked = dir.write("locked.pem", kPem);
    std::filesystem::permissions(locked, std::filesystem::perms::none);
    CHECK(errors_of(job(locked)) ==
          std::vector<std::string>{"6:16: 'tls.ca_file' '" + locked +
                                   "' cannot be read: Permission denied (in job 'a')"});
  }
}

TEST_CASE("tls, cookies and http2 of the wrong type are errors at their line and column",
          "[config][tls]") {
  SECTION("in a job") {
    CHECK(errors_of("jobs:\n  - name: a\n    url: https://x.example/\n    every: 1m\n"
                    "    tls: {verify: maybe, ca_file: [a.pem]}\n"
                    "    cookies: {jar: true}\n"
                    "    http2: sometimes\n") ==
          std::vector<std::string>{
              "5:19: 'tls.verify' must be true or false (in job 'a')",
              "5:35: 'tls.ca_file' must be a string (in job 'a')",
              "6:14: 'cookies' must be true or false (in job 'a')",
              "7:12: 'http2' must be true or false (in job 'a')",
          });
  }
  SECTION("in defaults") {
    CHECK(errors_of("defaults:\n  tls: true\n  cookies: 2\n  http2: [h2]\n"
                    "jobs:\n  - {name: a, url: 'https://x.example/', every: 1m}\n") ==
          std::vector<std::string>{
              "2:8: 'tls' must be a mapping of key: value",
              "3:12: 'cookies' must be true or false",
              "4:10: 'http2' must be true or false",
          });
  }
  SECTION("an unknown key under tls, with a suggestion") {
    CHECK(errors_of("defaults:\n  tls: {verfy: false}\n"
                    "jobs:\n  - {name: a, url: 'https://x.example/', every: 1m,"
                    " tls: {cafile: x.pem}}\n") ==
          std::vector<std::string>{
              "2:9: unknown key 'verfy' in 'tls' (did you mean 'verify'?)",
              "4:59: unknown key 'cafile' in 'tls' (did you mean 'ca_file'?) (in job 'a')",
          });
  }
}

TEST_CASE("tls.verify: false loads, with a warning", "[config][tls]") {
  SECTION("set in a job") {
    auto r = load_string(
        "jobs:\n"
        "  - name: lab\n    url: https://10.0.0.5/\n    every: 1m\n    tls: {verify: false}\n"
        "  - {name: safe, url: 'https://x.example/', every: 1m}\n",
        "t.yaml");
    REQUIRE(r.ok());
    REQUIRE(r.errors.empty());
    CHECK_FALSE(r.config->jobs[0].tls.verify);
    CHECK(r.config->jobs[1].tls.verify);
    REQUIRE(r.warnings.size() == 1);
    CHECK(r.warnings[0].str() ==
          "t.yaml:5:19: tls.verify is false: certificates and host names are not checked (in job "
          "'lab')");
  }
  SECTION("set in defaults: one warning there, naming the jobs that take it") {
    CHECK(warnings_of("defaults:\n  tls: {verify: false}\njobs:\n"
                      "  - {name: a, url: 'https://a.example/', every: 1m}\n"
                      "  - {name: b, url: 'https://b.example/', every: 1m, tls: {verify: true}}\n"
                      "  - {name: c, url: 'https://c.example/', every: 1m}\n") ==
          std::vector<std::string>{
              "2:17: tls.verify is false in 'defaults': certificates and host names are not "
              "checked for 2 jobs ('a', 'c')"});
    std::string many = "defaults:\n  tls: {verify: off}\njobs:\n";
    for (int i = 0; i < 7; ++i)
      many += "  - {name: j" + std::to_string(i) + ", url: 'https://x.example/', every: 1m}\n";
    CHECK(warnings_of(many) ==
          std::vector<std::string>{"2:17: tls.verify is false in 'defaults': certificates and "
                                   "host names are not checked for 7 jobs ('j0', 'j1', 'j2', "
                                   "'j3', 'j4' and 2 more)"});
  }
  SECTION("no warning when every job turns it back on, or with verify: true") {
    CHECK(warnings_of("defaults:\n  tls: {verify: false}\njobs:\n"
                      "  - {name: a, url: 'https://a.example/', every: 1m, tls: {verify: yes}}\n")
              .empty());
    CHECK(warnings_of("jobs:\n  - {name: a, url: 'https://a.example/', every: 1m,"
                      " tls: {verify: true}}\n")
              .empty());
  }
  SECTION("warnings come with errors too, and never make a load fail") {
    auto r = load_string(
        "jobs:\n"
        "  - {name: lab, url: 'https://10.0.0.5/', every: 1m, tls: {verify: false}}\n"
        "  - {name: bad, url: 'https://x.example/', every: soon}\n",
        "t.yaml");
    CHECK_FALSE(r.ok());
    CHECK(r.errors.size() == 1);
    CHECK(r.warnings.size() == 1);
  }
}

TEST_CASE("proxy takes http, https, socks5 and socks5h URLs, with the port written out",
          "[config][proxy]") {
  auto proxy_of = [](const std::string& proxy) {
    auto r = load_string(
        "jobs:\n  - {name: a, url: 'https://x.example/', every: 1m, proxy: '" + proxy + "'}\n",
        "t.yaml");
    for (const auto& e : r.errors) FAIL(e.str());
    return r.config->jobs[0].proxy;
  };
  CHECK(proxy_of("http://proxy.internal:3128") == "http://proxy.internal:3128");
  CHECK(proxy_of("http://proxy.internal") == "http://proxy.internal:80");
  CHECK(proxy_of("https://proxy.internal/") == "https://proxy.internal:443");
  CHECK(proxy_of("socks5://127.0.0.1") == "socks5://127.0.0.1:1080");
  CHECK(proxy_of("socks5h://tor.internal:9050") == "socks5h://tor.internal:9050");
  CHECK(proxy_of("SOCKS5H://tor.internal") == "socks5h://tor.internal:1080");
  CHECK(proxy_of("http://user:p%40ss@proxy.internal:8080") ==
        "http://user:p%40ss@proxy.internal:8080");
  CHECK(proxy_of("socks5://[::1]:1081") == "socks5://[::1]:1081");
  CHECK(proxy_of("") == "");
}

TEST_CASE("a proxy with another scheme, no host, a bad port or a path is an error",
          "[config][proxy]") {
  auto error_of = [](const std::string& proxy) {
    auto e = errors_of(
        "jobs:\n  - name: a\n    url: https://x.example/\n    every: 1m\n"
        "    proxy: '" +
        proxy + "'\n");
    REQUIRE(e.size() == 1);
    return e[0];
  };
  CHECK(error_of("ftp://proxy.internal:21") ==
        "5:12: 'proxy' 'ftp://proxy.internal:21' must start with http://, https://, socks5:// "
        "or socks5h:// (in job 'a')");
  CHECK(error_of("socks4://proxy.internal") ==
        "5:12: 'proxy' 'socks4://proxy.internal' must start with http://, https://, socks5:// "
        "or socks5h:// (in job 'a')");
  CHECK(error_of("proxy.internal:3128") ==
        "5:12: 'proxy' 'proxy.internal:3128' must start with http://, https://, socks5:// or "
        "socks5h:// (in job 'a')");
  CHECK(error_of("socks5h:///") ==
        "5:12: 'proxy' 'socks5h:///' has no host (write socks5h://HOST:PORT) (in job 'a')");
  CHECK(error_of("http://proxy.internal:99999") ==
        "5:12: 'proxy' 'http://proxy.internal:99999' has a port that is not a number from 1 to "
        "65535 (in job 'a')");
  CHECK(error_of("http://proxy.internal:3128/squid?x=1") ==
        "5:12: 'proxy' 'http://proxy.internal:3128/squid?x=1' has a path, query or fragment (a "
        "proxy is written http://HOST:PORT) (in job 'a')");
  CHECK(error_of("http://pro xy") ==
        "5:12: 'proxy' 'http://pro xy' is not a URL like http://proxy.example:3128 (schemes: "
        "http://, https://, socks5:// or socks5h://) (in job 'a')");
  // In defaults, and of the wrong type.
  CHECK(errors_of("defaults: {proxy: 'ftp://p.internal'}\n"
                  "jobs:\n  - {name: a, url: 'https://x.example/', every: 1m, proxy: [x]}\n") ==
        std::vector<std::string>{"1:19: 'proxy' 'ftp://p.internal' must start with http://, "
                                 "https://, socks5:// or socks5h://",
                                 "3:60: 'proxy' must be a string (in job 'a')"});
}

TEST_CASE("same_job sees tls, cookies, http2 and proxy", "[config][tls]") {
  scraperd::test::TempDir dir;
  auto ca = dir.write("ca.pem", kPem);
  auto load = [&](const std::string& extra) {
    auto r = load_string(
        "jobs:\n  - {name: a, url: 'https://x.example/', every: 1m" + extra + "}\n", "t.yaml");
    for (const auto& e : r.errors) FAIL(e.str());
    return r.config->jobs.at(0);
  };
  auto base = load("");
  CHECK(scraperd::config::same_job(base, load("")));
  CHECK(scraperd::config::same_job(base, load(", tls: {verify: true}, cookies: yes")));
  CHECK_FALSE(scraperd::config::same_job(base, load(", tls: {verify: false}")));
  CHECK_FALSE(scraperd::config::same_job(base, load(", tls: {ca_file: '" + ca + "'}")));
  CHECK_FALSE(scraperd::config::same_job(base, load(", cookies: false")));
  CHECK_FALSE(scraperd::config::same_job(base, load(", http2: false")));
  CHECK_FALSE(scraperd::config::same_job(base, load(", proxy: 'socks5h://p.internal'")));
  CHECK(scraperd::config::same_job(load(", proxy: 'http://p.internal'"),
                                   load(", proxy: 'http://p.internal:80'")));
}

TEST_CASE("a job slower than its interval at its host's limits is a warning", "[config]") {
  auto slow = [](const std::string& schedule, const std::string& limits) {
    return warnings_of(
        "jobs:\n  - name: j\n    urls: ['http://a.example/{1..124}', "
        "'http://b.example/']\n    " +
        schedule + "\n    per_host: " + limits + "\n");
  };
  // (124 - burst 4) / 2 per second = 60 s: it just fits a minute, not 59 seconds.
  CHECK(slow("every: 1m", "{rate: 2/s, burst: 4}").empty());
  CHECK(slow("every: 59s", "{rate: 2/s, burst: 4}") ==
        std::vector<std::string>{
            "3:11: job 'j' cannot finish within its interval: its 124 URLs on a.example:80 take "
            "at least 60s at 2/s (per_host.rate, burst 4), and it is due every 59s: each run "
            "overlaps the next due time, which is skipped (raise per_host.rate or lengthen the "
            "schedule)"});
  // cron: the shortest gap between its firings; delay counts too.
  CHECK(slow("cron: '* * * * *'", "{rate: 100/s, delay: 1s}").size() == 1);
  CHECK(slow("cron: '0 3 * * *'", "{rate: 100/s, delay: 1s}").empty());
  CHECK_THAT(slow("every: 1h", "{rate: 30/h, burst: 1}").at(0),
             Catch::Contains("take at least 4.1h at 30/h"));
}

TEST_CASE("a duplicate name is an error even when the other job has errors", "[config]") {
  auto r = load_string(
      "jobs:\n  - {name: a, url: 'nope', every: 1m}\n"
      "  - {name: a, url: 'http://x.example/', every: 1m}\n",
      "t.yaml");
  REQUIRE(r.errors.size() == 2);
  CHECK_THAT(r.errors[0].str(), Catch::Contains("t.yaml:2:") && Catch::Contains("'nope'"));
  CHECK(r.errors[1].str() == "t.yaml:3:12: duplicate job name 'a' (first defined at t.yaml:2)");
}

TEST_CASE("api.token_file: the token from a file beside the job file, errors at line:col",
          "[config]") {
  scraperd::test::TempDir dir;
  dir.write("api-token", "  s3cret-from-file \nsecond line is ignored\n");
  dir.write("empty-token", "\n");
  auto ok = dir.write("jobs.yaml", "api: {token_file: api-token}\njobs: []\n");
  auto r = scraperd::config::load_file(ok);
  for (const auto& e : r.errors) FAIL(e.str());
  CHECK(r.config->api.token == "s3cret-from-file");

  auto missing = dir.write("missing.yaml", "api:\n  token_file: no-such-file\njobs: []\n");
  r = scraperd::config::load_file(missing);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].line == 2);
  CHECK(r.errors[0].column == 15);
  CHECK_THAT(r.errors[0].message, Catch::Contains("cannot be read") &&
                                      Catch::Contains("No such file or directory") &&
                                      Catch::Contains("(relative to "));

  auto empty = dir.write("empty.yaml", "api: {token_file: empty-token}\njobs: []\n");
  r = scraperd::config::load_file(empty);
  REQUIRE(r.errors.size() == 1);
  CHECK_THAT(r.errors[0].message, Catch::Contains("holds no token"));

  auto both = dir.write("both.yaml", "api: {token: x, token_file: api-token}\njobs: []\n");
  r = scraperd::config::load_file(both);
  REQUIRE(r.errors.size() == 1);
  CHECK_THAT(r.errors[0].message, Catch::Contains("both set"));
}
