// How many bytes of a TCP connection the application has read: the kernel's count of bytes
// received (TCP_INFO, Linux >= 4.1) less those still waiting in the receive queue. Its own
// file because <linux/tcp.h>, which has that count, clashes with glibc's <netinet/tcp.h>.
#pragma once

#include <cstdint>

namespace scraperd::daemon {

// 0 when `fd` is not a TCP socket or the kernel cannot tell.
std::uint64_t tcp_bytes_read(int fd);

// The local port of the TCP connection `fd`, or -1. With the descriptor it names one
// connection, so another thread can tell a descriptor that was closed and reused.
int tcp_local_port(int fd);

}  // namespace scraperd::daemon
