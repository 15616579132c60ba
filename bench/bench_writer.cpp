// The writer's sustained rate (target: >= 50,000 rows/s), from 4 producer threads through
// the bounded queue into batched commits: SQLite in WAL mode on a real file, and PostgreSQL
// on its local Unix socket (COPY per batch) — the server in $SCRAPERD_BENCH_PG_URL, or a
// private one started here (tests/support/pg_cluster.h; note its fsync is off).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>
#include <vector>

#include "storage/writer.h"
#include "tests/support/pg_cluster.h"

namespace {

void push_rows(scraperd::storage::Writer& writer, int rows) {
  std::vector<std::thread> producers;
  for (int t = 0; t < 4; ++t)
    producers.emplace_back([&writer, t, rows] {
      for (int i = t; i < rows; i += 4)
        writer.push(scraperd::storage::ResultRow{
            0, "bench-job", "https://shop.example/p/" + std::to_string(i), "", 200, 10'240, 12.5,
            scraperd::storage::Clock::now()});
    });
  for (auto& p : producers) p.join();
  writer.close();  // every row committed
}

void BM_WriterRows(benchmark::State& state) {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("scraperd-bench-" + std::to_string(getpid()));
  fs::create_directories(dir);
  const int rows = static_cast<int>(state.range(0));
  for (auto _ : state) {
    fs::remove(dir / "w.db");
    fs::remove(dir / "w.db-wal");
    fs::remove(dir / "w.db-shm");
    scraperd::storage::Writer writer((dir / "w.db").string());
    push_rows(writer, rows);
  }
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(rows) * state.iterations(),
                                                benchmark::Counter::kIsRate);
  fs::remove_all(dir);
}
BENCHMARK(BM_WriterRows)->Arg(200'000)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_WriterRowsPostgres(benchmark::State& state) {
  std::string url;
  std::unique_ptr<scraperd::test::PgCluster> cluster;
  if (const char* env = std::getenv("SCRAPERD_BENCH_PG_URL"); env && *env) {
    url = env;
  } else if (scraperd::test::PgCluster::available()) {
    cluster = std::make_unique<scraperd::test::PgCluster>();
    url = cluster->url();
  } else {
    state.SkipWithError(scraperd::test::PgCluster::why_absent().c_str());
    return;
  }
  const int rows = static_cast<int>(state.range(0));
  for (auto _ : state) {
    state.PauseTiming();
    {
      scraperd::storage::Writer empty(url);  // migrates
    }
    if (cluster) cluster->psql("TRUNCATE results, errors, runs CASCADE");
    state.ResumeTiming();
    scraperd::storage::Writer writer(url);
    push_rows(writer, rows);
  }
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(rows) * state.iterations(),
                                                benchmark::Counter::kIsRate);
}
BENCHMARK(BM_WriterRowsPostgres)->Arg(200'000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
