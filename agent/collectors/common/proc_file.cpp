#include "proc_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <poll.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <map>

namespace vigil::collectors {

ProcFile::~ProcFile() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

namespace {

// Whether a read of a record file that returned `n` bytes may have been cut short by the
// kernel's buffer (see ProcFile::kLongestRecordBytes): that buffer is a page doubled as often as
// a single record needed, so at least the smallest such size that holds `n`, and a read stops
// early only when the next record would not have fit in what was left of it.
bool mayHaveStoppedAtKernelBuffer(std::size_t n) {
  static const std::size_t page = [] {
    const long size = ::sysconf(_SC_PAGESIZE);
    return size > 0 ? static_cast<std::size_t>(size) : std::size_t{4096};
  }();
  std::size_t buffer = page;
  while (buffer < n) {
    buffer *= 2;
  }
  return n + ProcFile::kLongestRecordBytes > buffer;
}

}  // namespace

Status ProcFile::read(std::string& buf) {
  const int err = readContent(buf);
  if (err == 0) {
    return Status::ok();
  }
  if (err == EFBIG) {
    return Status(StatusCode::kResourceExhausted,
                  path_ + ": longer than " + std::to_string(kMaxBytes >> 20) + " MiB, not read");
  }
  return notFound(path_ + ": " + std::strerror(err));
}

bool ProcFile::tryRead(std::string& buf) { return readContent(buf) == 0; }

int ProcFile::readContent(std::string& buf) {
  if (fd_ < 0) {
    if (missing_reads_ > 0) {
      --missing_reads_;
      buf.clear();
      return ENOENT;
    }
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) {
      const int err = errno;
      buf.clear();
      if (err == ENOENT) {
        missing_reads_ = kMissingRetryReads - 1;
      }
      return err;
    }
  }
  // Room for the last content and some: resizing zero-fills what it adds, and filling a 4 KB
  // buffer for a 30-byte file (every file, every cycle) cost more than parsing them.
  buf.resize(last_size_ == 0 ? 4096 : last_size_ + last_size_ / 4 + 256);
  std::size_t used = 0;
  for (;;) {
    if (used == buf.size()) {
      buf.resize(std::min(buf.size() * 2, kMaxBytes + 1));
    }
    ssize_t n = ::pread(fd_, buf.data() + used, buf.size() - used, static_cast<off_t>(used));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const int err = errno;
      // A file that went away (a device unplugged, a process gone) is opened afresh next time.
      // Any other error is the attribute having no value now (a link that is down has no speed,
      // EINVAL) and the same file is read again next time: reopening it would cost a path
      // lookup every cycle for nothing.
      if (err == ENODEV || err == ENOENT || err == ESRCH || err == ESTALE || err == EBADF) {
        ::close(fd_);
        fd_ = -1;
      }
      buf.clear();
      return err;
    }
    if (n == 0) {
      break;  // the end of the file
    }
    used += static_cast<std::size_t>(n);
    if (used > kMaxBytes) {
      // Bounded memory whatever a file does (one that ignored the offset would never end).
      std::string().swap(buf);
      return EFBIG;
    }
    // A full buffer may have more behind it; a short read has it all unless the kernel stopped
    // at the edge of its own buffer (see kLongestRecordBytes).
    if (used < buf.size() && !long_records_ &&
        !mayHaveStoppedAtKernelBuffer(static_cast<std::size_t>(n))) {
      break;
    }
  }
  buf.resize(used);
  last_size_ = used;
  return 0;
}

Status ProcFile::readIfChanged(std::string& buf, bool& changed) {
  if (fd_ >= 0 && signals_changes_) {
    // A mount table reports POLLPRI (with POLLERR) once after each change, and polling
    // consumes it: a change after this poll is reported by the next one.
    pollfd p{fd_, POLLPRI, 0};
    if (::poll(&p, 1, 0) == 0) {
      changed = false;
      return Status::ok();
    }
  }
  changed = true;
  Status status = read(buf);
  // Until a good read, and for a file not in procfs, there is nothing to compare with.
  struct statfs fs {};
  signals_changes_ =
      status.isOk() && fd_ >= 0 && ::fstatfs(fd_, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC;
  return status;
}

void SettingFile::refresh() {
  const auto now = std::chrono::steady_clock::now();
  if (!read_at_ || now - *read_at_ >= refresh_) {
    status_ = file_.read(content_);
    read_at_ = now;
  }
}

Status SettingFile::read(std::string& buf) {
  refresh();
  buf.assign(content_);
  return status_;
}

bool SettingFile::tryRead(std::string& buf) {
  refresh();
  buf.assign(content_);
  return status_.isOk();
}

std::shared_ptr<SharedProcFile> SharedProcFile::forPath(const std::string& path) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<SharedProcFile>, std::less<>> files;
  std::lock_guard lock(mu);
  std::erase_if(files, [](const auto& entry) { return entry.second.expired(); });
  auto& entry = files[path];
  auto file = entry.lock();
  if (file == nullptr) {
    file = std::make_shared<SharedProcFile>(path);
    entry = file;
  }
  return file;
}

Status SharedProcFile::read(uint64_t round, std::string& buf) {
  std::lock_guard lock(mu_);
  if (round == 0 || round != round_) {
    status_ = file_.read(content_);
    round_ = round;
  }
  buf.assign(content_);
  return status_;
}

void splitFields(std::string_view line, std::vector<std::string_view>& out) {
  out.clear();
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) {
      ++i;
    }
    std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') {
      ++i;
    }
    if (i > start) {
      out.push_back(line.substr(start, i - start));
    }
  }
}

std::optional<double> parseDouble(std::string_view s) {
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

std::optional<unsigned long long> parseUnsigned(std::string_view s) {
  unsigned long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

std::optional<unsigned long long> parseHex(std::string_view s) {
  unsigned long long v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || end != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

template <typename File>
std::optional<double> readNumberFrom(File& file, std::string& buf) {
  if (!file.tryRead(buf)) {
    return std::nullopt;
  }
  return parseDouble(std::string_view(buf).substr(0, buf.find('\n')));
}

std::optional<double> readNumber(ProcFile& file, std::string& buf) {
  return readNumberFrom(file, buf);
}

std::optional<double> readNumber(SettingFile& file, std::string& buf) {
  return readNumberFrom(file, buf);
}

std::vector<std::string> listDirectory(const std::string& dir) {
  std::vector<std::string> names;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* entry = ::readdir(d)) {
      const std::string_view name = entry->d_name;
      if (name != "." && name != "..") {
        names.emplace_back(name);
      }
    }
    ::closedir(d);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::optional<std::string> readAttribute(const std::string& path) {
  ProcFile file(path);
  std::string text;
  if (!file.tryRead(text)) {
    return std::nullopt;
  }
  const auto first = text.find_first_not_of(" \t\n\r\v\f");
  if (first == std::string::npos) {
    return std::string();
  }
  return text.substr(first, text.find_last_not_of(" \t\n\r\v\f") - first + 1);
}

std::string joinPath(std::string_view root, std::string_view rel) {
  std::string out(root);
  while (!out.empty() && out.back() == '/') {
    out.pop_back();
  }
  out += '/';
  out += rel;
  return out;
}

}  // namespace vigil::collectors
