// The scraperd command line: `scraperd COMMAND [options]`. See `scraperd --help`.
#pragma once

namespace scraperd::daemon {

// Parses arguments, runs the command, returns the process exit code:
// 0 success, 1 failure (bad config, unopenable database), 2 bad usage.
int main(int argc, char** argv);

}  // namespace scraperd::daemon
