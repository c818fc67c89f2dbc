#include "tcp_client.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vigil::collectors {

int msLeft(TcpClient::Deadline deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

namespace {

Status timeout(const char* what) {
  return Status(StatusCode::kDeadlineExceeded, std::string("timed out ") + what);
}

}  // namespace

TcpClient::~TcpClient() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

Status TcpClient::connect(const std::string& address, Deadline deadline) {
  const auto colon = address.rfind(':');
  std::string host = address.substr(0, colon);
  const std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Status(StatusCode::kUnavailable,
                  "cannot resolve " + address + ": " + ::gai_strerror(rc));
  }
  Status last(StatusCode::kUnavailable, "no address for " + address);
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      continue;
    }
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      rc = ::poll(&p, 1, msLeft(deadline));
      if (rc == 1) {
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        rc = err == 0 ? 0 : -1;
        errno = err;
      } else {
        rc = -1;
        errno = ETIMEDOUT;
      }
    }
    if (rc == 0) {
      fd_ = fd;
      ::freeaddrinfo(found);
      return Status::ok();
    }
    last = Status(StatusCode::kUnavailable,
                  "cannot connect to " + address + ": " + std::strerror(errno));
    ::close(fd);
  }
  ::freeaddrinfo(found);
  return last;
}

Status TcpClient::send(std::string_view data, Deadline deadline) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      pollfd p{fd_, POLLOUT, 0};
      if (::poll(&p, 1, msLeft(deadline)) != 1) {
        return timeout("sending");
      }
      continue;
    }
    return Status(StatusCode::kUnavailable, std::string("send failed: ") + std::strerror(errno));
  }
  return Status::ok();
}

Status TcpClient::fill(Deadline deadline) {
  char buf[16384];
  while (true) {
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
      buffer_.append(buf, static_cast<std::size_t>(n));
      return Status::ok();
    }
    if (n == 0) {
      return Status(StatusCode::kUnavailable, "connection closed by the server");
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, msLeft(deadline)) != 1) {
        return timeout("waiting for the answer");
      }
      continue;
    }
    return Status(StatusCode::kUnavailable, std::string("recv failed: ") + std::strerror(errno));
  }
}

Result<std::string> TcpClient::readLine(Deadline deadline, std::size_t max_bytes) {
  while (true) {
    if (auto pos = buffer_.find("\r\n"); pos != std::string::npos) {
      std::string line = buffer_.substr(0, pos);
      buffer_.erase(0, pos + 2);
      return line;
    }
    if (buffer_.size() > max_bytes) {
      return invalidArgument("answer line longer than " + std::to_string(max_bytes) + " bytes");
    }
    if (Status st = fill(deadline); !st.isOk()) {
      return st;
    }
  }
}

Result<std::string> TcpClient::readSome(Deadline deadline) {
  if (buffer_.empty()) {
    if (Status st = fill(deadline); !st.isOk()) {
      return st;
    }
  }
  std::string out;
  out.swap(buffer_);
  return out;
}

Result<std::string> TcpClient::readExactly(std::size_t n, Deadline deadline) {
  while (buffer_.size() < n) {
    if (Status st = fill(deadline); !st.isOk()) {
      return st;
    }
  }
  std::string out = buffer_.substr(0, n);
  buffer_.erase(0, n);
  return out;
}

}  // namespace vigil::collectors
