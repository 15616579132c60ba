// demo-site DIR [PORT]: serves the static files of DIR on 127.0.0.1:PORT (default 8089), plus
// /slow (answers after 2 s) so the example jobs show timings, and /app/ (a page its script builds
// from /api/deals.json: only `render: chromium` jobs see its content). Stops on SIGINT/SIGTERM.
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
  // A page built in the browser: the HTML is an empty shell; the script fetches the deals
  // and writes them (an HTTP fetch sees no .deal at all).
  srv.Get("/app/", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"(<!doctype html>
<html><head><title>Deals</title></head>
<body><h1>Today's deals</h1><ul id="deals"></ul><p id="status">loading...</p>
<script>
fetch('/api/deals.json').then(r => r.json()).then(deals => {
  const list = document.getElementById('deals');
  for (const d of deals) {
    const li = document.createElement('li');
    li.className = 'deal';
    li.innerHTML = '<span class="name"></span> <span class="price"></span>';
    li.querySelector('.name').textContent = d.name;
    li.querySelector('.price').textContent = d.price.toFixed(2);
    list.appendChild(li);
  }
  document.getElementById('status').textContent = deals.length + ' deals';
});
</script></body></html>
)",
                    "text/html");
  });
  srv.Get("/api/deals.json", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(R"([{"name": "Kettle", "price": 24.5}, {"name": "Toaster", "price": 31},
 {"name": "Teapot", "price": 12.75}])",
                    "application/json");
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
