// The web dashboard's files (daemon/ui/: pages, one stylesheet, one script), embedded in the
// binary by cmake/embed_files.cmake, so that the daemon serves them with no web root.
#pragma once

#include <span>
#include <string_view>

namespace scraperd::daemon {

struct UiFile {
  std::string_view name;  // "index.html", "app.js", ...
  std::string_view body;
};

std::span<const UiFile> ui_files();

}  // namespace scraperd::daemon
