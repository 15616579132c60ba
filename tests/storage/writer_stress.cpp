// Test helper: writer_stress DB TAG writes result rows TAG/0, TAG/1, ... (bytes = sequence
// number) through storage::Writer as fast as it can, until it is killed.
#include <string>

#include "storage/writer.h"

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  std::string tag = argv[2];
  scraperd::storage::Writer writer(argv[1], {.capacity = 2'000, .max_batch = 500});
  for (std::int64_t i = 0;; ++i)
    writer.push(scraperd::storage::ResultRow{0, tag, tag + "/" + std::to_string(i), "", 200, i, 1.0,
                                             scraperd::storage::Clock::now()});
}
