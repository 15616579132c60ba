// W2's reference clients: how fast and how small fetching the same URLs can be on this
// machine with nothing around the transfers (no config, no engine, no parsing, no storage), so
// that scraperd's figures can be read as a distance from a floor measured in the same run.
//
//   floor_client asio URLS CONC   at most CONC GETs in flight on one Asio loop: a connection
//                                 per worker, kept alive, the response read up to its
//                                 Content-Length; the least any HTTP/1.1 client on one loop does
//   floor_client curl URLS CONC   the same through libcurl's multi_socket interface on a bare
//                                 epoll loop, CONC easy handles reused, bodies dropped: what
//                                 libcurl itself costs per request in flight
//
// URLS is a file of http://127.0.0.1:PORT/PATH lines. Prints "ok N of M, peak RSS K kB" and
// exits 0 when every URL answered 200. The peak is read from /proc/self/status (VmHWM): the one
// wait4 reports for a child of a Python process starts at that process's own RSS.
#include <curl/curl.h>
#include <sys/epoll.h>

#include <asio.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::vector<std::string> read_urls(const char* path) {
  std::vector<std::string> urls;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) urls.push_back(line);
  return urls;
}

// --- asio: the floor of any client ------------------------------------------------------

using asio::ip::tcp;

struct Target {
  std::string host;
  std::string port;
  std::string path;
};

Target split(const std::string& url) {  // http://HOST:PORT/PATH
  std::string_view rest(url);
  rest.remove_prefix(std::string_view("http://").size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  auto colon = authority.rfind(':');
  return {std::string(authority.substr(0, colon)), std::string(authority.substr(colon + 1)),
          std::string(rest.substr(slash))};
}

struct Work {
  const std::vector<std::string>& urls;
  std::size_t next = 0;
  std::size_t ok = 0;
};

asio::awaitable<void> worker(Work& work) {
  auto executor = co_await asio::this_coro::executor;
  tcp::socket socket(executor);
  std::string buffer;
  while (work.next < work.urls.size()) {
    const Target target = split(work.urls[work.next++]);
    try {
      if (!socket.is_open()) {
        tcp::endpoint at(asio::ip::make_address(target.host),
                         static_cast<unsigned short>(std::stoi(target.port)));
        co_await socket.async_connect(at, asio::use_awaitable);
      }
      const std::string request = "GET " + target.path + " HTTP/1.1\r\nHost: " + target.host + ":" +
                                  target.port + "\r\nAccept: */*\r\n\r\n";
      co_await asio::async_write(socket, asio::buffer(request), asio::use_awaitable);
      std::size_t head = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer),
                                                         "\r\n\r\n", asio::use_awaitable);
      std::string_view h(buffer.data(), head);
      std::size_t length = 0;
      if (auto at = h.find("Content-Length: "); at != std::string_view::npos) {
        auto digits = h.substr(at + 16);
        std::from_chars(digits.data(), digits.data() + digits.size(), length);
      }
      if (buffer.size() < head + length)
        co_await asio::async_read(socket, asio::dynamic_buffer(buffer),
                                  asio::transfer_exactly(head + length - buffer.size()),
                                  asio::use_awaitable);
      if (h.substr(0, 12) == "HTTP/1.1 200") ++work.ok;
      buffer.erase(0, head + length);
    } catch (const std::exception&) {
      socket.close();
      buffer.clear();
    }
  }
}

std::size_t run_asio(const std::vector<std::string>& urls, std::size_t conc) {
  asio::io_context io(1);
  Work work{urls};
  for (std::size_t i = 0; i < std::min(conc, urls.size()); ++i)
    asio::co_spawn(io, worker(work), asio::detached);
  io.run();
  return work.ok;
}

// --- curl: libcurl's own cost ------------------------------------------------------------

struct Curl {
  CURLM* multi = curl_multi_init();
  int epoll = epoll_create1(EPOLL_CLOEXEC);
  long timeout_ms = -1;
  const std::vector<std::string>* urls = nullptr;
  std::size_t next = 0;
  std::size_t ok = 0;
  int running = 0;
};

