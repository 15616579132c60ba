// W4's site: a generated, deterministic site of N pages served from memory, for a crawl that
// follows links until it has every page. GET /p/<n> (0 <= n < N) answers ~5 KB of HTML: a
// <title>, a `.price`, and K links: to /p/<n+1> (so that every page is reachable from /p/0) and
// to K-1 pseudo-random other pages (a fixed hash of n and i). Anything else is a 404. HTTP/1.1
// keep-alive, one coroutine per connection on one thread (or --threads), pages built on the fly:
// tens of thousands of pages a second per core, so the server never bounds the crawl.
//
//   site_server [--port P] [--pages N] [--links K] [--threads T] [--log FILE]
//
// Prints "listening on PORT, N pages, depth D" (PORT 0, the default: any free port; D: the most
// link hops from /p/0 to any page, from a breadth-first walk of the site at start) and runs
// until SIGTERM/SIGINT. With --log, writes on exit: "requests R pages P distinct D 404 F"
// (P: 200 answers, D: distinct pages among them).
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <atomic>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using asio::ip::tcp;

std::uint32_t pages = 1000000;
int links = 9;

std::uint64_t mix(std::uint64_t x) {  // splitmix64's finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The i-th link of page n (0 <= i < links).
std::uint32_t link(std::uint32_t n, int i) {
  if (i == 0) return n + 1 < pages ? n + 1 : 0;
  return static_cast<std::uint32_t>(mix(std::uint64_t{n} * 64 + static_cast<std::uint64_t>(i)) %
                                    pages);
}

// The most link hops from page 0 to any page (every page is reachable through n + 1).
int depth_of_site() {
  std::vector<std::uint8_t> depth(pages, 0xff);
  std::vector<std::uint32_t> queue;
  queue.reserve(pages);
  depth[0] = 0;
  queue.push_back(0);
  int most = 0;
  for (std::size_t at = 0; at < queue.size(); ++at) {
    std::uint32_t n = queue[at];
    for (int i = 0; i < links; ++i) {
      std::uint32_t m = link(n, i);
      if (depth[m] != 0xff) continue;
      depth[m] = static_cast<std::uint8_t>(depth[n] + 1);
      most = std::max(most, int{depth[m]});
      queue.push_back(m);
    }
  }
  return queue.size() == pages ? most : -1;
}

// Filler text, so that a page is ~5 KB like a small product page.
const std::string& filler() {
  static const std::string text = [] {
    std::string t;
    static const char* words[] = {"lorem",      "ipsum", "dolor", "sit", "amet",    "consectetur",
                                  "adipiscing", "elit",  "sed",   "do",  "eiusmod", "tempor"};
    for (int i = 0; t.size() < 4600; ++i) {
      if (i % 16 == 0) t += i ? "</p>\n<p>" : "<p>";
      t += words[mix(static_cast<std::uint64_t>(i)) % 12];
      t += ' ';
    }
    return t + "</p>\n";
  }();
  return text;
}

void add_number(std::string& out, std::uint64_t v) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, v).ptr;
  out.append(digits, end);
}

// Page n's body into `body`.
void page(std::uint32_t n, std::string& body) {
  body.assign("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Page ");
  add_number(body, n);
  body += "</title></head>\n<body><h1>Item ";
  add_number(body, n);
  body += "</h1>\n<div class=\"item\"><span class=\"price\">";
  std::uint64_t cents = 100 + mix(n) % 99900;
  add_number(body, cents / 100);
  body += '.';
  body += static_cast<char>('0' + cents % 100 / 10);
  body += static_cast<char>('0' + cents % 10);
  body += "</span></div>\n<ul class=\"links\">\n";
  for (int i = 0; i < links; ++i) {
    body += "<li><a href=\"/p/";
    add_number(body, link(n, i));
    body += "\">see also ";
    add_number(body, static_cast<std::uint64_t>(i));
    body += "</a></li>\n";
  }
  body += "</ul>\n";
  const std::string& text = filler();
  std::size_t from = mix(~std::uint64_t{n}) % 200;  // pages differ a little in length
  body.append(text, from, std::string::npos);
  body += "</body></html>\n";
}

// -1 unless the request head asks for a page: "GET /p/<n> HTTP/1.1".
long page_of(std::string_view head) {
  constexpr std::string_view prefix = "GET /p/";
  if (head.substr(0, prefix.size()) != prefix) return -1;
  auto rest = head.substr(prefix.size());
  std::uint32_t n = 0;
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
  if (ec != std::errc() || end == rest.data() || *end != ' ' || n >= pages) return -1;
  return n;
}

