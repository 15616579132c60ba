// Plain-text tables for the CLI: columns sized to their content, the last column cut to fit
// the terminal width.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace scraperd::daemon {

void print_table(std::ostream& out, const std::vector<std::string>& header,
                 const std::vector<std::vector<std::string>>& rows, std::size_t width);

// The terminal's width in columns, or 0 when stdout is not a terminal (nothing is cut).
std::size_t terminal_width();

}  // namespace scraperd::daemon
