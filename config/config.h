// YAML job files → one immutable, validated Config snapshot.
//
// Loading never throws and never stops at the first mistake: every problem found in a file is
// returned as a Diagnostic pointing at its line and column. A Config is only produced when
// there are no errors, so code downstream can trust every field.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace scraperd::config {

struct Diagnostic {
  std::string file;
  int line = 0;    // 1-based; 0 when the problem is the file as a whole
  int column = 0;  // 1-based
  std::string message;

  // "file:line:col: message", the form compilers use and editors jump to.
  std::string str() const;
};

struct Job {
  std::string name;
  std::vector<std::string> urls;  // absolute http(s) URLs, already validated
  std::chrono::milliseconds every{0};
  std::chrono::milliseconds timeout{0};  // whole request, connect to last byte
  std::string user_agent;
  std::uint64_t max_body = 0;  // bytes; a larger body is an error of kind too_large
};

struct Storage {
  std::string path = "scraperd.db";  // relative paths are relative to the working directory
};

struct Config {
  std::string source;    // the file it was loaded from
  int concurrency = 32;  // fetches in flight at once, across all jobs
  Storage storage;
  std::vector<Job> jobs;
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is non-empty
  std::vector<Diagnostic> errors;

  bool ok() const { return config != nullptr; }
};

// Reads and validates `path`.
LoadResult load_file(const std::string& path);

// Validates YAML text; `name` is used as the file name in diagnostics.
LoadResult load_string(std::string_view yaml, const std::string& name);

}  // namespace scraperd::config
