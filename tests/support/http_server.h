// Test support: a real cpp-httplib server (plain or TLS) on 127.0.0.1, port chosen by the
// kernel, serving on its own thread; stopped and joined when it goes out of scope.
#pragma once

#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

namespace scraperd::test {

// Server: httplib::Server (http://) or httplib::SSLServer (https://, built with its
// certificate and key).
template <typename Server>
class BasicHttpServer {
  static const char* c_str(const std::string& s) { return s.c_str(); }

 public:
  template <typename... Args>
  explicit BasicHttpServer(const Args&... args) : server_(c_str(args)...) {}

  // Register handlers on server() before calling start().
  Server& server() { return server_; }

  // `keep_alive_requests`: how many requests a connection may carry. One by default: an idle
  // keep-alive connection would hold stop() for the server's keep-alive timeout (5 s) at the
  // end of every test; a test that keeps more sets a short set_keep_alive_timeout too.
  void start(int keep_alive_requests = 1) {
    if (!server_.is_valid()) throw std::runtime_error("test server: bad certificate or key");
    server_.set_keep_alive_max_count(static_cast<std::size_t>(keep_alive_requests));
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("test server: cannot bind 127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // httplib 0.11 ignores stop() until the listen loop runs (it has no wait_until_ready).
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

  ~BasicHttpServer() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    constexpr bool tls = !std::is_same_v<Server, httplib::Server>;
    return std::string(tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  Server server_;
  std::thread thread_;
  int port_ = 0;
};

using HttpServer = BasicHttpServer<httplib::Server>;
using TlsHttpServer = BasicHttpServer<httplib::SSLServer>;

// A listening TCP socket on 127.0.0.1, port chosen by the kernel; throws when it cannot.
inline int listen_loopback(int& port, int backlog = 1024) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(fd, backlog) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("test server: cannot listen on 127.0.0.1");
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

// A loopback port where nothing listens: bound once, then closed.
inline int refused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace scraperd::test
