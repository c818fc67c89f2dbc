#pragma once
// Reading kernel pseudo-files cheaply: the file stays open between cycles and is re-read from
// offset 0 with pread, so a cycle costs one syscall per file instead of open/read/close.

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/status.h"

namespace vigil::collectors {

class ProcFile {
 public:
  explicit ProcFile(std::string path) : path_(std::move(path)) {}
  ~ProcFile();
  ProcFile(const ProcFile&) = delete;
  ProcFile& operator=(const ProcFile&) = delete;

  /// Replaces `buf` with the file's current content. kNotFound, with `buf` empty, when the file
  /// does not exist or cannot be read (permission, unsupported): callers treat that as "metric
  /// absent". A file that does not exist is looked for again only every kMissingRetryReads
  /// reads (see there). kResourceExhausted, with `buf` empty, for a file longer than kMaxBytes.
  Status read(std::string& buf);
  /// As read, without the error: false where read fails. For a file whose absence or error
  /// only means an absent metric (most of them), read every cycle: a failed read makes no
  /// message, so it allocates nothing.
  bool tryRead(std::string& buf);
  /// As read, for a file whose changes the kernel signals through poll(2) (a mount table in
  /// procfs): reads it only if it changed since the last read, setting `changed`; `buf` is left
  /// as it is otherwise. Any other file (a recorded fixture) is read every time.
  Status readIfChanged(std::string& buf, bool& changed);
  const std::string& path() const { return path_; }
  /// For a file whose records may be longer than kLongestRecordBytes (a mount table's lines
  /// carry every mount option; a CPU's record in /proc/schedstat has a line per scheduling
  /// domain): each read is then followed by another until the end of the file is seen.
  void expectLongRecords() { long_records_ = true; }

  // procfs hands out a file made of records (one line per device, socket, CPU, counter or
  // mount: a seq_file) at most one kernel buffer per read, a page unless a single record
  // needed more, and stops before the first record that does not fit: a read can end short of
  // the end of the file. It can only have stopped there when what it returned is within a
  // record's length of that buffer's size, and only then is another read needed to see the end
  // (with a network device per pod, /proc/net/dev alone passes a page). A record of the files
  // read every cycle is one line, the longest /proc/diskstats' 20 counters of up to 20 digits.
  static constexpr std::size_t kLongestRecordBytes = 512;
  // The most a read takes in: /proc/net/udp of a resolver with 100,000 sockets is 12 MiB.
  static constexpr std::size_t kMaxBytes = std::size_t{64} << 20;

  // A missing file is mostly one the kernel was built without (/proc/schedstat without
  // CONFIG_SCHEDSTATS, pressure files without PSI), looked up in vain every cycle: a failed
  // open costs more than re-reading a small open file (3.6 against 2.1 us in a loop), and with
  // /proc/schedstat missing it was 4 % of the collection thread's CPU (perf). A file that
  // appears later (a module loaded) is found within this many reads, a minute at the default
  // interval.
  static constexpr int kMissingRetryReads = 60;

 private:
  // read's work: 0, or the errno that stopped it (EFBIG for a file past kMaxBytes).
  int readContent(std::string& buf);

  std::string path_;
  int fd_ = -1;
  int missing_reads_ = 0;         // reads left before a missing file is looked for again
  bool signals_changes_ = false;  // fd_ is in procfs: poll says when it changed
  std::size_t last_size_ = 0;     // of the last content read
  bool long_records_ = false;     // see expectLongRecords
};

/// A pseudo-file holding a setting rather than a reading (a sysctl limit, the entropy pool's
/// size, the clocksource in use): it changes only when someone changes it, so it is read again
/// at most once per kRefresh and its last content handed out in between. At a 1 s interval that
/// saves a system call per file and cycle (with the kernel's work behind it, about 10 us of a
/// cycle after a second asleep, on a VM whose system calls empty the TLB); a change shows
/// within kRefresh.
class SettingFile {
 public:
  static constexpr std::chrono::seconds kRefresh{60};
  explicit SettingFile(std::string path, std::chrono::steady_clock::duration refresh = kRefresh)
      : file_(std::move(path)), refresh_(refresh) {}

