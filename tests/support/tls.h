// Test support for TLS: certificates made with the openssl CLI, an HTTPS server that resets
// the connection after reading the request (raw OpenSSL), a cpp-httplib HTTPS server, and
// nghttpd (HTTP/2 over TLS with ALPN) as a child process. Everything on 127.0.0.1, port chosen
// by the kernel where the server allows it; stopped, joined or killed and reaped when it goes
// out of scope.
#pragma once

#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http_server.h"
#include "tests/support/process.h"
#include "tests/support/temp_dir.h"

namespace scraperd::test {

// A SIGPIPE raised by a write on this thread stays pending instead of killing the process: the
// servers here write to clients that may have gone, and OpenSSL writes with write(), not
// send(MSG_NOSIGNAL). Call it first thing in a server's own thread.
inline void block_sigpipe_on_this_thread() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

// Certificates made with the openssl CLI (EC P-256: fast to make) in a directory of their own:
//   a test CA; a server certificate signed by it for IP:127.0.0.1, IP:::1 and DNS:localhost;
//   a self-signed certificate whose name matches nothing (CN=scraperd-self-signed, no SAN).
// Valid from now for two days. Throws when openssl fails (its stderr in the message).
class TestCerts {
 public:
  TestCerts() {
    ca_cert = dir_.file("ca.pem");
    ca_key = dir_.file("ca.key");
    server_cert = dir_.file("server.pem");
    server_key = dir_.file("server.key");
    self_cert = dir_.file("self.pem");
    self_key = dir_.file("self.key");
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
    auto ext = dir_.write("server.ext",
                          "subjectAltName=IP:127.0.0.1,IP:::1,DNS:localhost\n"
                          "basicConstraints=CA:FALSE\n"
                          "keyUsage=critical,digitalSignature,keyEncipherment\n"
                          "extendedKeyUsage=serverAuth\n");
    openssl("req -x509" + ec + "-days 2 -subj /CN=scraperd-test-ca -keyout " + ca_key + " -out " +
            ca_cert +
            " -addext basicConstraints=critical,CA:TRUE"
            " -addext keyUsage=critical,keyCertSign,cRLSign");
    openssl("req -new" + ec + "-subj /CN=localhost -keyout " + server_key + " -out " +
            dir_.file("server.csr"));
    openssl("x509 -req -in " + dir_.file("server.csr") + " -CA " + ca_cert + " -CAkey " + ca_key +
            " -set_serial 2 -days 2 -extfile " + ext + " -out " + server_cert);
    openssl("req -x509" + ec + "-days 2 -subj /CN=scraperd-self-signed -keyout " + self_key +
            " -out " + self_cert);
  }
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  std::string ca_cert, ca_key;          // the CA (PEM): give ca_cert as FetchRequest::ca_file
  std::string server_cert, server_key;  // signed by the CA
  std::string self_cert, self_key;      // self-signed, for no name in particular

 private:
  void openssl(const std::string& args) {
    std::string err = dir_.file("openssl.err");
    std::string command = "openssl " + args + " >/dev/null 2>" + err;
    if (std::system(command.c_str()) != 0)
      throw std::runtime_error("test certificates: '" + command + "' failed: " + slurp(err));
  }

