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

Frontier::Host::Host(const config::PerHost& limits, Steady::time_point now)
    : bucket(limits.rate, limits.burst, now),
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
    slot = std::make_unique<Host>(limits, Steady::now());
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
      if (me->in_global) {
        auto& w = frontier->waiting_;
        w.erase(std::find(w.begin(), w.end(), me));
      }
      auto& line = host->line;
      if (auto it = std::find(line.begin(), line.end(), me); it != line.end()) {
        const bool head = it == line.begin();
        line.erase(it);
        if (head && !line.empty()) line.front()->timer.cancel();  // the next one's turn
      }
      --host->users;
      frontier->forget_if_idle(key);
      frontier->wake_global();  // a slot handed to us and left unused goes on
    }
  } leave{this, key, host, &me, sleeping};
  ++host->users;

  bool woken_for_slot = false;  // release() took us off waiting_: a global slot is ours to use
  for (;;) {
    if (closed_) co_return Permit();
    Steady::time_point until = Steady::time_point::max();  // max: until woken
    bool global = false;
    auto now = Steady::now();
    if (host->line.front() != &me || host->in_flight >= host->concurrency) {
      // not our turn yet, or the host is full: the one ahead, or release(), wakes us
    } else if (auto p = paused_.find(key); p != paused_.end() && now < p->second) {
      until = p->second;
    } else if (now < host->next_start) {
      until = host->next_start;
    } else if (auto wait = host->bucket.ready_in(now); wait > Steady::duration::zero()) {
      until = now + wait;
    } else if (in_flight_ >= global_concurrency_) {
      global = true;
    } else {
      host->bucket.take(now);
      ++host->in_flight;
      ++in_flight_;
      host->next_start = now + host->delay;
      co_return Permit(this, key);  // `leave` hands the line to the next waiter
    }
    // A slot handed to us that we cannot use goes to the next in the global queue.
    if (woken_for_slot && !global) wake_global();
    if (global && !me.in_global) {
      me.in_global = true;
      waiting_.push_back(&me);
    } else if (!global && me.in_global) {  // no longer ready (a pause came): out of the queue
      me.in_global = false;
      waiting_.erase(std::find(waiting_.begin(), waiting_.end(), &me));
    }
    me.timer.expires_at(until);
    co_await me.timer.async_wait(asio::experimental::as_tuple(here()));
    woken_for_slot = global && !me.in_global;
    if ((co_await asio::this_coro::cancellation_state).cancelled() != asio::cancellation_type::none)
      throw std::system_error(asio::error::operation_aborted);
  }
}

void Frontier::wake_global() {
  if (in_flight_ >= global_concurrency_ || waiting_.empty()) return;
  Waiter* next = waiting_.front();
  waiting_.pop_front();
  next->in_global = false;
  next->timer.cancel();
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
  wake_global();
  auto it = hosts_.find(key);
  if (it == hosts_.end()) return;
  Host& host = *it->second;
  --host.in_flight;
  if (!host.line.empty()) host.line.front()->timer.cancel();  // its host has room again
  forget_if_idle(key);
}

void Frontier::forget_if_idle(const std::string& key) {
  auto it = hosts_.find(key);
  if (it == hosts_.end()) return;
  Host& host = *it->second;
  // Forgetting a full bucket with nothing in flight or waiting loses nothing.
  if (host.users == 0 && host.in_flight == 0 && host.bucket.full(Steady::now()) &&
      Steady::now() >= host.next_start)
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
