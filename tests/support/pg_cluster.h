// Test support: a private PostgreSQL server for the tests that need one.
//
// initdb into a fresh temp dir (as the `postgres` system user when the tests run as root:
// initdb refuses root), then pg_ctl start with a Unix socket in that dir and no TCP
// (listen_addresses=''), fsync off. Stopped (immediate) and removed when the object goes,
// also when a test fails. The binaries are found under /usr/lib/postgresql/*/bin (the
// highest version), or in $SCRAPERD_PG_BIN. Tests that need one start with
//   if (!test::PgCluster::available()) SKIP(test::PgCluster::why_absent());
// and carry the ctest label `postgres`.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace scraperd::test {

class PgCluster {
 public:
  // True when initdb, pg_ctl and postgres are there.
  static bool available();
  // The message to skip with when they are not.
  static std::string why_absent();

  // initdb and start; throws std::runtime_error (with the server's log) when that fails.
  PgCluster();
  ~PgCluster();  // stop -m immediate, remove the directory
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // A connection URL for database `db` (default: a database created once per cluster).
  std::string url(const std::string& db = "scraperd") const;
  // Creates a fresh, empty database and returns its URL.
  std::string create_database(const std::string& name);

  // Stops (fast shutdown: clients are disconnected) / starts the server again, same data.
  void stop();
  void start();

  // psql -c `sql` against `db` (unaligned, tuples only): its output without the final
  // newline. Throws std::runtime_error when psql fails.
  std::string psql(const std::string& sql, const std::string& db = "scraperd") const;

 private:
  std::filesystem::path dir_;
  bool running_ = false;
};

// One cluster for the whole test process, started at first use (each ctest is a process of
// its own, so each test gets a fresh server). REQUIRES: PgCluster::available().
PgCluster& shared_pg_cluster();

}  // namespace scraperd::test