int on_socket(CURL*, curl_socket_t s, int what, void* self, void* known) {
  auto& c = *static_cast<Curl*>(self);
  if (what == CURL_POLL_REMOVE) {
    epoll_ctl(c.epoll, EPOLL_CTL_DEL, s, nullptr);
    curl_multi_assign(c.multi, s, nullptr);
    return 0;
  }
  epoll_event ev{};
  ev.events = (what & CURL_POLL_IN ? unsigned{EPOLLIN} : 0u) |
              (what & CURL_POLL_OUT ? unsigned{EPOLLOUT} : 0u);
  ev.data.fd = s;
  epoll_ctl(c.epoll, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev);
  if (!known) curl_multi_assign(c.multi, s, &c);
  return 0;
}

int on_timer(CURLM*, long ms, void* self) {
  static_cast<Curl*>(self)->timeout_ms = ms;
  return 0;
}

size_t drop(char*, size_t size, size_t n, void*) {
  return size * n;
}

void start(Curl& c, CURL* easy) {
  curl_easy_setopt(easy, CURLOPT_URL, (*c.urls)[c.next++].c_str());
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &drop);
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_multi_add_handle(c.multi, easy);
}

void finished(Curl& c) {
  int left = 0;
  while (CURLMsg* m = curl_multi_info_read(c.multi, &left)) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL* easy = m->easy_handle;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (m->data.result == CURLE_OK && status == 200) ++c.ok;
    curl_multi_remove_handle(c.multi, easy);
    if (c.next < c.urls->size())
      start(c, easy);
    else
      curl_easy_cleanup(easy);
  }
}

std::size_t run_curl(const std::vector<std::string>& urls, std::size_t conc) {
  curl_global_init(CURL_GLOBAL_ALL);
  Curl c;
  c.urls = &urls;
  curl_multi_setopt(c.multi, CURLMOPT_SOCKETFUNCTION, &on_socket);
  curl_multi_setopt(c.multi, CURLMOPT_SOCKETDATA, &c);
  curl_multi_setopt(c.multi, CURLMOPT_TIMERFUNCTION, &on_timer);
  curl_multi_setopt(c.multi, CURLMOPT_TIMERDATA, &c);
  curl_multi_setopt(c.multi, CURLMOPT_MAXCONNECTS, static_cast<long>(conc));
  for (std::size_t i = 0; i < std::min(conc, urls.size()); ++i) start(c, curl_easy_init());
  std::vector<epoll_event> events(1024);
  c.running = 1;
  while (c.running > 0 || c.next < urls.size()) {
    int n = epoll_wait(c.epoll, events.data(), static_cast<int>(events.size()),
                       static_cast<int>(c.timeout_ms < 0 ? 1000 : c.timeout_ms));
    if (n <= 0) {
      curl_multi_socket_action(c.multi, CURL_SOCKET_TIMEOUT, 0, &c.running);
    } else {
      for (int i = 0; i < n; ++i) {
        int what = (events[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
                   (events[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                   (events[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);
        curl_multi_socket_action(c.multi, events[i].data.fd, what, &c.running);
      }
      if (c.timeout_ms == 0) curl_multi_socket_action(c.multi, CURL_SOCKET_TIMEOUT, 0, &c.running);
    }
    finished(c);
  }
  curl_multi_cleanup(c.multi);
  return c.ok;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || (std::strcmp(argv[1], "asio") != 0 && std::strcmp(argv[1], "curl") != 0)) {
    std::fprintf(stderr, "usage: floor_client asio|curl URLS-FILE CONCURRENCY\n");
    return 2;
  }
  const auto urls = read_urls(argv[2]);
  const auto conc = static_cast<std::size_t>(std::stoul(argv[3]));
  const std::size_t ok =
      std::strcmp(argv[1], "asio") == 0 ? run_asio(urls, conc) : run_curl(urls, conc);
  long peak_kb = 0;
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) peak_kb = std::stol(line.substr(6));
  std::printf("ok %zu of %zu, peak RSS %ld kB\n", ok, urls.size(), peak_kb);
  return ok == urls.size() ? 0 : 1;
}
