#pragma once
// UDP sockets bound to loopback ports for the length of a test: with more than 31 of them,
// /proc/net/udp is longer than the page procfs hands out per read.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace vigil::test {

struct UdpSockets {
  explicit UdpSockets(int count) {
    for (int i = 0; i < count; ++i) {
      const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      REQUIRE(fd >= 0);
      fds.push_back(fd);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
      socklen_t len = sizeof addr;
      REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
      ports.push_back(ntohs(addr.sin_port));
    }
  }
  ~UdpSockets() {
    for (int fd : fds) {
      ::close(fd);
    }
  }
  UdpSockets(const UdpSockets&) = delete;
  UdpSockets& operator=(const UdpSockets&) = delete;

  /// Sends each socket a datagram of `bytes`, which waits in its receive queue (nothing reads
  /// it): node_udp_queues{queue="rx"} counts it.
  void queueDatagrams(std::size_t bytes) const {
    const std::string payload(bytes, 'x');
    for (std::size_t i = 0; i < fds.size(); ++i) {
      sockaddr_in to{};
      to.sin_family = AF_INET;
      to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      to.sin_port = htons(ports[i]);
      REQUIRE(::sendto(fds[(i + 1) % fds.size()], payload.data(), payload.size(), 0,
                       reinterpret_cast<const sockaddr*>(&to),
                       sizeof to) == static_cast<ssize_t>(bytes));
    }
  }

  /// How /proc/net/udp writes the socket on `port`: its local address, 127.0.0.1 in hex.
  static std::string localAddress(uint16_t port) {
    char text[32];
    std::snprintf(text, sizeof text, "0100007F:%04X", port);
    return text;
  }

  std::vector<int> fds;
  std::vector<uint16_t> ports;
};

}  // namespace vigil::test
