// Test support: a minimal forward proxy on 127.0.0.1 (port chosen by the kernel), raw sockets,
// a thread per connection, every thread joined when it goes out of scope. It records what it
// was asked for, so a test can tell which requests went through it.
//
//   kHttp:   an HTTP proxy. `GET http://host:port/path HTTP/1.1` (absolute form) is sent to the
//            origin as `GET /path HTTP/1.1` with `Connection: close` (Proxy-* headers dropped)
//            and the answer relayed back until either side closes: one request per connection.
//            `CONNECT host:port HTTP/1.1` is answered 200 and bytes are tunnelled both ways.
//            With a certificate and key, clients talk to it over TLS (an https:// proxy).
//   kSocks5: SOCKS5 without authentication, CONNECT to an IPv4, IPv6 or domain-name address
//            (a domain name is resolved here: socks5h://), then a tunnel.
//
// requests() holds, in order: the request line as received for kHttp ("GET http://127.0.0.1:
// 8080/x HTTP/1.1", "CONNECT 127.0.0.1:8443 HTTP/1.1"); "CONNECT host:port" for kSocks5, host
// as the client sent it (an IPv4 literal, [IPv6], or the name).
#pragma once

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstring>
#include <list>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

#include <vector>

#include "tests/support/http_server.h"

namespace scraperd::test {

class ProxyServer {
 public:
  enum class Mode { kHttp, kSocks5 };

  // An empty `cert` means plain TCP between client and proxy.
  explicit ProxyServer(Mode mode = Mode::kHttp, const std::string& cert = {},
                       const std::string& key = {})
      : mode_(mode) {
    if (!cert.empty()) {
      ctx_ = SSL_CTX_new(TLS_server_method());
      if (!ctx_ || SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()) != 1 ||
          SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) != 1) {
        SSL_CTX_free(ctx_);
        throw std::runtime_error("proxy: cannot load " + cert + " / " + key);
      }
    }
    try {
      listen_ = listen_loopback(port_);
    } catch (...) {
      SSL_CTX_free(ctx_);
      throw;
    }
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~ProxyServer() {
    stopping_ = true;
    acceptor_.join();
    ::close(listen_);
    {
      std::lock_guard lock(mu_);
      for (auto& t : connections_) t.join();
    }
    SSL_CTX_free(ctx_);
  }

  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // The proxy URL for FetchRequest::proxy or a job's `proxy:`: http://, https:// (with a
  // certificate) or socks5://; socks5h:// is "socks5h://" + address().
  std::string url() const {
    if (mode_ == Mode::kSocks5) return "socks5://" + address();
    return (ctx_ ? "https://" : "http://") + address();
  }

  std::vector<std::string> requests() const {
    std::lock_guard lock(seen_mu_);
    return seen_;
  }
  // How many recorded requests contain `text`.
  int seen(const std::string& text) const {
    std::lock_guard lock(seen_mu_);
    return static_cast<int>(std::count_if(seen_.begin(), seen_.end(), [&](const std::string& s) {
      return s.find(text) != std::string::npos;
    }));
  }

 private:
  // The client's side of a connection: a socket, with TLS over it when the proxy has a
  // certificate.
  struct Client {
    int fd = -1;
    SSL* ssl = nullptr;

    // > 0 bytes, 0 at the end or on an error.
    int read(char* buf, int n) {
      if (ssl) return std::max(SSL_read(ssl, buf, n), 0);
      return static_cast<int>(
          std::max<ssize_t>(::recv(fd, buf, static_cast<std::size_t>(n), 0), 0));
    }
    bool write(std::string_view data) {
      while (!data.empty()) {
        int n = ssl ? SSL_write(ssl, data.data(), static_cast<int>(data.size()))
                    : static_cast<int>(::send(fd, data.data(), data.size(), MSG_NOSIGNAL));
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
      }
      return true;
    }
    bool buffered() const { return ssl && SSL_pending(ssl) > 0; }
  };

  void accept_loop() {
    block_sigpipe();
    while (!stopping_) {
      pollfd p{listen_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      std::lock_guard lock(mu_);
      connections_.emplace_back([this, fd] {
        block_sigpipe();
        serve(fd);
      });
    }
  }

  static void block_sigpipe() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
  }

