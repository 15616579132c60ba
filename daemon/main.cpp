#include <csignal>

#include "daemon/cli/cli.h"

int main(int argc, char** argv) {
  // A write to a connection the peer has reset (OpenSSL writes with write(2), not with
  // MSG_NOSIGNAL) must be an error for that request, not the end of the process.
  std::signal(SIGPIPE, SIG_IGN);
  return scraperd::daemon::main(argc, argv);
}