struct Counts {
  std::atomic<std::uint64_t> requests{0}, ok{0}, missing{0};
  std::unique_ptr<std::atomic<std::uint8_t>[]> served;  // per page, with --log
};
Counts counts;

asio::awaitable<void> serve(tcp::socket socket) {
  static const std::string not_found =
      "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\r\nnot found\n";
  std::string buffer, answer, body;
  try {
    socket.set_option(tcp::no_delay(true));
    for (;;) {
      std::size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer),
                                                      "\r\n\r\n", asio::use_awaitable);
      std::string_view head(buffer.data(), n);
      long p = page_of(head);
      bool close = head.find("Connection: close") != std::string_view::npos ||
                   head.find("connection: close") != std::string_view::npos;
      buffer.erase(0, n);
      counts.requests.fetch_add(1, std::memory_order_relaxed);
      if (p < 0) {
        counts.missing.fetch_add(1, std::memory_order_relaxed);
        co_await asio::async_write(socket, asio::buffer(not_found), asio::use_awaitable);
      } else {
        counts.ok.fetch_add(1, std::memory_order_relaxed);
        if (counts.served) counts.served[static_cast<std::size_t>(p)].store(1);
        page(static_cast<std::uint32_t>(p), body);
        answer.assign(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: ");
        add_number(answer, body.size());
        answer += "\r\n\r\n";
        std::array<asio::const_buffer, 2> both{asio::buffer(answer), asio::buffer(body)};
        co_await asio::async_write(socket, both, asio::use_awaitable);
      }
      if (close) co_return;
    }
  } catch (const std::exception&) {
    // the client went away
  }
}

asio::awaitable<void> accept(tcp::acceptor& acceptor) {
  for (;;) {
    tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
    auto executor = socket.get_executor();
    asio::co_spawn(executor, serve(std::move(socket)), asio::detached);
  }
}

int usage() {
  std::fprintf(stderr,
               "usage: site_server [--port P] [--pages N] [--links K] [--threads T] "
               "[--log FILE]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);

  unsigned short port = 0;
  int threads = 1;
  const char* log_file = nullptr;
  for (int i = 1; i < argc; i += 2) {
    std::string_view key = argv[i];
    if (i + 1 >= argc) return usage();
    long value = std::atol(argv[i + 1]);
    if (key == "--port" && value >= 0 && value < 65536) {
      port = static_cast<unsigned short>(value);
    } else if (key == "--pages" && value >= 1 && value <= 100000000) {
      pages = static_cast<std::uint32_t>(value);
    } else if (key == "--links" && value >= 1 && value <= 64) {
      links = static_cast<int>(value);
    } else if (key == "--threads" && value >= 1 && value <= 64) {
      threads = static_cast<int>(value);
    } else if (key == "--log") {
      log_file = argv[i + 1];
    } else {
      return usage();
    }
  }
  if (log_file) counts.served = std::make_unique<std::atomic<std::uint8_t>[]>(pages);
  const int depth = depth_of_site();
  if (depth < 0) {
    std::fprintf(stderr, "site_server: some page is not reachable from /p/0\n");
    return 1;
  }

  asio::io_context io(threads);
  tcp::acceptor acceptor(io);
  tcp::endpoint at(asio::ip::make_address("127.0.0.1"), port);
  acceptor.open(at.protocol());
  acceptor.set_option(tcp::acceptor::reuse_address(true));
  acceptor.bind(at);
  acceptor.listen(4096);
  std::printf("listening on %u, %u pages, depth %d\n", acceptor.local_endpoint().port(), pages,
              depth);
  std::fflush(stdout);
  asio::co_spawn(io, accept(acceptor), asio::detached);
  asio::signal_set stop(io, SIGTERM, SIGINT);
  stop.async_wait([&](auto, int) { io.stop(); });
  std::vector<std::thread> more;
  for (int i = 1; i < threads; ++i) more.emplace_back([&io] { io.run(); });
  io.run();
  for (auto& t : more) t.join();
  if (log_file) {
    std::uint64_t distinct = 0;
    for (std::uint32_t p = 0; p < pages; ++p) distinct += counts.served[p].load();
    std::FILE* f = std::fopen(log_file, "w");
    if (!f) return 1;
    std::fprintf(f, "requests %llu pages %llu distinct %llu 404 %llu\n",
                 static_cast<unsigned long long>(counts.requests.load()),
                 static_cast<unsigned long long>(counts.ok.load()),
                 static_cast<unsigned long long>(distinct),
                 static_cast<unsigned long long>(counts.missing.load()));
    std::fclose(f);
  }
}
