// One database, one `scraperd run`: an exclusive flock(2) on "<database>.lock", a file beside
// the database, held for as long as the run (daemon or --once) lasts. The kernel drops the
// lock when the process ends, however it ends, so a crashed daemon never leaves a stale lock.
//
// The holder writes who it is into the file, after taking the lock:
//
//   pid=1234
//   since=2026-12-03T10:15:00Z
//   config=/etc/scraperd/jobs.yaml
//   api=127.0.0.1:8080            (empty: no API, e.g. --once)
//
// so a second `run` can say "database X is in use by scraperd pid 1234", and `status`/`jobs`
// can say whether a daemon runs on the database (db_lock_holder). Query commands never take
// the lock: they read while the daemon writes. No Asio, no HTTP, no SQLite here.
#pragma once

#include <optional>
#include <stdexcept>
#include <string>

namespace scraperd::storage {

// What the holder of a database's lock wrote about itself. A holder caught between taking
// the lock and writing leaves every field empty (pid 0).
struct LockInfo {
  long pid = 0;
  std::string since;   // ISO-8601 UTC, "2026-12-03T10:15:00Z"
  std::string config;  // absolute path of the job file; empty: none
  std::string api;     // host:port of the HTTP API; empty: none
};

// The lock file of the database at `db_path`: "<db_path>.lock".
std::string lock_path(const std::string& db_path);

// The lock could not be taken: another process holds it (`holder` says who), or the lock
// file cannot be opened (holder empty; the message names the OS reason).
class DbLockError : public std::runtime_error {
 public:
  DbLockError(const std::string& what, std::optional<LockInfo> holder)
      : std::runtime_error(what), holder_(std::move(holder)) {}
  const std::optional<LockInfo>& holder() const { return holder_; }

 private:
  std::optional<LockInfo> holder_;
};

// A held lock; released (and the file emptied) when destroyed. A default-constructed one
// holds nothing (a database that is not a file, e.g. ":memory:", has nothing to share).
class DbLock {
 public:
  DbLock() = default;
  DbLock(DbLock&& other) noexcept;
  DbLock& operator=(DbLock&& other) noexcept;
  ~DbLock();

  bool held() const { return fd_ >= 0; }
  // What the file says about the holder.
  const LockInfo& info() const { return info_; }
  // Rewrites what the file says about the holder (e.g. the API's address once it is bound);
  // a pid of 0 and an empty `since` keep the ones written when the lock was taken.
  void update(LockInfo info);

 private:
  friend DbLock lock_database(const std::string&, LockInfo);
  int fd_ = -1;
  LockInfo info_;
};

// Takes the lock of `db_path` without waiting and writes `info` into it (pid and since are
// filled in when 0/empty). Throws DbLockError when another process holds it ("database X is
// in use by scraperd pid N") or the lock file cannot be created.
DbLock lock_database(const std::string& db_path, LockInfo info = {});

// Who holds the lock of `db_path`, or nullopt when nobody does (or there is no lock file).
// Never takes the lock for longer than the test itself and never creates the file.
std::optional<LockInfo> db_lock_holder(const std::string& db_path);

// The current time as "YYYY-MM-DDTHH:MM:SSZ".
std::string iso8601_utc_now();

}  // namespace scraperd::storage
