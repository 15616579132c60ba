// What GET /metrics says: every family alerts are written against, the standard process_*
// metrics with values that fit this process, and a text that `promtool check metrics`
// (Debian's prometheus package, installed by scripts/install-deps) finds nothing to say about.
#include <unistd.h>

#include <array>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <regex>
#include <string>

#include "daemon/core/metrics.h"
#include "tests/support/temp_dir.h"

using namespace scraperd;

namespace {

// The value of the sample `series` (name with its labels, as written), or -1.
double sample(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

// `promtool check metrics` on `text`: its exit status and what it printed.
std::pair<int, std::string> promtool(const std::string& text) {
  test::TempDir dir;
  auto file = dir.write("metrics.txt", text);
  FILE* p = ::popen(("promtool check metrics < " + file + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  std::array<char, 4096> buf;
  for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), p)) > 0;)
    out.append(buf.data(), n);
  int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

}  // namespace

TEST_CASE("metrics: build info, runs, changes, webhooks, writer failures, process", "[metrics]") {
  while (std::clock() < CLOCKS_PER_SEC / 20) {
  }  // 50 ms of CPU, for process_cpu_seconds_total to show
  daemon::Metrics m;
  m.request("prices", "shop.example:443", "ok", 0.2);
  m.request("prices", "shop.example:443", "timeout", 10);
  m.run_started(0.01);
  m.run_ended("prices", "ok");
  m.run_ended("prices", "ok");
  m.run_ended("say \"hi\"\\", "failed");
  m.run_ended("nightly", "skipped", 3);
  m.changed("prices");
  m.webhook("prices", "ok");
  m.webhook("prices", "retried");
  m.webhook("prices", "failed");
  m.success("prices", std::chrono::system_clock::now());
  m.waited(0.5);
  m.reloaded(true);
  std::string text = m.render({.rows_queued = 4, .rows_committed = 100, .commit_failures = 2});

  CHECK(sample(text, "scraperd_build_info{version=\"" SCRAPERD_VERSION "\"}") == 1);
  CHECK(sample(text, "scraperd_runs_total{job=\"prices\",status=\"ok\"}") == 2);
  CHECK(sample(text, "scraperd_runs_total{job=\"say \\\"hi\\\"\\\\\",status=\"failed\"}") == 1);
  CHECK(sample(text, "scraperd_runs_total{job=\"nightly\",status=\"skipped\"}") == 3);
  CHECK(sample(text, "scraperd_changes_total{job=\"prices\"}") == 1);
  for (auto outcome : {"ok", "retried", "failed"})
    CHECK(sample(text, "scraperd_webhook_deliveries_total{job=\"prices\",outcome=\"" +
                           std::string(outcome) + "\"}") == 1);
  CHECK(sample(text, "scraperd_writer_commit_failures_total") == 2);
  CHECK(sample(text, "scraperd_writer_queue_rows") == 4);
  CHECK(sample(text, "scraperd_writer_committed_rows_total") == 100);

  // process_*: what this very process is.
  CHECK(sample(text, "process_cpu_seconds_total") >= 0.04);
  CHECK(sample(text, "process_resident_memory_bytes") > 1024 * 1024);
  CHECK(sample(text, "process_virtual_memory_bytes") >=
        sample(text, "process_resident_memory_bytes"));
  CHECK(sample(text, "process_open_fds") >= 3);
  CHECK(sample(text, "process_max_fds") >= sample(text, "process_open_fds"));
  double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  double started = sample(text, "process_start_time_seconds");
  CHECK(started <= now + 1);
  CHECK(started > now - 24 * 3600);  // this test binary started today

  auto [status, said] = promtool(text);
  INFO(said);
  CHECK(status == 0);
  CHECK(said.empty());
}

TEST_CASE("metrics: a fresh daemon's text passes promtool too", "[metrics]") {
  daemon::Metrics m;
  std::string text = m.render({});
  CHECK(sample(text, "scraperd_writer_commit_failures_total") == 0);
  auto [status, said] = promtool(text);
  INFO(said);
  CHECK(status == 0);
  CHECK(said.empty());
}