  TempDir dir_;  // holds every file above; removed with them
};

// An HTTPS server (raw OpenSSL, HTTP/1.1 only: no ALPN) that completes the handshake, reads
// the request head, then resets the TCP connection (SO_LINGER {1, 0} and close) without a
// byte of answer. One connection at a time on its own thread; every socket operation is
// bounded (2 s), so the destructor's join is too.
class TlsResetServer {
 public:
  TlsResetServer(const std::string& cert, const std::string& key) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (!ctx_ || SSL_CTX_use_certificate_chain_file(ctx_, cert.c_str()) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx_, key.c_str(), SSL_FILETYPE_PEM) != 1) {
      SSL_CTX_free(ctx_);
      throw std::runtime_error("TLS reset server: cannot load " + cert + " / " + key);
    }
    listen_ = listen_loopback(port_);
    thread_ = std::thread([this] { accept_loop(); });
  }

  ~TlsResetServer() {
    stopping_ = true;
    thread_.join();
    ::close(listen_);
    SSL_CTX_free(ctx_);
  }

  TlsResetServer(const TlsResetServer&) = delete;
  TlsResetServer& operator=(const TlsResetServer&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }
  int handshakes() const { return handshakes_; }  // completed TLS handshakes
  int requests() const { return requests_; }      // request heads read (each answered by a reset)

 private:
  void accept_loop() {
    block_sigpipe_on_this_thread();
    while (!stopping_) {
      pollfd p{listen_, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) serve(fd);
    }
  }

  void serve(int fd) {
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    SSL* ssl = SSL_new(ctx_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      ++handshakes_;
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos && head.size() < 65536 && !stopping_) {
        int n = SSL_read(ssl, buf, sizeof buf);
        if (n <= 0) break;
        head.append(buf, static_cast<std::size_t>(n));
      }
      if (head.find("\r\n\r\n") != std::string::npos) ++requests_;
    }
    ERR_clear_error();
    linger l{1, 0};  // close() sends RST, not FIN; no close_notify either
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    SSL_free(ssl);
    ::close(fd);
  }

  SSL_CTX* ctx_ = nullptr;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> handshakes_{0};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// nghttpd (Debian's nghttp2-server): HTTP/2 over TLS, h2 chosen by ALPN; it speaks nothing
// else (an HTTP/1.1 request gets an empty reply). Serves `files` (name → content) from a
// directory of its own on 127.0.0.1. nghttpd takes a port number, not 0: a free one is picked
// (bound and closed), and another when nghttpd could not bind it, up to five times. Waits
// until it accepts; killed (SIGKILL) and reaped when it goes out of scope.
class Nghttpd {
 public:
  Nghttpd(const std::string& cert, const std::string& key,
          const std::map<std::string, std::string>& files) {
    std::string bin;
    for (const char* candidate : {"/usr/bin/nghttpd", "/usr/sbin/nghttpd"})
      if (::access(candidate, X_OK) == 0) bin = candidate;
    if (bin.empty()) throw std::runtime_error("nghttpd not found: install Debian's nghttp2-server");
    std::string htdocs = dir_.file("htdocs");
    ::mkdir(htdocs.c_str(), 0755);
    for (const auto& [name, content] : files) dir_.write("htdocs/" + name, content);
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = refused_port();
      pid_ =
          start(bin, {"--htdocs=" + htdocs, "-a", "127.0.0.1", std::to_string(port_), key, cert});
      if (accepting()) return;
      stop();
    }
    throw std::runtime_error("nghttpd did not start: " + slurp(dir_.file("nghttpd.log")));
  }

  ~Nghttpd() { stop(); }
  Nghttpd(const Nghttpd&) = delete;
  Nghttpd& operator=(const Nghttpd&) = delete;

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return "https://127.0.0.1:" + std::to_string(port_) + path;
  }

 private:
  pid_t start(const std::string& bin, std::vector<std::string> args) {
    std::string log = dir_.file("nghttpd.log");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);  // none of the test's sockets
    std::vector<char*> argv;
    std::string name = bin;
    argv.push_back(name.data());
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) throw std::runtime_error("cannot start " + bin);
    return pid;
  }

  // True once nghttpd accepts a connection on port_ and is still alive just after (a port
  // taken by someone else in between would accept too, but nghttpd would have exited).
  bool accepting() {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < until) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = htons(static_cast<std::uint16_t>(port_));
      bool connected = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
      ::close(fd);
      if (connected) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
          pid_ = -1;
          return false;
        }
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  TempDir dir_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace scraperd::test
