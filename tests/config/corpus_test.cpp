// Every file in tests/config/bad/ must fail to load with exactly the diagnostics listed for it
// in tests/config/bad/expected.txt (paths relative to that directory).
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <map>

#include "config/config.h"
#include "tests/support/temp_dir.h"

namespace fs = std::filesystem;
using scraperd::config::load_file;

namespace {

const std::string kDir = std::string(SCRAPERD_SOURCE_DIR) + "/tests/config/bad";

std::vector<std::string> diagnostics(const std::string& path) {
  std::vector<std::string> out;
  auto r = load_file(path);
  CHECK_FALSE(r.ok());
  for (const auto& d : r.errors) {
    std::string s = d.str();
    for (auto at = s.find(kDir + "/"); at != std::string::npos; at = s.find(kDir + "/"))
      s.erase(at, kDir.size() + 1);
    out.push_back(s);
  }
  return out;
}

}  // namespace

TEST_CASE("every bad file in the corpus gives its expected messages", "[config][corpus]") {
  std::map<std::string, std::vector<std::string>> expected;
  std::ifstream in(kDir + "/expected.txt");
  for (std::string line; std::getline(in, line);) {
    auto file = line.substr(0, line.find(':'));
    if (file.find('/') != std::string::npos) file = "include-loop.yaml";  // reported in b.yaml
    expected[file].push_back(line);
  }
  int files = 0;
  for (const auto& entry : fs::directory_iterator(kDir)) {
    if (entry.path().extension() != ".yaml") continue;
    std::string name = entry.path().filename().string();
    INFO(name);
    REQUIRE(expected.count(name) == 1);  // every corpus file has its expectation
    CHECK(diagnostics(entry.path().string()) == expected[name]);
    ++files;
  }
  CHECK(files >= 30);
  CHECK(files == static_cast<int>(expected.size()));
}

TEST_CASE("a 10 MB file is refused before parsing", "[config][corpus]") {
  scraperd::test::TempDir dir;
  std::string big = "jobs:\n";
  while (big.size() < 10 * 1024 * 1024)
    big += "  - {name: x, url: 'http://x.example/', every: 1m}\n";
  auto path = dir.write("big.yaml", big);
  auto r = load_file(path);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].str() == path + ": the file is 10 MB; job files are limited to 8 MB");
}

TEST_CASE("deeply nested block sequences are refused, not a stack overflow", "[config][corpus]") {
  std::string deep = "jobs:\n  ";
  for (int i = 0; i < 100'000; ++i) deep += "- ";
  deep += "x\n";
  auto r = scraperd::config::load_string(deep, "deep.yaml");
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].message == "nested more than 64 levels deep");
}
