// Test support: a TCP server on 127.0.0.1 that misbehaves on purpose, one behaviour per
// request path (see behave()). Raw sockets, so it can do what no HTTP library would: lie
// about lengths, drip, reset, never answer, send garbage.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <list>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include "tests/support/http_server.h"

namespace scraperd::test {

// `data` gzipped (RFC 1952), as servers send a Content-Encoding: gzip body.
inline std::string gzip(const std::string& data) {
  z_stream z{};
  deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&z, data.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

class HostileServer {
 public:
  HostileServer() {
    listen_ = listen_loopback(port_);
    gzip_bomb();  // made now, not while a test measures the client's memory
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~HostileServer() {
    stopping_ = true;
    ::shutdown(listen_, SHUT_RDWR);
    ::close(listen_);
    acceptor_.join();
    std::lock_guard lock(mu_);
    for (auto& t : connections_) t.join();
  }

  int port() const { return port_; }
  int requests() const { return requests_; }  // request heads read so far
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  // 64 MB of zeros, about 64 KB on the wire; made once per process.
  static const std::string& gzip_bomb() {
    static const std::string bomb = gzip(std::string(64 * 1024 * 1024, '\0'));
    return bomb;
  }

  void accept_loop() {
    for (;;) {
      int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopping_) return;
        continue;
      }
      std::lock_guard lock(mu_);
      connections_.emplace_back([this, fd] {
        serve(fd);
        ::close(fd);
      });
    }
  }

  // Sends all of `data`; false when the peer is gone or the server stops.
  bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
      if (stopping_) return false;
      ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Waits up to `d` or until the server stops; false when stopping.
  bool pause(std::chrono::milliseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
      if (stopping_) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  // Reads one request head; empty when the client went away first.
  std::string read_request(int fd) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) == 0) {
        if (stopping_) return {};
        continue;
      }
      ssize_t n = ::recv(fd, buf, sizeof buf, 0);
      if (n <= 0) return {};
      request.append(buf, static_cast<std::size_t>(n));
    }
    ++requests_;
    return request;
  }

  void serve(int fd) {
    std::string request = read_request(fd);
    auto start = request.find(' ');
    auto end = request.find(' ', start + 1);
    if (start == std::string::npos || end == std::string::npos) return;
    behave(fd, request.substr(start + 1, end - start - 1));
  }

  void behave(int fd, const std::string& path) {
    const std::string ok = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n";
    if (path == "/drip") {  // a byte every 100 ms, forever
      if (!send_all(fd, ok + "Content-Length: 100000\r\n\r\n")) return;
      while (send_all(fd, "x") && pause(std::chrono::milliseconds(100))) {
      }
    } else if (path == "/keep-then-drop") {  // keep-alive, then close on the next request
      if (send_all(fd, ok + "Content-Length: 5\r\n\r\nfirst")) read_request(fd);
    } else if (path.rfind("/slow-ok/", 0) == 0) {  // a well-formed answer after 6 s
      if (pause(std::chrono::milliseconds(6000))) send_all(fd, ok + "Content-Length: 2\r\n\r\nok");
    } else if (path == "/drip-headers") {  // the status line, then a header byte a second
      if (!send_all(fd, "HTTP/1.1 200 OK\r\n")) return;
      while (send_all(fd, "X") && pause(std::chrono::milliseconds(1000))) {
      }
    } else if (path == "/endless") {  // chunked, never ends
      if (!send_all(fd, ok + "Transfer-Encoding: chunked\r\n\r\n")) return;
      std::string chunk = "10000\r\n" + std::string(0x10000, 'e') + "\r\n";
      while (send_all(fd, chunk)) {
      }
    } else if (path == "/huge-length") {  // says 10 GB and sends as fast as it can
      if (!send_all(fd, ok + "Content-Length: 10000000000\r\n\r\n")) return;
      std::string block(0x10000, 'h');
      while (send_all(fd, block)) {
      }
    } else if (path == "/short-body") {  // promises 1000 bytes, sends 10, closes
      send_all(fd, ok + "Content-Length: 1000\r\n\r\n0123456789");
    } else if (path == "/long-body") {  // promises 10 bytes, sends 1000
      send_all(fd, ok + "Content-Length: 10\r\n\r\n" + std::string(1000, 'l'));
    } else if (path == "/gzip-bomb") {
      const std::string& bomb = gzip_bomb();
      send_all(fd, ok + "Content-Encoding: gzip\r\nContent-Length: " + std::to_string(bomb.size()) +
                       "\r\n\r\n" + bomb);
    } else if (path == "/bad-status") {
      send_all(fd, "HTTP/1.1 OK maybe\r\nContent-Length: 2\r\n\r\nhi");
    } else if (path == "/not-http") {
      send_all(fd, "SSH-2.0-OpenSSH_9.2\r\n\r\n");
    } else if (path == "/long-header") {  // one header of 1 MB
      send_all(fd, ok + "X-Big: " + std::string(1 << 20, 'b') + "\r\nContent-Length: 2\r\n\r\nhi");
    } else if (path == "/endless-headers") {  // header lines until the client goes away
      if (!send_all(fd, ok)) return;
      std::string lines;
      for (int i = 0; i < 1000; ++i) lines += "X-" + std::to_string(i) + ": endless\r\n";
      while (send_all(fd, lines)) {
      }
    } else if (path == "/big-headers") {  // 200 KB of headers in 1 KB lines: allowed
      std::string head = ok;
      for (int i = 0; i < 200; ++i)
        head += "X-" + std::to_string(i) + ": " + std::string(1000, 'v') + "\r\n";
      send_all(fd, head + "Content-Length: 2\r\n\r\nhi");
    } else if (path == "/bad-chunk") {
      send_all(fd, ok + "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n");
    } else if (path == "/reset") {  // headers and some body, then RST
      send_all(fd, ok + "Content-Length: 100000\r\n\r\n" + std::string(1000, 'r'));
      linger l{1, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    } else if (path == "/close") {   // closes before any header
    } else if (path == "/silent") {  // reads the request, never answers
      while (pause(std::chrono::milliseconds(100))) {
      }
    } else if (path == "/redirect-loop") {
      send_all(fd, "HTTP/1.1 302 Found\r\nLocation: /redirect-loop-2\r\nContent-Length: 0\r\n\r\n");
    } else if (path == "/redirect-loop-2") {
      send_all(fd, "HTTP/1.1 302 Found\r\nLocation: /redirect-loop\r\nContent-Length: 0\r\n\r\n");
    } else if (path == "/redirect-ftp") {
      send_all(fd,
               "HTTP/1.1 301 Moved\r\nLocation: ftp://127.0.0.1/x\r\nContent-Length: 0\r\n\r\n");
    } else if (path == "/empty") {
      send_all(fd, ok + "Content-Length: 0\r\n\r\n");
    } else if (path == "/binary") {
      std::string bytes;
      for (int i = 0; i < 65536; ++i) bytes += static_cast<char>((i * 7919) & 0xFF);
      send_all(fd, ok + "Content-Length: 65536\r\n\r\n" + bytes);
    } else if (path == "/latin1") {  // windows-1252 bytes, no charset anywhere
      std::string page =
          "<h1>Caf\xe9 cr\xe8me br\xfbl\xe9"
          "e</h1>";
      send_all(fd, ok + "Content-Length: " + std::to_string(page.size()) + "\r\n\r\n" + page);
    } else if (path == "/status-999") {
      send_all(fd, "HTTP/1.1 999 Whatever\r\nContent-Length: 2\r\n\r\nhi");
    } else if (path == "/no-length-close") {  // HTTP/1.0 style: body until close
      send_all(fd, "HTTP/1.0 200 OK\r\n\r\n" + std::string(5000, 'c'));
    } else {
      send_all(fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    }
  }

  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::list<std::thread> connections_;
};

}  // namespace scraperd::test
