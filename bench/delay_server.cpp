// The benchmark's delay server: answers GET /delay/<ms>/<anything> with a small HTML page
// after <ms> milliseconds, on 127.0.0.1, one coroutine per connection on one thread, so it
// holds thousands of open connections at almost no cost. Keep-alive as HTTP/1.1 asks. Its
// soft limit on open files is raised to the hard one (bench/run raises both first); W2 runs ten
// of them for 10,000 connections, so that no listen queue takes more than a tenth.
//
//   delay_server [PORT]     prints "listening on PORT" (PORT 0 = any free port), runs until
//                           SIGTERM/SIGINT
//   delay_server 0 --ports N [--log FILE]
//                           listens on N free ports (N origins: W3) and prints "listening on
//                           P1 P2 ... PN"; with --log, writes "PORT MS" for every request it
//                           answered (MS: milliseconds since it started) to FILE when stopped
#include <sys/resource.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using asio::ip::tcp;

int delay_of(std::string_view head) {  // "GET /delay/1000/7 HTTP/1.1..." -> 1000, or -1
  constexpr std::string_view prefix = "GET /delay/";
  if (head.substr(0, prefix.size()) != prefix) return -1;
  int ms = 0;
  auto rest = head.substr(prefix.size());
  auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), ms);
  return ec == std::errc() && end != rest.data() ? ms : -1;
}

// Every answered request: (local port, ms since start), when --log asks for them.
std::vector<std::pair<unsigned short, long>>* access_log = nullptr;
const auto started = std::chrono::steady_clock::now();

asio::awaitable<void> serve(tcp::socket socket) {
  static const std::string ok_body =
      "<html><head><title>delayed</title></head><body><span class=\"price\">1.00</span>"
      "</body></html>\n";
  static const std::string ok = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: " +
                                std::to_string(ok_body.size()) + "\r\n\r\n" + ok_body;
  static const std::string not_found =
      "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
  std::string buffer;
  asio::steady_timer timer(socket.get_executor());
  try {
    for (;;) {
      std::size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer),
                                                      "\r\n\r\n", asio::use_awaitable);
      std::string_view head(buffer.data(), n);
      int ms = delay_of(head);
      bool close = head.find("Connection: close") != std::string_view::npos ||
                   head.find("connection: close") != std::string_view::npos;
      buffer.erase(0, n);
      if (ms < 0) {
        co_await asio::async_write(socket, asio::buffer(not_found), asio::use_awaitable);
        co_return;
      }
      timer.expires_after(std::chrono::milliseconds(ms));
      co_await timer.async_wait(asio::use_awaitable);
      if (access_log) {
        auto since = std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::steady_clock::now() - started);
        access_log->emplace_back(socket.local_endpoint().port(), static_cast<long>(since.count()));
      }
      co_await asio::async_write(socket, asio::buffer(ok), asio::use_awaitable);
      if (close) co_return;
    }
  } catch (const std::exception&) {
    // the client went away
  }
}

asio::awaitable<void> accept(tcp::acceptor& acceptor) {
  asio::steady_timer pause(acceptor.get_executor());
  bool said = false;
  for (;;) {
    auto [ec, socket] =
        co_await acceptor.async_accept(asio::experimental::as_tuple(asio::use_awaitable));
    if (ec == asio::error::operation_aborted) co_return;
    if (ec) {
      // e.g. EMFILE: keep serving the open ones. The connection stays queued and accept fails
      // again at once, so wait a little instead of spinning on the only thread.
      if (!said) std::fprintf(stderr, "delay_server: accept: %s\n", ec.message().c_str());
      said = true;
      pause.expires_after(std::chrono::milliseconds(10));
      co_await pause.async_wait(asio::experimental::as_tuple(asio::use_awaitable));
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
  }
}

}  // namespace

int main(int argc, char** argv) {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);

  int ports = 1;
  const char* log_file = nullptr;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::string_view(argv[i]) == "--ports") ports = std::atoi(argv[i + 1]);
    if (std::string_view(argv[i]) == "--log") log_file = argv[i + 1];
  }
  std::vector<std::pair<unsigned short, long>> log;
  if (log_file) access_log = &log;

  asio::io_context io(1);
  std::list<tcp::acceptor> acceptors;
  std::string said = "listening on";
  for (int i = 0; i < ports; ++i) {
    auto& acceptor = acceptors.emplace_back(io);
    tcp::endpoint at(asio::ip::make_address("127.0.0.1"),
                     static_cast<unsigned short>(argc > 1 ? std::atoi(argv[1]) : 0));
    acceptor.open(at.protocol());
    acceptor.set_option(tcp::acceptor::reuse_address(true));
    acceptor.bind(at);
    acceptor.listen(8192);
    said += " " + std::to_string(acceptor.local_endpoint().port());
    asio::co_spawn(io, accept(acceptor), asio::detached);
  }
  std::printf("%s\n", said.c_str());
  std::fflush(stdout);
  asio::signal_set stop(io, SIGTERM, SIGINT);
  stop.async_wait([&](auto, int) { io.stop(); });
  io.run();
  if (log_file) {
    std::FILE* f = std::fopen(log_file, "w");
    if (!f) return 1;
    for (const auto& [port, ms] : log) std::fprintf(f, "%u %ld\n", port, ms);
    std::fclose(f);
  }
}
