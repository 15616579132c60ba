#include "storage/db_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>
#include <utility>

#include "storage/store.h"

namespace scraperd::storage {
namespace {

// PostgreSQL has no file to lock: several daemons on one database is its cluster mode.
bool not_a_file(const std::string& db_path) {
  return db_path.empty() || db_path == ":memory:" || db_path.starts_with("file::memory:") ||
         is_postgres(db_path);
}

std::string read_all(int fd) {
  std::string text;
  char buf[1024];
  off_t at = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n <= 0 || text.size() > 16 * 1024) break;
    text.append(buf, static_cast<std::size_t>(n));
    at += n;
  }
  return text;
}

LockInfo parse(const std::string& text) {
  LockInfo info;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(at, end - at);
    at = end + 1;
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = line.substr(eq + 1);
    if (key == "pid") {
      try {
        info.pid = std::stol(value);
      } catch (const std::exception&) {
        info.pid = 0;
      }
    } else if (key == "since") {
      info.since = value;
    } else if (key == "config") {
      info.config = value;
    } else if (key == "api") {
      info.api = value;
    }
  }
  return info;
}

void write_info(int fd, const LockInfo& info) {
  std::string text = "pid=" + std::to_string(info.pid) + "\nsince=" + info.since +
                     "\nconfig=" + info.config + "\napi=" + info.api + "\n";
  if (::ftruncate(fd, 0) != 0) return;
  std::size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::pwrite(fd, text.data() + done, text.size() - done, static_cast<off_t>(done));
    if (n <= 0) return;  // the lock itself is what matters; the text is for people
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

std::string lock_path(const std::string& db_path) {
  return db_path + ".lock";
}

std::string iso8601_utc_now() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

DbLock::DbLock(DbLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), info_(std::move(other.info_)) {}

DbLock& DbLock::operator=(DbLock&& other) noexcept {
  if (this != &other) {
    DbLock gone(std::move(*this));
    fd_ = std::exchange(other.fd_, -1);
    info_ = std::move(other.info_);
  }
  return *this;
}

DbLock::~DbLock() {
  if (fd_ < 0) return;
  // Emptied while still held, so nobody reads a stale holder; the file itself stays (removing
  // it would let two processes lock two different files of the same name).
  if (::ftruncate(fd_, 0) != 0) {
    // nothing to do: the lock goes with the descriptor anyway
  }
  ::close(fd_);
}

void DbLock::update(LockInfo info) {
  if (fd_ < 0) return;
  if (info.pid == 0) info.pid = info_.pid;
  if (info.since.empty()) info.since = info_.since;
  info_ = std::move(info);
  write_info(fd_, info_);
}

DbLock lock_database(const std::string& db_path, LockInfo info) {
  DbLock lock;
  if (not_a_file(db_path)) return lock;
  std::string path = lock_path(db_path);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
  if (fd < 0)
    throw DbLockError("cannot open the lock file " + path + ": " + std::strerror(errno),
                      std::nullopt);
  // A reader (db_lock_holder) holds the lock shared for an instant: a few tries tell it from
  // a holder.
  int rc = ::flock(fd, LOCK_EX | LOCK_NB);
  for (int i = 0; i < 10 && rc != 0 && errno == EWOULDBLOCK; ++i) {
    ::usleep(10'000);
    rc = ::flock(fd, LOCK_EX | LOCK_NB);
  }
  if (rc != 0) {
    int err = errno;
    std::optional<LockInfo> holder;
    std::string what;
    if (err == EWOULDBLOCK) {
      holder = parse(read_all(fd));
      what = "database " + db_path + " is in use by scraperd" +
             (holder->pid > 0 ? " pid " + std::to_string(holder->pid) : std::string()) +
             (holder->since.empty() ? "" : " (since " + holder->since + ")") + "; lock file " +
             path;
    } else {
      what = "cannot lock " + path + ": " + std::strerror(err);
    }
    ::close(fd);
    throw DbLockError(what, holder);
  }
  lock.fd_ = fd;
  if (info.pid == 0) info.pid = static_cast<long>(::getpid());
  if (info.since.empty()) info.since = iso8601_utc_now();
  write_info(fd, info);
  lock.info_ = std::move(info);
  return lock;
}

std::optional<LockInfo> db_lock_holder(const std::string& db_path) {
  if (not_a_file(db_path)) return std::nullopt;
  int fd = ::open(lock_path(db_path).c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return std::nullopt;
  std::optional<LockInfo> holder;
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0)
    ::flock(fd, LOCK_UN);
  else if (errno == EWOULDBLOCK)
    holder = parse(read_all(fd));
  ::close(fd);
  return holder;
}

}  // namespace scraperd::storage
