#include "daemon/cli.h"

int main(int argc, char** argv) {
  return scraperd::daemon::main(argc, argv);
}
