// demo-site DIR [PORT]: serves the static files of DIR on 127.0.0.1:PORT (default 8089), plus
// /slow (answers after 2 s) so the example jobs show timings. Stops on SIGINT/SIGTERM.
#include <httplib.h>

#include <csignal>
#include <cstdlib>
#include <iostream>
#include <thread>

namespace {
httplib::Server* server = nullptr;
void on_signal(int) {
  if (server) server->stop();
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: demo-site DIR [PORT]\n";
    return 2;
  }
  int port = argc > 2 ? std::atoi(argv[2]) : 8089;
  httplib::Server srv;
  if (!srv.set_mount_point("/", argv[1])) {
    std::cerr << "demo-site: no directory " << argv[1] << '\n';
    return 1;
  }
  srv.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    res.set_content("<html><body><h1>Slow page</h1></body></html>", "text/html");
  });
  server = &srv;
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  // Not cpp-httplib's default SO_REUSEPORT: a second demo site on the same port must fail
  // (scripts/demo then says the port is taken) instead of sharing it.
  srv.set_socket_options([](socket_t sock) {
    int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  if (!srv.bind_to_port("127.0.0.1", port)) {
    std::cerr << "demo-site: cannot listen on 127.0.0.1:" << port << '\n';
    return 1;
  }
  std::cerr << "demo-site: serving " << argv[1] << " on http://127.0.0.1:" << port << "/\n";
  srv.listen_after_bind();
  return 0;
}
