#include "round_timer.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <system_error>

namespace vigil {

namespace {

int createTimerFd() {
  const int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (fd < 0) {
    throw std::system_error(errno, std::generic_category(), "timerfd_create");
  }
  return fd;
}

}  // namespace

void setTimerFdAt(int fd, std::chrono::steady_clock::time_point at) {
  // At least a nanosecond: an all-zero setting would disarm the timer.
  const int64_t ns = std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::nanoseconds>(at - std::chrono::steady_clock::now())
             .count());
  itimerspec spec{};
  spec.it_value.tv_sec = ns / 1'000'000'000;
  spec.it_value.tv_nsec = ns % 1'000'000'000;
  ::timerfd_settime(fd, 0, &spec, nullptr);
}

RoundTimer::RoundTimer(boost::asio::io_context& io) : fd_(createTimerFd()), descriptor_(io) {
  descriptor_.assign(fd_);  // closes it when destroyed
}

RoundTimer::~RoundTimer() = default;

void RoundTimer::armAt(Clock::time_point at) { setTimerFdAt(fd_, at); }

void RoundTimer::wait(std::function<void(bool)> fired) {
  descriptor_.async_wait(
      boost::asio::posix::stream_descriptor::wait_read,
      [fired = std::move(fired)](const boost::system::error_code& ec) { fired(!ec); });
}

bool RoundTimer::consume() {
  uint64_t expirations = 0;
  return ::read(fd_, &expirations, sizeof expirations) == sizeof expirations;
}

void RoundTimer::cancel() { descriptor_.cancel(); }

}  // namespace vigil
