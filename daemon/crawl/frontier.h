// Politeness: how fast and how many requests go to each host, and how many in all.
//
//   auto permit = co_await frontier.acquire("shop.example:443", job.per_host);
//   ... fetch ...            // the permit is released when it goes out of scope
//
// Per host (host:port): a token bucket (rate, burst), a cap on requests in flight and an
// optional minimum gap between request starts; across all hosts, a cap on requests in flight.
// Each host's waiters form a line, served first come, first served; only the one at its head
// waits for the host (its rate, gap, pause), and only a host that is ready queues for the
// global cap, so a slot freed anywhere goes to a request that can start now, never to one that
// would hold it while its own host makes it wait; hosts waiting for the global cap take turns,
// a request each. Slots are granted in one pass (grant()): when 64 slots free at once, 64
// waiters wake together, not one after another through the loop. When jobs that share a host
// ask for different limits, the strictest of each applies. State of an idle host is freed.
// Loop-thread only.
#pragma once

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <list>
#include <memory>
#include <string>
#include <unordered_map>

#include "config/config.h"

namespace scraperd::daemon {

using Steady = std::chrono::steady_clock;

// Tokens accrue at `rate` per second up to `burst`; a request takes one. Pure: time is given.
class TokenBucket {
 public:
  TokenBucket(double rate, int burst, Steady::time_point now);

  // Takes a token and returns zero if one is available at `now`; otherwise takes nothing and
  // returns how long until one will be.
  Steady::duration take(Steady::time_point now);

  // How long until a token is available (zero: now), taking nothing.
  Steady::duration ready_in(Steady::time_point now);

  // True when the bucket is full at `now` (forgetting it changes nothing).
  bool full(Steady::time_point now);

  // Tightens to the lower rate and burst.
  void restrict(double rate, int burst);

 private:
  void refill(Steady::time_point now);

  double rate_;
  double burst_;
  double tokens_;
  Steady::time_point last_;
};

class Frontier {
 public:
  class Permit;

  Frontier(asio::any_io_executor executor, int global_concurrency);

  // Waits until a request to `host` may start under `limits` and the global cap. Returns an
  // empty Permit (false) once close() was called: the request must not start.
  asio::awaitable<Permit> acquire(std::string host, config::PerHost limits);

  // No request to `host` starts before `until` (a server's Retry-After); requests waiting for
  // it wait longer. A later pause extends an earlier one, never shortens it.
  void pause(const std::string& host, Steady::time_point until);

  // Shutdown: every acquire() waiting now or called later returns an empty Permit at once.
  void close();

  int in_flight() const { return in_flight_; }
  std::size_t hosts() const { return hosts_.size(); }  // hosts with state (busy or recent)

 private:
  // An acquire() under way (in its coroutine frame).
  struct Waiter {
    asio::steady_timer timer;  // its sleep; cancelled to wake it early
    bool granted = false;      // grant() gave it a slot (and took it off its host's line)
    bool taken = false;        // acquire() returned the slot as a Permit
    bool timed = false;        // the head of its line, asleep until its host's time
  };
  struct Host {
    Host(std::string key, const config::PerHost& limits, Steady::time_point now);
    std::string key;
    TokenBucket bucket;
    int concurrency;
    Steady::duration delay;
    int in_flight = 0;
    int users = 0;                    // acquire() calls under way for this host
    Steady::time_point next_start{};  // last start + delay
    std::deque<Waiter*> line;         // acquire() calls in arrival order; the head goes next
    bool in_global = false;           // queued in ready_
  };
  enum class Granted { kAll, kHostWaits, kGlobalFull, kLimit };

  // Gives slots to `host`'s line, from its head, while the host and the global cap allow, at
  // most `limit`. A head that must wait for its host's time is woken to set its timer; a host
  // held back by the global cap only is queued in ready_.
  Granted grant(Host& host, int limit = 1 << 30);
  // When `host` may start its next request (its pause, gap and rate; not its caps): now or later.
  Steady::time_point ready_at(Host& host, Steady::time_point now);
  // Global slots free: hosts in ready_ take turns, a slot each.
  void serve_ready();
  void release(const std::string& host);
  void forget_if_idle(const std::string& host);

  asio::any_io_executor executor_;
  int global_concurrency_;
  int in_flight_ = 0;
  std::deque<Host*> ready_;  // hosts ready to start a request but for the global cap
  std::unordered_map<std::string, std::unique_ptr<Host>> hosts_;
  std::unordered_map<std::string, Steady::time_point> paused_;  // host → paused until
  std::list<Waiter*> sleeping_;  // every acquire() under way, for close()
  bool closed_ = false;
  Steady::time_point last_sweep_ = Steady::now();
};

// A started request's slot; releasing it (destruction) lets the next waiter go.
class Frontier::Permit {
 public:
  Permit() = default;
  Permit(Frontier* frontier, std::string host) : frontier_(frontier), host_(std::move(host)) {}
  Permit(Permit&& other) noexcept
      : frontier_(std::exchange(other.frontier_, nullptr)), host_(std::move(other.host_)) {}
  Permit& operator=(Permit&& other) noexcept;
  explicit operator bool() const { return frontier_ != nullptr; }
  ~Permit();

 private:
  Frontier* frontier_ = nullptr;
  std::string host_;
};

}  // namespace scraperd::daemon