  void record(std::string what) {
    std::lock_guard lock(seen_mu_);
    seen_.push_back(std::move(what));
  }

  void serve(int fd) {
    // Bounds every blocking call (a TLS handshake, a record read half-way), so threads end.
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    Client client{fd, nullptr};
    if (ctx_) {
      client.ssl = SSL_new(ctx_);
      SSL_set_fd(client.ssl, fd);
      if (SSL_accept(client.ssl) != 1) {
        SSL_free(client.ssl);
        client.ssl = nullptr;
        ::close(fd);
        ERR_clear_error();
        return;
      }
    }
    int origin = mode_ == Mode::kHttp ? http(client) : socks5(client);
    if (origin >= 0) {
      relay(client, origin);
      ::close(origin);
    }
    if (client.ssl) {
      SSL_shutdown(client.ssl);
      SSL_free(client.ssl);
    }
    ERR_clear_error();
    ::close(fd);
  }

  // Waits (bounded, and not past stopping_) until `client` has bytes to read.
  bool readable(Client& client, std::chrono::seconds limit = std::chrono::seconds(10)) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!stopping_ && std::chrono::steady_clock::now() < until) {
      if (client.buffered()) return true;
      pollfd p{client.fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) return true;
    }
    return false;
  }

  // Reads exactly n bytes (SOCKS messages); false when the client goes or stalls.
  bool read_exactly(Client& client, char* out, int n) {
    while (n > 0) {
      if (!readable(client)) return false;
      int got = client.read(out, n);
      if (got <= 0) return false;
      out += got;
      n -= got;
    }
    return true;
  }

  static int connect_to(const std::string& host, const std::string& port) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) return -1;
    int fd = -1;
    for (addrinfo* a = found; a && fd < 0; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
        ::close(fd);
        fd = -1;
      }
    }
    ::freeaddrinfo(found);
    return fd;
  }

  // "host:port", "[v6]:port" → host (without brackets) and port; false when malformed.
  static bool split_authority(const std::string& authority, std::string& host, std::string& port) {
    auto colon = authority.rfind(':');
    if (colon == std::string::npos || colon + 1 == authority.size()) return false;
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    return !host.empty();
  }

  static bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  }

  // Reads a request head; returns the origin's socket, connected and with the request sent
  // (or the tunnel acknowledged), or -1 when the exchange ends here.
  int http(Client& client) {
    std::string data;
    char buf[4096];
    while (data.find("\r\n\r\n") == std::string::npos) {
      if (data.size() > 65536 || !readable(client)) return -1;
      int n = client.read(buf, sizeof buf);
      if (n <= 0) return -1;
      data.append(buf, static_cast<std::size_t>(n));
    }
    auto head_end = data.find("\r\n\r\n");
    std::string rest = data.substr(head_end + 4);
    std::istringstream head(data.substr(0, head_end));
    std::string line;
    std::getline(head, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    record(line);
    std::istringstream words(line);
    std::string method, target, version;
    words >> method >> target >> version;
    const std::string bad =
        "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    const std::string gateway =
        "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    std::string host, port;
    if (method == "CONNECT") {
      if (!split_authority(target, host, port)) return client.write(bad), -1;
      int origin = connect_to(host, port);
      if (origin < 0) return client.write(gateway), -1;
      if (!client.write("HTTP/1.1 200 Connection established\r\n\r\n") ||
          (!rest.empty() && !send_all(origin, rest))) {
        ::close(origin);
        return -1;
      }
      return origin;
    }
    if (target.size() < 8 || !iequals(target.substr(0, 7), "http://")) return client.write(bad), -1;
    auto slash = target.find('/', 7);
    std::string authority =
        target.substr(7, slash == std::string::npos ? std::string::npos : slash - 7);
    std::string path = slash == std::string::npos ? "/" : target.substr(slash);
    if (authority.find(':') == std::string::npos || authority.back() == ']') authority += ":80";
    if (!split_authority(authority, host, port)) return client.write(bad), -1;
    std::string forward = method + " " + path + " " + version + "\r\n";
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      std::string name = line.substr(0, line.find(':'));
      if (iequals(name, "Proxy-Connection") || iequals(name, "Proxy-Authorization") ||
          iequals(name, "Connection") || iequals(name, "Keep-Alive"))
        continue;
      forward += line + "\r\n";
    }
    forward += "Connection: close\r\n\r\n" + rest;
    int origin = connect_to(host, port);
    if (origin < 0) return client.write(gateway), -1;
    if (!send_all(origin, forward)) {
      ::close(origin);
      return -1;
    }
    return origin;
  }

  // The SOCKS5 handshake (RFC 1928, no authentication, CONNECT only); returns the origin's
  // socket, connected and acknowledged, or -1.
  int socks5(Client& client) {
    unsigned char hello[2];
    if (!read_exactly(client, reinterpret_cast<char*>(hello), 2) || hello[0] != 5) return -1;
    std::string methods(hello[1], '\0');
    if (!read_exactly(client, methods.data(), hello[1])) return -1;
    if (methods.find('\0') == std::string::npos) {
      client.write(std::string("\x05\xff", 2));  // no acceptable method
      return -1;
    }
    if (!client.write(std::string("\x05\x00", 2))) return -1;
    unsigned char request[4];  // VER CMD RSV ATYP
    if (!read_exactly(client, reinterpret_cast<char*>(request), 4) || request[0] != 5) return -1;
    std::string host;
    if (request[3] == 1 || request[3] == 4) {
      bool v4 = request[3] == 1;
      char raw[16];
      char text[INET6_ADDRSTRLEN] = {};
      if (!read_exactly(client, raw, v4 ? 4 : 16)) return -1;
      ::inet_ntop(v4 ? AF_INET : AF_INET6, raw, text, sizeof text);
      host = v4 ? std::string(text) : "[" + std::string(text) + "]";
    } else if (request[3] == 3) {
      unsigned char n = 0;
      if (!read_exactly(client, reinterpret_cast<char*>(&n), 1)) return -1;
      host.assign(n, '\0');
      if (!read_exactly(client, host.data(), n)) return -1;
    } else {
      return -1;
    }
    unsigned char port_bytes[2];
    if (!read_exactly(client, reinterpret_cast<char*>(port_bytes), 2)) return -1;
    std::string port = std::to_string(port_bytes[0] * 256 + port_bytes[1]);
    record("CONNECT " + host + ":" + port);
    // Reply: VER REP RSV ATYP(IPv4) BND.ADDR 0.0.0.0 BND.PORT 0.
    std::string reply("\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
    if (request[1] != 1) {
      reply[1] = 7;  // command not supported
      client.write(reply);
      return -1;
    }
    std::string bare =
        host.size() >= 2 && host.front() == '[' ? host.substr(1, host.size() - 2) : host;
    int origin = connect_to(bare, port);
    if (origin < 0) {
      reply[1] = 5;  // connection refused
      client.write(reply);
      return -1;
    }
    if (!client.write(reply)) {
      ::close(origin);
      return -1;
    }
    return origin;
  }

  static bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Copies bytes both ways until either side closes (or fails), or the proxy stops.
  void relay(Client& client, int origin) {
    char buf[16384];
    while (!stopping_) {
      bool from_client = client.buffered(), from_origin = false;
      if (!from_client) {
        pollfd p[2] = {{client.fd, POLLIN, 0}, {origin, POLLIN, 0}};
        if (::poll(p, 2, 50) <= 0) continue;
        from_client = p[0].revents != 0;
        from_origin = p[1].revents != 0;
      }
      if (from_client) {
        int n = client.read(buf, sizeof buf);
        if (n <= 0 || !send_all(origin, std::string_view(buf, static_cast<std::size_t>(n)))) return;
      }
      if (from_origin) {
        ssize_t n = ::recv(origin, buf, sizeof buf, 0);
        if (n <= 0 || !client.write(std::string_view(buf, static_cast<std::size_t>(n)))) return;
      }
    }
  }

  Mode mode_;
  SSL_CTX* ctx_ = nullptr;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::list<std::thread> connections_;
  mutable std::mutex seen_mu_;
  std::vector<std::string> seen_;
};

}  // namespace scraperd::test
