// Loading and validating job files of 1,000 and 10,000 jobs (target: 10,000 in <= 0.3 s).
#include <benchmark/benchmark.h>

#include <yaml-cpp/yaml.h>

#include <string>

#include "config/config.h"

namespace {

// Plain jobs: a name, a URL and a schedule.
std::string plain_file(int jobs) {
  std::string y = "jobs:\n";
  for (int i = 0; i < jobs; ++i)
    y += "  - name: job-" + std::to_string(i) + "\n    url: https://host" +
         std::to_string(i % 500) + ".example/p/" + std::to_string(i) + "\n    every: 15m\n";
  return y;
}

// Rich jobs: a URL range, a schedule, politeness settings and three extracted fields.
std::string rich_file(int jobs) {
  std::string y =
      "defaults:\n  timeout: 10s\n  per_host: {rate: 2/s, burst: 4, concurrency: 2}\njobs:\n";
  for (int i = 0; i < jobs; ++i) {
    std::string n = std::to_string(i);
    y += "  - name: job-" + n + "\n    urls: [\"https://host" + std::to_string(i % 500) +
         ".example/p/" + n + "/{1..3}\"]\n" +
         (i % 4 ? "    every: 15m\n" : "    cron: \"*/10 * * * *\"\n") +
         "    extract:\n      title: h1\n"
         "      price: {xpath: \"//span[@class='price']/text()\", regex: \"[0-9.]+\", type: "
         "number}\n"
         "      links: {css: \"ul.items > li a\", attr: href, all: true}\n";
  }
  return y;
}

void load(benchmark::State& state, const std::string& text) {
  for (auto _ : state) {
    auto r = scraperd::config::load_string(text, "bench.yaml");
    if (!r.ok()) state.SkipWithError(r.errors[0].str().c_str());
    benchmark::DoNotOptimize(r);
  }
  state.counters["jobs/s"] =
      benchmark::Counter(static_cast<double>(state.range(0)), benchmark::Counter::kIsRate);
  state.counters["MB"] = static_cast<double>(text.size()) / 1e6;
}
void BM_LoadPlain(benchmark::State& state) {
  load(state, plain_file(static_cast<int>(state.range(0))));
}
void BM_LoadRich(benchmark::State& state) {
  load(state, rich_file(static_cast<int>(state.range(0))));
}
// The floor set by the YAML library: parsing the rich file with yaml-cpp alone.
void BM_YamlCppParseOnly(benchmark::State& state) {
  std::string text = rich_file(static_cast<int>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(YAML::Load(text));
}
BENCHMARK(BM_LoadPlain)->Arg(10000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_LoadRich)->Arg(1000)->Arg(10000)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_YamlCppParseOnly)->Arg(10000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