  /// As ProcFile::read, or what the last read gave when it is younger than the refresh period.
  Status read(std::string& buf);
  /// As read, without the error (see ProcFile::tryRead); the error of a read is made once, when
  /// the file is read, not each time its outcome is handed out.
  bool tryRead(std::string& buf);
  const std::string& path() const { return file_.path(); }

 private:
  void refresh();  // reads the file again if its last read is older than refresh_

  ProcFile file_;
  std::chrono::steady_clock::duration refresh_;
  std::optional<std::chrono::steady_clock::time_point> read_at_;
  std::string content_;
  Status status_;
};

/// A pseudo-file that several collectors parse (cpu and stat both read /proc/stat): read once
/// per round of collection by whichever asks first, and handed to the others as it was then.
class SharedProcFile {
 public:
  /// The one instance for `path` in this process while anyone holds it.
  static std::shared_ptr<SharedProcFile> forPath(const std::string& path);
  explicit SharedProcFile(std::string path) : file_(std::move(path)) {}

  /// As ProcFile::read, but with `round` nonzero (CollectContext::round) and the file already
  /// read in that round, what that read gave.
  Status read(uint64_t round, std::string& buf);
  const std::string& path() const { return file_.path(); }

 private:
  std::mutex mu_;  // collectors of one round may run on different threads
  ProcFile file_;
  uint64_t round_ = 0;
  std::string content_;
  Status status_;
};

/// Calls fn(line) for every line of `text`, without the newline.
template <typename Fn>
void forEachLine(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    fn(line);
    if (nl == std::string_view::npos) {
      break;
    }
    text.remove_prefix(nl + 1);
  }
}

/// Splits on runs of spaces and tabs into `out` (cleared first). The fields point into `line`,
/// so it must outlive them: splitting a temporary string does not compile.
void splitFields(std::string_view line, std::vector<std::string_view>& out);
void splitFields(std::string&& line, std::vector<std::string_view>& out) = delete;

std::optional<double> parseDouble(std::string_view s);
std::optional<unsigned long long> parseUnsigned(std::string_view s);
/// Digits in base 16 without a prefix, as the kernel writes them (softnet_stat, net/udp).
std::optional<unsigned long long> parseHex(std::string_view s);

/// For collectors that list directories (CPUs, sensors, devices) and in between only re-read
/// the files they found: due() is true on the first cycle and then once every `every` cycles
/// (by default 60, a minute at the default interval: soon enough for a driver that loads late).
class PeriodicListing {
 public:
  static constexpr int kDefaultEvery = 60;
  explicit PeriodicListing(int every = kDefaultEvery) : every_(every) {}
  bool due() {
    if (left_-- > 0) {
      return false;
    }
    left_ = every_ - 1;
    return true;
  }

 private:
  int every_;
  int left_ = 0;
};

/// The number on the first line of a pseudo-file holding one (a sysfs attribute, entropy_avail),
/// read with `buf` as scratch; nullopt if it cannot be read or is not a number.
std::optional<double> readNumber(ProcFile& file, std::string& buf);
std::optional<double> readNumber(SettingFile& file, std::string& buf);

/// The names in a directory, sorted, without "." and ".."; empty if it cannot be read.
std::vector<std::string> listDirectory(const std::string& dir);

/// A small sysfs attribute's text with the whitespace around it trimmed (as node_exporter's
/// procfs library reads them); nullopt if it cannot be read.
std::optional<std::string> readAttribute(const std::string& path);

/// Joins a root such as "/host/proc" and a relative path such as "stat".
std::string joinPath(std::string_view root, std::string_view rel);

}  // namespace vigil::collectors
