// storage.url: PostgreSQL instead of a SQLite file; exclusive with storage.path; no password
// written in the job file.
#include <catch2/catch.hpp>
#include <cstdlib>

#include "config/config.h"

using scraperd::config::load_string;

namespace {

std::vector<std::string> errors_of(const std::string& yaml) {
  std::vector<std::string> out;
  for (const auto& d : load_string(yaml, "t.yaml").errors)
    out.push_back(std::to_string(d.line) + ":" + std::to_string(d.column) + ": " + d.message);
  return out;
}

constexpr const char* kJobs = "jobs:\n  - {name: j, url: 'http://127.0.0.1/', every: 1h}\n";

}  // namespace

TEST_CASE("storage.url names a PostgreSQL database, the locator storage opens", "[config]") {
  auto r = load_string(std::string("storage: {url: 'postgresql://scraper@db.internal/scraperd', "
                                   "keep: 30d}\n") +
                           kJobs,
                       "t.yaml");
  REQUIRE(r.ok());
  CHECK(r.config->storage.url == "postgresql://scraper@db.internal/scraperd");
  CHECK(r.config->storage.locator() == "postgresql://scraper@db.internal/scraperd");

  auto sqlite = load_string(std::string("storage: {path: /var/lib/s.db}\n") + kJobs, "t.yaml");
  REQUIRE(sqlite.ok());
  CHECK(sqlite.config->storage.url.empty());
  CHECK(sqlite.config->storage.locator() == "/var/lib/s.db");
}

TEST_CASE("storage.url: exclusive with path, PostgreSQL only, no password written", "[config]") {
  CHECK(errors_of(std::string("storage:\n  path: /a.db\n  url: postgresql://u@h/db\n") + kJobs) ==
        std::vector<std::string>{
            "3:8: 'storage.url' and 'storage.path' are exclusive: PostgreSQL or a SQLite file"});
  CHECK(errors_of(std::string("storage: {url: 'mysql://u@h/db'}\n") + kJobs) ==
        std::vector<std::string>{"1:16: 'storage.url' must be a PostgreSQL URL "
                                 "(postgresql://user@host/database), not 'mysql://u@h/db'"});
  const std::string no_password =
      "'storage.url' must not hold a password: give it in a password file (PGPASSFILE, or "
      "passfile= in the URL; systemd: LoadCredential=) or through ${VARIABLE}";
  CHECK(errors_of(std::string("storage: {url: 'postgresql://u:hunter2@h/db'}\n") + kJobs) ==
        std::vector<std::string>{"1:16: " + no_password});
  CHECK(errors_of(std::string("storage: {url: 'postgres://u@h/db?sslmode=require&password=x'}\n") +
                  kJobs) == std::vector<std::string>{"1:16: " + no_password});
  // From the environment, or a password file: fine.
  ::setenv("SCRAPERD_TEST_PG_PASSWORD", "hunter2", 1);
  auto r = load_string(std::string("storage: {url: 'postgresql://u:${SCRAPERD_TEST_PG_PASSWORD}@h/"
                                   "db?passfile=/run/credentials/scraperd.service/pgpass'}\n") +
                           kJobs,
                       "t.yaml");
  ::unsetenv("SCRAPERD_TEST_PG_PASSWORD");
  REQUIRE(r.ok());
  CHECK(r.config->storage.url ==
        "postgresql://u:hunter2@h/db?passfile=/run/credentials/scraperd.service/pgpass");
  // An unset variable is an error even for query commands: it would be another database.
  CHECK_FALSE(
      errors_of(std::string("storage: {url: 'postgresql://${SCRAPERD_UNSET_X}@h/db'}\n") + kJobs)
          .empty());
}
