#include "daemon/table.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>

namespace scraperd::daemon {

void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows, std::size_t width) {
  std::vector<std::size_t> widths(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) widths[i] = header[i].size();
  for (const auto& row : rows)
    for (std::size_t i = 0; i < row.size() && i < widths.size(); ++i)
      widths[i] = std::max(widths[i], row[i].size());

  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i + 1 < cells.size()) {
        text += cells[i];
        text.append(widths[i] - cells[i].size() + 2, ' ');
      } else {
        text += cells[i];
      }
    }
    if (width > 0 && text.size() > width) text = text.substr(0, width - 1) + "~";
    out << text << '\n';
  };
  line(header);
  for (const auto& row : rows) line(row);
}

std::size_t terminal_width() {
  winsize ws{};
  if (!isatty(STDOUT_FILENO) || ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0) return 0;
  return ws.ws_col;
}

}  // namespace scraperd::daemon
