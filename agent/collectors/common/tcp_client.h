#pragma once
// A blocking TCP connection with a deadline on every step, for collectors that speak a
// service's own protocol (Redis's RESP). Loopback or LAN services answer in microseconds; the
// deadline is what keeps a hung one from stalling a collection cycle.

#include <chrono>
#include <string>
#include <string_view>

#include "vigil/status.h"

namespace vigil::collectors {

class TcpClient {
 public:
  using Deadline = std::chrono::steady_clock::time_point;
  TcpClient() = default;
  ~TcpClient();
  TcpClient(const TcpClient&) = delete;
  TcpClient& operator=(const TcpClient&) = delete;

  /// Connects to host:port (names resolved, IPv4 or IPv6) before `deadline`.
  Status connect(const std::string& address, Deadline deadline);
  Status send(std::string_view data, Deadline deadline);
  /// Reads one line ending in "\r\n" (returned without it), at most `max_bytes`.
  Result<std::string> readLine(Deadline deadline, std::size_t max_bytes);
  /// Reads exactly `n` bytes.
  Result<std::string> readExactly(std::size_t n, Deadline deadline);
  /// Whatever arrives next (at least one byte); kUnavailable once the server closed.
  Result<std::string> readSome(Deadline deadline);
  /// The connected socket (non-blocking), for a TLS layer on top.
  int fd() const { return fd_; }

 private:
  Status fill(Deadline deadline);  // at least one more byte into buffer_
  int fd_ = -1;
  std::string buffer_;
};

/// Milliseconds from now to `deadline`, 0 once it passed: a poll() timeout.
int msLeft(TcpClient::Deadline deadline);
/// Seconds since `start` on the steady clock.
double secondsSince(std::chrono::steady_clock::time_point start);

}  // namespace vigil::collectors
