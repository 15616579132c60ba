#include "tests/support/pg_cluster.h"

#include <fcntl.h>
#include <pwd.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace scraperd::test {
namespace {

namespace fs = std::filesystem;

// The directory of the highest PostgreSQL version's server binaries, or "".
fs::path bin_dir() {
  if (const char* env = std::getenv("SCRAPERD_PG_BIN"); env && *env) return env;
  std::vector<fs::path> found;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec))
    if (fs::exists(e.path() / "bin" / "pg_ctl")) found.push_back(e.path() / "bin");
  if (found.empty()) return {};
  std::sort(found.begin(), found.end(), [](const fs::path& a, const fs::path& b) {
    auto version = [](const fs::path& p) {
      return std::atoi(p.parent_path().filename().string().c_str());
    };
    return version(a) < version(b);
  });
  return found.back();
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs argv (as `postgres` when `as_server` and we are root), output into `out`; its status.
int run(std::vector<std::string> argv, const fs::path& out, bool as_server) {
  if (as_server && ::geteuid() == 0)
    argv.insert(argv.begin(), {"/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres",
                               "--init-groups", "--"});
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace

bool PgCluster::available() {
  auto bin = bin_dir();
  if (bin.empty() || !fs::exists(bin / "initdb") || !fs::exists(bin / "postgres")) return false;
  // As root, the server runs as the `postgres` system user.
  return ::geteuid() != 0 || (::getpwnam("postgres") && fs::exists("/usr/bin/setpriv"));
}

std::string PgCluster::why_absent() {
  return "PostgreSQL is not installed (no initdb/pg_ctl/postgres under /usr/lib/postgresql/*/bin "
         "nor $SCRAPERD_PG_BIN, or running as root without a `postgres` user): "
         "scripts/install-deps installs it";
}

PgCluster::PgCluster() {
  std::string tmpl = "/tmp/scraperd-pg-XXXXXX";  // short: a Unix socket path has ~107 bytes
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("pg_cluster: mkdtemp failed");
  dir_ = tmpl;
  if (::geteuid() == 0) {
    const passwd* pw = ::getpwnam("postgres");
    if (!pw || ::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("pg_cluster: cannot give " + dir_.string() + " to postgres");
  }
  auto bin = bin_dir();
  if (run({(bin / "initdb").string(), "-D", (dir_ / "data").string(), "-U", "scraperd",
           "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"},
          dir_ / "initdb.log", true) != 0)
    throw std::runtime_error("pg_cluster: initdb failed: " + slurp(dir_ / "initdb.log"));
  std::ofstream(dir_ / "data" / "postgresql.conf", std::ios::app)
      << "listen_addresses = ''\nunix_socket_directories = '" << dir_.string()
      << "'\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
         "max_connections = 50\nshared_buffers = 32MB\n";
  start();
  if (psql("CREATE DATABASE scraperd", "postgres").find("ERROR") != std::string::npos)
    throw std::runtime_error("pg_cluster: CREATE DATABASE failed");
}

PgCluster::~PgCluster() {
  if (running_)
    run({(bin_dir() / "pg_ctl").string(), "-D", (dir_ / "data").string(), "-m", "immediate", "-w",
         "stop"},
        dir_ / "stop.log", true);
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

void PgCluster::start() {
  if (run({(bin_dir() / "pg_ctl").string(), "-D", (dir_ / "data").string(), "-l",
           (dir_ / "server.log").string(), "-w", "-t", "60", "start"},
          dir_ / "pg_ctl.log", true) != 0)
    throw std::runtime_error("pg_cluster: pg_ctl start failed: " + slurp(dir_ / "pg_ctl.log") +
                             slurp(dir_ / "server.log"));
  running_ = true;
}

void PgCluster::stop() {
  if (run({(bin_dir() / "pg_ctl").string(), "-D", (dir_ / "data").string(), "-m", "fast", "-w",
           "-t", "60", "stop"},
          dir_ / "pg_ctl.log", true) != 0)
    throw std::runtime_error("pg_cluster: pg_ctl stop failed: " + slurp(dir_ / "pg_ctl.log"));
  running_ = false;
}

std::string PgCluster::url(const std::string& db) const {
  return "postgresql://scraperd@/" + db + "?host=" + dir_.string();
}

std::string PgCluster::create_database(const std::string& name) {
  psql("CREATE DATABASE " + name, "postgres");
  return url(name);
}

std::string PgCluster::psql(const std::string& sql, const std::string& db) const {
  auto out = dir_ / ("psql-" + std::to_string(::getpid()) + ".out");
  int rc = run({(bin_dir() / "psql").string(), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                "-d", url(db), "-c", sql},
               out, false);
  std::string text = slurp(out);
  if (rc != 0) throw std::runtime_error("psql failed (" + sql + "): " + text);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

PgCluster& shared_pg_cluster() {
  static PgCluster cluster;
  return cluster;
}

}  // namespace scraperd::test
