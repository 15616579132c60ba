// scraperd migrate --from FILE --to URL: a SQLite history into PostgreSQL (storage.url).
#include <iostream>

#include "daemon/cli/commands.h"
#include "storage/store.h"

namespace scraperd::daemon {

int cmd_migrate(const Args& args) {
  if (!args.positional.empty())
    return usage_error("unexpected argument '" + args.positional[0] + "'");
  auto from = args.get("--from");
  auto to = args.get("--to");
  if (!from || from->empty()) return usage_error("migrate needs --from FILE (a SQLite database)");
  if (!to || !storage::is_postgres(*to))
    return usage_error("migrate needs --to postgresql://... (a PostgreSQL database)");
  if (storage::is_postgres(*from))
    return usage_error("--from is a SQLite file; the history goes --to PostgreSQL");
  try {
    auto copied = storage::copy_history(*from, *to);
    std::cout << "copied " << *from << " to " << storage::redacted(*to) << ":";
    for (const auto& [table, rows] : copied) std::cout << " " << table << " " << rows << ",";
    std::cout << " in one transaction\n";
    return 0;
  } catch (const storage::Error& e) {
    std::cerr << "scraperd migrate: " << e.what() << '\n';
    return 1;
  }
}

}  // namespace scraperd::daemon
