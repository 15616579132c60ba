#include "daemon/tcp_bytes.h"

#include <arpa/inet.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstddef>

namespace scraperd::daemon {

std::uint64_t tcp_bytes_read(int fd) {
  tcp_info info{};
  socklen_t len = sizeof info;
  int unread = 0;
  if (fd < 0 || ::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
      len < offsetof(tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received ||
      ::ioctl(fd, SIOCINQ, &unread) != 0 || unread < 0 ||
      static_cast<std::uint64_t>(unread) > info.tcpi_bytes_received)
    return 0;
  return info.tcpi_bytes_received - static_cast<std::uint64_t>(unread);
}

int tcp_local_port(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  if (fd < 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return -1;
  if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return -1;
}

}  // namespace scraperd::daemon
