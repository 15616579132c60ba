#include "daemon/crawl/frontier.h"

#include <algorithm>
#include <asio/experimental/as_tuple.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <system_error>
#include <vector>

#include "daemon/core/blocking.h"

namespace scraperd::daemon {

TokenBucket::TokenBucket(double rate, int burst, Steady::time_point now)
    : rate_(rate), burst_(burst), tokens_(burst), last_(now) {}

void TokenBucket::refill(Steady::time_point now) {
  if (now <= last_) return;
  tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
  last_ = now;
}

Steady::duration TokenBucket::take(Steady::time_point now) {
  auto wait = ready_in(now);
  if (wait == Steady::duration::zero()) tokens_ -= 1.0;
  return wait;
}

Steady::duration TokenBucket::ready_in(Steady::time_point now) {
  refill(now);
  if (tokens_ >= 1.0) return Steady::duration::zero();
  return std::chrono::ceil<Steady::duration>(
      std::chrono::duration<double>((1.0 - tokens_) / rate_));
}

bool TokenBucket::full(Steady::time_point now) {
  refill(now);
  return tokens_ >= burst_;
}

void TokenBucket::restrict(double rate, int burst) {
  rate_ = std::min(rate_, rate);
  burst_ = std::min<double>(burst_, burst);
  tokens_ = std::min(tokens_, burst_);
}

Frontier::Host::Host(std::string k, const config::PerHost& limits, Steady::time_point now)
    : key(std::move(k)),
      bucket(limits.rate, limits.burst, now),
      concurrency(limits.concurrency),
      delay(limits.delay) {}

Frontier::Frontier(asio::any_io_executor executor, int global_concurrency)
    : executor_(std::move(executor)), global_concurrency_(global_concurrency) {}

// Parameters by value: a coroutine's reference parameters could outlive what they refer to.
asio::awaitable<Frontier::Permit> Frontier::acquire(std::string key, config::PerHost limits) {
  if (auto now = Steady::now(); now - last_sweep_ > std::chrono::minutes(1)) {
    last_sweep_ = now;  // hosts whose bucket was not yet full at their last release
    std::vector<std::string> keys;
    for (const auto& [k, h] : hosts_) keys.push_back(k);
    for (const auto& k : keys) forget_if_idle(k);
    std::erase_if(paused_, [&](const auto& p) { return p.second <= now; });
  }
  if (closed_) co_return Permit();
  auto& slot = hosts_[key];
  if (!slot) {
    slot = std::make_unique<Host>(key, limits, Steady::now());
  } else {  // the strictest limits of every job using this host
    slot->bucket.restrict(limits.rate, limits.burst);
    slot->concurrency = std::min(slot->concurrency, limits.concurrency);
    slot->delay = std::max<Steady::duration>(slot->delay, limits.delay);
  }
  // While users > 0 the host's state is not freed, so this pointer stays valid.
  Host* host = slot.get();
  Waiter me{asio::steady_timer(executor_)};
  host->line.push_back(&me);
  auto sleeping = sleeping_.insert(sleeping_.end(), &me);
  struct Leave {  // however acquire() ends: returned, closed, cancelled
    Frontier* frontier;
    const std::string& key;
    Host* host;
    Waiter* me;
    std::list<Waiter*>::iterator sleeping;
    ~Leave() {
      frontier->sleeping_.erase(sleeping);
      --host->users;
      if (me->granted && !me->taken) {  // a slot granted, never used: it goes on
        frontier->release(key);
        return;
      }
      auto& line = host->line;
      if (auto it = std::find(line.begin(), line.end(), me); it != line.end()) {
        const bool head = it == line.begin();
        line.erase(it);
        if (head) frontier->grant(*host);  // the next one's turn
      }
      frontier->forget_if_idle(key);
    }
  } leave{this, key, host, &me, sleeping};
  ++host->users;

  for (;;) {
    if (closed_) co_return Permit();
    if (!me.granted) grant(*host);
    if (me.granted) {
      me.taken = true;
      co_return Permit(this, key);
    }
    // The head of a host that is not ready sleeps until its host's time; the others until
    // grant() wakes them (a slot), or wakes them as the new head.
    Steady::time_point until = Steady::time_point::max();
    if (host->line.front() == &me && host->in_flight < host->concurrency && !host->in_global)
      until = ready_at(*host, Steady::now());
    me.timed = until != Steady::time_point::max();
    me.timer.expires_at(until);
    co_await me.timer.async_wait(asio::experimental::as_tuple(here()));
    me.timed = false;
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
      throw std::system_error(asio::error::operation_aborted);
  }
}

Steady::time_point Frontier::ready_at(Host& host, Steady::time_point now) {
  Steady::time_point at = now;
  if (auto p = paused_.find(host.key); p != paused_.end()) at = std::max(at, p->second);
  at = std::max(at, host.next_start);
  if (at == now)
    if (auto wait = host.bucket.ready_in(now); wait > Steady::duration::zero()) at = now + wait;
  return at;
}

Frontier::Granted Frontier::grant(Host& host, int limit) {
  for (int n = 0;; ++n) {
    if (host.line.empty()) return Granted::kAll;
    if (host.in_flight >= host.concurrency) return Granted::kHostWaits;  // release() comes back
    Waiter* head = host.line.front();
    const auto now = Steady::now();
    if (ready_at(host, now) > now) {
      if (!head->timed) head->timer.cancel();  // it sets its timer for its host's time
      return Granted::kHostWaits;
    }
    if (in_flight_ >= global_concurrency_) {
      if (!host.in_global) {
        host.in_global = true;
        ready_.push_back(&host);
      }
      return Granted::kGlobalFull;
    }
    if (n == limit) return Granted::kLimit;
    host.line.pop_front();
    host.bucket.take(now);
    ++host.in_flight;
    ++in_flight_;
    host.next_start = now + host.delay;
    head->granted = true;
    head->timer.cancel();
  }
}

void Frontier::serve_ready() {
  while (in_flight_ < global_concurrency_ && !ready_.empty()) {
    Host* host = ready_.front();
    ready_.pop_front();
    host->in_global = false;
    if (grant(*host, 1) == Granted::kLimit) {  // more to start: its next turn
      host->in_global = true;
      ready_.push_back(host);
    } else if (host->line.empty()) {
      const std::string key = host->key;
      forget_if_idle(key);
    }
  }
}

void Frontier::pause(const std::string& key, Steady::time_point until) {
  auto& at = paused_[key];
  at = std::max(at, until);  // sleepers see it when they next wake: a pause only extends
}

void Frontier::close() {
  closed_ = true;
  for (auto* waiter : sleeping_) waiter->timer.cancel();
}

void Frontier::release(const std::string& key) {
  --in_flight_;
  auto it = hosts_.find(key);
  if (it != hosts_.end()) --it->second->in_flight;
  serve_ready();  // the global slot first goes to the host that waited for one longest
  it = hosts_.find(key);
  if (it == hosts_.end()) return;
  grant(*it->second);  // its host has room again
  forget_if_idle(key);
}

void Frontier::forget_if_idle(const std::string& key) {
  auto it = hosts_.find(key);
  if (it == hosts_.end()) return;
  Host& host = *it->second;
  // Forgetting a full bucket with nothing in flight or waiting loses nothing.
  if (host.users == 0 && host.in_flight == 0 && !host.in_global &&
      host.bucket.full(Steady::now()) && Steady::now() >= host.next_start)
    hosts_.erase(it);
}

Frontier::Permit& Frontier::Permit::operator=(Permit&& other) noexcept {
  if (this != &other) {
    if (frontier_) frontier_->release(host_);
    frontier_ = std::exchange(other.frontier_, nullptr);
    host_ = std::move(other.host_);
  }
  return *this;
}

Frontier::Permit::~Permit() {
  if (frontier_) frontier_->release(host_);
}

}  // namespace scraperd::daemon
