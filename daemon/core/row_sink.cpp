#include "daemon/core/row_sink.h"

#include <algorithm>

#include "config/config.h"
#include "daemon/core/blocking.h"

namespace scraperd::daemon {

asio::awaitable<void> RowSink::store(storage::Row row) {
  redact(row);
  if (writer_.try_push(row)) co_return;
  co_await run_blocking(pool_, [this, &row] { writer_.push(std::move(row)); });
}

bool RowSink::try_store(storage::Row& row) {
  redact(row);
  return writer_.try_push(row);
}

std::string RowSink::shown(const std::string& text) const {
  return config::redact(text, secrets_);
}

void RowSink::add_secrets(const Secrets& secrets) {
  for (const auto& secret : secrets)
    if (std::find(secrets_.begin(), secrets_.end(), secret) == secrets_.end())
      secrets_.push_back(secret);
}

void RowSink::redact(storage::Row& row) const {
  if (secrets_.empty()) return;
  if (auto* r = std::get_if<storage::ResultRow>(&row)) {
    r->url = shown(r->url);
    r->final_url = shown(r->final_url);
  } else if (auto* e = std::get_if<storage::ErrorRow>(&row)) {
    e->url = shown(e->url);
    e->message = shown(e->message);
  } else if (auto* u = std::get_if<storage::UrlState>(&row)) {
    u->url = shown(u->url);
    u->links = shown(u->links);
  }
}

}  // namespace scraperd::daemon
