#include "daemon/render/browser.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace scraperd::daemon::render {

namespace fs = std::filesystem;

std::vector<std::string> Browser::flags() {
  std::vector<std::string> f = {
      "--headless",
      "--remote-debugging-pipe",
      "--disable-gpu",
      "--disable-dev-shm-usage",
      "--no-first-run",
      "--no-default-browser-check",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--mute-audio",
      "--hide-scrollbars",
      "--disable-extensions",
      "--metrics-recording-only",
      "--disable-breakpad",
      // Not needed headless, and each a process or a page of its own: the omnibox's two
      // WebUI popups are preloaded into a renderer (~150 MB RSS) and a spare renderer is kept
      // warm for the next new site (~75 MB); tabs here are reused instead (render.cpp).
      "--disable-features=Translate,MediaRouter,OptimizationHints,WebUIOmniboxPopup,"
      "WebUIOmniboxAimPopup,SpareRendererForSitePerProcess",
      // GPU work is software (SwiftShader) anyway: in the browser process, not one more
      // process (~55 MB RSS less in R, no slower).
      "--in-process-gpu",
      // No first tab (about:blank in a renderer of its own, ~110 MB RSS, never used): the
      // pages' tabs are made over CDP.
      "--no-startup-window",
      "--password-store=basic",
      "--use-mock-keychain",
  };
  // Chromium refuses to start its sandbox as root; the service runs as its own user.
  if (::geteuid() == 0) f.push_back("--no-sandbox");
  return f;
}

std::unique_ptr<Browser> Browser::start(asio::io_context& io, const std::string& executable,
                                        std::string* error) {
  std::signal(SIGPIPE, SIG_IGN);  // a write to a dead browser's pipe is an error, not a kill
  auto fail = [&](std::string what) {
    *error = std::move(what);
    return std::unique_ptr<Browser>();
  };
  std::unique_ptr<Browser> b(new Browser);
  std::error_code ec;
  auto base = fs::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string tmpl = (base / "scraperd-chromium-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return fail(std::string("mkdtemp: ") + std::strerror(errno));
  b->profile_ = tmpl;

  int to_child[2], from_child[2];
  if (::pipe2(to_child, O_CLOEXEC) != 0) return fail(std::string("pipe: ") + std::strerror(errno));
  if (::pipe2(from_child, O_CLOEXEC) != 0) {
    ::close(to_child[0]);
    ::close(to_child[1]);
    return fail(std::string("pipe: ") + std::strerror(errno));
  }
  // The child's ends above 4, so dup2 onto 3 and 4 never clobbers one of them.
  int child_in = ::fcntl(to_child[0], F_DUPFD_CLOEXEC, 10);
  int child_out = ::fcntl(from_child[1], F_DUPFD_CLOEXEC, 10);
  ::close(to_child[0]);
  ::close(from_child[1]);

  std::vector<std::string> args = {executable};
  for (auto& f : flags()) args.push_back(f);
  args.push_back("--user-data-dir=" + b->profile_);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, child_in, 3);
  posix_spawn_file_actions_adddup2(&actions, child_out, 4);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  std::string log = b->profile_ + "/stderr";
  posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addclosefrom_np(&actions, 5);  // nothing else of ours
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);  // the daemon blocks SIGTERM & co. on its threads
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, executable.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(child_in);
  ::close(child_out);
  if (rc != 0) {
    ::close(to_child[1]);
    ::close(from_child[0]);
    return fail("cannot start " + executable + ": " + std::strerror(rc));
  }
  b->pid_ = pid;
  b->cdp_ = std::make_unique<Cdp>(io, to_child[1], from_child[0]);
  return b;
}

Browser::~Browser() {
  cdp_.reset();  // closes our pipe ends: waiting calls end as "closed"
  if (pid_ > 0) {
    ::kill(-pid_, SIGKILL);  // the session's group: the browser and its helpers
    ::kill(pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (!profile_.empty()) {
    std::error_code ec;
    fs::remove_all(profile_, ec);
  }
}

}  // namespace scraperd::daemon::render
