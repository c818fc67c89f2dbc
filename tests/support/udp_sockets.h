#pragma once
// UDP sockets bound to loopback ports for the length of a test: with more than 31 of them,
// /proc/net/udp is longer than the page procfs hands out per read.
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "tests/support/process.h"

namespace vigil::test {

struct UdpSockets {
  explicit UdpSockets(int count) {
    for (int i = 0; i < count; ++i) {
      int port = 0;
      fds.push_back(boundLoopbackSocket(SOCK_DGRAM, port));
      ports.push_back(static_cast<uint16_t>(port));
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
    for (uint16_t port : ports) {
      const int sender = connectedLoopbackUdpSocket(port);
      const ssize_t sent = ::send(sender, payload.data(), payload.size(), 0);
      ::close(sender);
      REQUIRE(sent == static_cast<ssize_t>(bytes));
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
