// The live progress of `scraperd run --once` on a terminal: one line per running job on
// stderr, redrawn about once a second, kept below the log lines.
//
//   shop: 12/20 URLs, 8.1/s, 1 failed
//
// Log lines keep flowing: the display wraps the default logger's sinks, clears its lines
// before each log line and draws them again after it. Nothing is drawn when stderr is not a
// terminal or is the journal (wanted()).
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace scraperd::daemon {

class ProgressDisplay {
 public:
  // stderr is a terminal and not the journal.
  static bool wanted();

  ProgressDisplay();   // wraps the default logger's sinks
  ~ProgressDisplay();  // clears the lines, gives the logger its sinks back
  ProgressDisplay(const ProgressDisplay&) = delete;
  ProgressDisplay& operator=(const ProgressDisplay&) = delete;

  // Replaces the lines shown (none: the display is cleared). Thread-safe.
  void show(std::vector<std::string> lines);

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace scraperd::daemon
