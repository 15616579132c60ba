#include "daemon/cli/progress.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <mutex>

#include "daemon/service/systemd.h"

namespace scraperd::daemon {

struct ProgressDisplay::State {
  std::mutex mu;
  std::vector<std::string> lines;  // GUARDED_BY(mu)
  std::size_t drawn = 0;           // GUARDED_BY(mu) lines on the screen now

  // REQUIRES: mu held.
  void clear() {
    if (drawn == 0) return;
    // To the start of the first line drawn, then erase to the end of the screen.
    std::string out = "\r";
    if (drawn > 1) out += "\033[" + std::to_string(drawn - 1) + "A";
    out += "\033[J";
    std::fwrite(out.data(), 1, out.size(), stderr);
    drawn = 0;
  }
  // REQUIRES: mu held. Lines are cut to the terminal's width, so none wraps (the cursor
  // moves count lines); the last one ends without a newline.
  void draw() {
    winsize ws{};
    std::size_t width = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 1
                            ? static_cast<std::size_t>(ws.ws_col) - 1
                            : 79;
    std::string out;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) out += '\n';
      out += lines[i].substr(0, width);
    }
    std::fwrite(out.data(), 1, out.size(), stderr);
    std::fflush(stderr);
    drawn = lines.size();
  }
};

namespace {

// Forwards to the sinks it wraps, with the progress lines out of the way.
class AroundSink : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  AroundSink(std::vector<spdlog::sink_ptr> inner, std::shared_ptr<ProgressDisplay::State> state)
      : inner_(std::move(inner)), state_(std::move(state)) {}
  const std::vector<spdlog::sink_ptr>& inner() const { return inner_; }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::lock_guard lock(state_->mu);
    state_->clear();
    for (auto& s : inner_)
      if (s->should_log(msg.level)) {
        s->log(msg);
        s->flush();
      }
    if (!state_->lines.empty()) state_->draw();
  }
  void flush_() override {
    for (auto& s : inner_) s->flush();
  }

 private:
  std::vector<spdlog::sink_ptr> inner_;
  std::shared_ptr<ProgressDisplay::State> state_;
};

}  // namespace

bool ProgressDisplay::wanted() {
  return isatty(STDERR_FILENO) && !systemd::logging_to_journal();
}

ProgressDisplay::ProgressDisplay() : state_(std::make_shared<State>()) {
  auto logger = spdlog::default_logger();
  auto inner = logger->sinks();
  logger->sinks().clear();
  logger->sinks().push_back(std::make_shared<AroundSink>(std::move(inner), state_));
}

ProgressDisplay::~ProgressDisplay() {
  show({});
  auto logger = spdlog::default_logger();
  if (logger->sinks().size() != 1) return;
  auto around = std::dynamic_pointer_cast<AroundSink>(logger->sinks().front());
  if (!around) return;
  logger->sinks() = around->inner();
}

void ProgressDisplay::show(std::vector<std::string> lines) {
  std::lock_guard lock(state_->mu);
  state_->clear();
  state_->lines = std::move(lines);
  if (!state_->lines.empty()) state_->draw();
  std::fflush(stderr);
}

}  // namespace scraperd::daemon
