// The SQLite writer's sustained rate (target: >= 50,000 rows/s), from 4 producer threads
// through the bounded queue into WAL-mode batched commits, on a real file.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <filesystem>
#include <thread>
#include <vector>

#include "storage/writer.h"

namespace {

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
  state.counters["rows/s"] = benchmark::Counter(static_cast<double>(rows) * state.iterations(),
                                                benchmark::Counter::kIsRate);
  fs::remove_all(dir);
}
BENCHMARK(BM_WriterRows)->Arg(200'000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
