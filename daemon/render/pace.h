// The render path's per-origin pacing record (render.cpp): for each origin, when its last
// page was asked for (its frontier permit) and when that page's main document was let go.
//
//   PacedMap paced;
//   prune_paced(paced, Steady::now());  // before each look-up: drops what no longer matters
//
// A page's main document keeps at least the gap its permit had to the previous page's. An
// origin whose last document went more than kPacedFor ago is forgotten: the next one goes at
// once, more than kPacedFor after it, which no per-host rate can forbid that the frontier
// allowed. Without pruning, a daemon that renders many sites would keep every origin forever.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <utility>

namespace scraperd::daemon::render {

using PacedClock = std::chrono::steady_clock;
// origin -> (last permit, last main document let go)
using PacedMap = std::map<std::string, std::pair<PacedClock::time_point, PacedClock::time_point>>;

inline constexpr auto kPacedFor = std::chrono::seconds(60);

inline void prune_paced(PacedMap& paced, PacedClock::time_point now,
                        PacedClock::duration keep = kPacedFor) {
  std::erase_if(paced, [&](const auto& kv) { return kv.second.second + keep < now; });
}

}  // namespace scraperd::daemon::render
