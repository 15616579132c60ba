// Pages loaded in headless Chromium: `render: chromium` jobs.
//
//   FetchResult r = co_await render_page(io, request_for(job, url), job.render);
//
// Takes the FetchRequest the HTTP path takes and returns a FetchResult like Fetcher::fetch:
// the main document's status, final URL and headers, and as body the rendered DOM
// (document.documentElement.outerHTML once `wait_for` holds), so extraction, rows, change
// detection and error kinds downstream are those of HTTP jobs. Error kinds: those of the HTTP
// path where Chromium's network error maps to one (dns, connect, tls, timeout, read,
// redirect_loop, too_large), `timeout` when the wait condition does not hold in time, `render`
// when the page crashed, the browser died or could not be started, and `cancelled` after
// close().
//
// One Renderer per event loop (an Asio service of the io_context): at most
// `render.concurrency` pages at once (the others wait for a tab), one browser started on first
// need and replaced after `restart_after` pages, when it dies or stops answering; stopped
// after `idle_shutdown` without pages. The pages of one job run (FetchRequest::group, when the
// job keeps cookies: `cookies` is set) share a browser context made for that run, and its
// tabs: a tab whose page ended cleanly takes the run's next page. A run's context (cookies,
// storage, cache) starts empty and is thrown away 5 s after its last page; any other page gets
// a context of its own, thrown away with it. Loop-thread only.
#pragma once

#include <sys/types.h>

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <memory>
#include <string>

#include "config/config.h"
#include "daemon/crawl/fetch.h"

namespace scraperd::daemon::render {

class Renderer : public asio::execution_context::service {
 public:
  using key_type = Renderer;
  static asio::execution_context::id id;

  explicit Renderer(asio::io_context& io);
  ~Renderer() override;

  // The pool's settings (top-level `render:`); before the first page.
  void configure(const config::RenderPool& settings);

  // Loads `request.url` (GET only). `screenshot`: when not null, a PNG of the page is written
  // there (empty when it could not be taken).
  asio::awaitable<FetchResult> render(FetchRequest request, config::Render options,
                                      std::string* screenshot = nullptr);

  // Pages in flight end now as `cancelled`, and so do later ones; the browser is killed.
  void close();

  std::size_t in_flight() const;  // pages in render(), waiting for a tab or loading
  std::size_t loading() const;    // pages that have a tab (for the in-flight metric)
  pid_t browser_pid() const;      // the running browser's, -1 when none (for tests)

  struct State;  // (render.cpp's)

 private:
  void shutdown() override;
  std::shared_ptr<State> state_;
};

// The Renderer of `io` (created on first use).
Renderer& renderer(asio::io_context& io);

inline asio::awaitable<FetchResult> render_page(asio::io_context& io, FetchRequest request,
                                                config::Render options) {
  return renderer(io).render(std::move(request), std::move(options));
}

// Blocking, on a loop of its own (`scraperd try`): renders one page, then stops the browser.
FetchResult render_blocking(const FetchRequest& request, const config::Render& options,
                            const config::RenderPool& pool, std::string* screenshot = nullptr);

}  // namespace scraperd::daemon::render
