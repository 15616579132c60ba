#include "daemon/render/cdp.h"

#include <asio/posix/stream_descriptor.hpp>
#include <asio/read.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>
#include <deque>
#include <map>
#include <utility>

namespace scraperd::daemon::render {

namespace {

struct Pending {
  explicit Pending(asio::io_context& io) : timer(io) {}
  asio::steady_timer timer;  // expires at the deadline; cancelled by the reply
  bool done = false;
  std::string session;
  CdpReply reply;
};

}  // namespace

struct Cdp::State : std::enable_shared_from_this<Cdp::State> {
  State(asio::io_context& context, int to, int from)
      : io(context), out(context, to), in(context, from) {}

  asio::io_context& io;
  asio::posix::stream_descriptor out;
  asio::posix::stream_descriptor in;
  std::deque<std::string> queue;  // messages to write; the front one is being written
  bool writing = false;
  std::string buffer;  // read, not yet split
  char chunk[64 * 1024];
  std::uint64_t next_id = 0;
  std::map<std::uint64_t, std::shared_ptr<Pending>> pending;
  std::map<std::string, EventHandler> handlers;
  std::function<void()> closed_handler;
  bool closed = false;

  std::uint64_t enqueue(const std::string& method, json params, const std::string& session) {
    json msg = {{"id", ++next_id}, {"method", method}, {"params", std::move(params)}};
    if (!session.empty()) msg["sessionId"] = session;
    std::string text = msg.dump(-1, ' ', false, json::error_handler_t::replace);
    text.push_back('\0');
    queue.push_back(std::move(text));
    write_next();
    return next_id;
  }

  void write_next() {
    if (writing || queue.empty() || closed) return;
    writing = true;
    asio::async_write(out, asio::buffer(queue.front()),
                      [self = shared_from_this()](std::error_code ec, std::size_t) {
                        self->writing = false;
                        if (ec) return self->shut();
                        self->queue.pop_front();
                        self->write_next();
                      });
  }

  void read_more() {
    in.async_read_some(
        asio::buffer(chunk), [self = shared_from_this()](std::error_code ec, std::size_t n) {
          if (ec) return self->shut();
          std::size_t scanned = self->buffer.size();
          self->buffer.append(self->chunk, n);
          std::size_t start = 0;
          for (std::size_t nul; (nul = self->buffer.find('\0', scanned)) != std::string::npos;) {
            self->dispatch(std::string_view(self->buffer).substr(start, nul - start));
            if (self->closed) return;
            start = scanned = nul + 1;
          }
          self->buffer.erase(0, start);
          if (self->buffer.size() > kMaxCdpMessage) return self->shut();
          self->read_more();
        });
  }

  void dispatch(std::string_view text) {
    json msg = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (!msg.is_object()) return;
    if (auto id = msg.find("id"); id != msg.end() && id->is_number_unsigned()) {
      auto it = pending.find(id->get<std::uint64_t>());
      if (it == pending.end()) return;  // a send() or a call that timed out
      auto p = it->second;
      pending.erase(it);
      p->done = true;
      if (auto e = msg.find("error"); e != msg.end())
        p->reply.error = e->is_object() ? e->value("message", std::string("error")) : e->dump();
      else if (auto r = msg.find("result"); r != msg.end())
        p->reply.result = std::move(*r);
      p->timer.cancel();
      return;
    }
    auto method = msg.find("method");
    if (method == msg.end() || !method->is_string()) return;
    std::string session = msg.value("sessionId", std::string());
    auto h = handlers.find(session);
    if (h == handlers.end()) return;
    EventHandler handler = h->second;  // a copy: the handler may replace or forget itself
    static const json empty = json::object();
    auto params = msg.find("params");
    handler(method->get<std::string>(), params == msg.end() ? empty : *params);
  }

  void shut() {
    if (closed) return;
    closed = true;
    std::error_code ignored;
    out.close(ignored);
    in.close(ignored);
    auto waiting = std::move(pending);
    pending.clear();
    for (auto& [id, p] : waiting) {
      p->done = true;
      p->reply.error = "closed";
      p->timer.cancel();
    }
    handlers.clear();
    if (auto h = std::move(closed_handler)) h();
  }
};

Cdp::Cdp(asio::io_context& io, int to_browser, int from_browser)
    : state_(std::make_shared<State>(io, to_browser, from_browser)) {
  state_->read_more();
}

Cdp::~Cdp() {
  state_->closed_handler = nullptr;
  state_->shut();
}

asio::awaitable<CdpReply> Cdp::call(const char* method, json params, const std::string& session,
                                    Steady::time_point deadline) {
  std::vector<std::pair<std::string, json>> one;
  one.emplace_back(method, std::move(params));
  std::vector<CdpReply> replies = co_await call_all(std::move(one), session, deadline);
  co_return std::move(replies.front());
}

asio::awaitable<std::vector<CdpReply>> Cdp::call_all(
    std::vector<std::pair<std::string, json>> calls, const std::string& session,
    Steady::time_point deadline) {
  auto state = state_;  // the frame keeps it: the Cdp may go while this waits
  std::vector<CdpReply> replies(calls.size());
  if (state->closed) {
    for (auto& r : replies) r.error = "closed";
    co_return replies;
  }
  std::vector<std::pair<std::uint64_t, std::shared_ptr<Pending>>> sent;
  for (auto& [method, params] : calls) {
    auto p = std::make_shared<Pending>(state->io);
    p->timer.expires_at(deadline);
    p->session = session;
    std::uint64_t id = state->enqueue(method, std::move(params), session);
    state->pending.emplace(id, p);
    sent.emplace_back(id, std::move(p));
  }
  for (std::size_t i = 0; i < sent.size(); ++i) {
    auto& [id, p] = sent[i];
    if (!p->done) {
      std::error_code ec;
      co_await p->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!p->done) {
      state->pending.erase(id);
      replies[i].error = "timeout";
    } else {
      replies[i] = std::move(p->reply);
    }
  }
  co_return replies;
}

void Cdp::send(const std::string& method, json params, const std::string& session) {
  if (!state_->closed) state_->enqueue(method, std::move(params), session);
}

void Cdp::on_event(const std::string& session, EventHandler handler) {
  if (!state_->closed) state_->handlers[session] = std::move(handler);
}

void Cdp::forget(const std::string& session) {
  state_->handlers.erase(session);
}

void Cdp::fail_session(const std::string& session, const std::string& error) {
  auto& pending = state_->pending;
  for (auto it = pending.begin(); it != pending.end();) {
    auto p = it->second;
    if (p->session != session) {
      ++it;
      continue;
    }
    it = pending.erase(it);
    p->done = true;
    p->reply.error = error;
    p->timer.cancel();
  }
}

void Cdp::on_closed(std::function<void()> handler) {
  state_->closed_handler = std::move(handler);
}

bool Cdp::closed() const {
  return state_->closed;
}

void Cdp::close() {
  state_->shut();
}

}  // namespace scraperd::daemon::render
