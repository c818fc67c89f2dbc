#include "vigil/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace vigil {

Status checkReplaceable(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return Status::ok();  // absent (or unreadable, which the write reports better)
  }
  if (!S_ISREG(st.st_mode)) {
    return Status(StatusCode::kInvalidArgument,
                  "refusing to replace " + path + ": it is not a regular file");
  }
  return Status::ok();
}

Status writeFileAtomically(const std::string& path, std::string_view data, bool sync) {
  if (Status st = checkReplaceable(path); !st.isOk()) {
    return st;
  }
  const std::string tmp = path + ".tmp";
  if (Status st = checkReplaceable(tmp); !st.isOk()) {
    return st;
  }
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) {
    return unavailable("cannot write " + tmp + ": " + std::strerror(errno));
  }
  auto fail = [&](const std::string& what) {
    const std::string reason = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return unavailable(what + ": " + reason);
  };
  std::size_t written = 0;
  while (written < data.size()) {
    const ssize_t n = ::write(fd, data.data() + written, data.size() - written);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return fail("cannot write " + tmp);
    }
    written += static_cast<std::size_t>(n);
  }
  if (sync && ::fsync(fd) != 0) {
    return fail("cannot sync " + tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    return unavailable("cannot rename " + tmp + " to " + path + ": " + reason);
  }
  return Status::ok();
}

}  // namespace vigil
