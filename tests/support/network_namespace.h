#pragma once
// For tests that change network links: a network namespace of the test's own, where links can
// be changed without touching the machine's.
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

namespace vigil::test {

/// Runs `fn` on a thread of its own in a new network namespace (the namespace is the thread's,
/// so the rest of the process keeps the machine's). Returns false, having warned why, when no
/// namespace could be made (no privilege): the caller then skips its checks. `fn` must not use
/// Catch's assertions, which are not made for other threads: it records what it saw.
inline bool inNewNetworkNamespace(const std::function<void()>& fn) {
  bool isolated = false;
  std::string why;
  std::thread([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      why = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
      return;
    }
    isolated = true;
    fn();
  }).join();
  if (!isolated) {
    WARN("no network namespace of its own (" << why << "): not tested here");
  }
  return isolated;
}

/// Brings the loopback device of this thread's network namespace up (a new namespace has it
/// down), which the kernel announces to netlink's link group. Returns what failed, or "".
inline std::string bringLoopbackUp() {
  const int sock = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ifreq req{};
  std::strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
  bool up = sock >= 0 && ::ioctl(sock, SIOCGIFFLAGS, &req) == 0;
  if (up) {
    req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP);
    up = ::ioctl(sock, SIOCSIFFLAGS, &req) == 0;
  }
  const std::string error = up ? "" : std::string("bringing lo up: ") + std::strerror(errno);
  if (sock >= 0) {
    ::close(sock);
  }
  return error;
}

}  // namespace vigil::test
