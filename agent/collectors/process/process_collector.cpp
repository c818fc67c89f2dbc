#include "process_collector.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../common/proc_file.h"

namespace vigil::collectors {
namespace {

class ProcessCollector final : public Collector {
 public:
  // Always this process's own /proc entries, not the (possibly host-mounted) procfs root.
  ProcessCollector()
      : stat_("/proc/self/stat"),
        system_stat_("/proc/stat"),
        ticks_(static_cast<double>(sysconf(_SC_CLK_TCK))),
        page_size_(static_cast<double>(sysconf(_SC_PAGESIZE))) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(stat_.read(buf_));
    // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
    auto close = buf_.rfind(')');
    if (close == std::string::npos) {
      return invalidArgument("/proc/self/stat: malformed");
    }
    splitFields(std::string_view(buf_).substr(close + 2), fields_);
    // fields_[0] is field 3 (state); utime is field 14, stime 15, starttime 22, vsize 23, rss 24.
    if (fields_.size() < 22) {
      return invalidArgument("/proc/self/stat: too few fields");
    }
    auto field = [&](int n) {
      return parseDouble(fields_[static_cast<std::size_t>(n - 3)]).value_or(0);
    };
    out.addSingle("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                  MetricType::kCounter, (field(14) + field(15)) / ticks_);
    out.addSingle("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                  MetricType::kGauge, field(23));
    out.addSingle("process_resident_memory_bytes", "Resident memory size in bytes.",
                  MetricType::kGauge, field(24) * page_size_);
    if (boot_time_ < 0) {
      readBootTime();
    }
    if (boot_time_ >= 0) {
      out.addSingle("process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.", MetricType::kGauge,
                    boot_time_ + field(22) / ticks_);
    }
    out.addSingle("process_open_fds", "Number of open file descriptors.", MetricType::kGauge,
                  static_cast<double>(countOpenFds()));
    struct rlimit lim {};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
      out.addSingle("process_max_fds", "Maximum number of open file descriptors.",
                    MetricType::kGauge, static_cast<double>(lim.rlim_cur));
    }
    return Status::ok();
  }

 private:
  void readBootTime() {
    std::string text;
    if (!system_stat_.tryRead(text)) {
      return;
    }
    auto pos = text.find("\nbtime ");
    if (pos != std::string::npos) {
      auto end = text.find('\n', pos + 7);
      boot_time_ = parseDouble(std::string_view(text).substr(pos + 7, end - pos - 7)).value_or(-1);
    }
  }

  static int countOpenFds() {
    DIR* dir = ::opendir("/proc/self/fd");
    if (dir == nullptr) {
      return 0;
    }
    int count = 0;
    while (struct dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.') {
        ++count;
      }
    }
    ::closedir(dir);
    return count - 1;  // the directory stream's own descriptor
  }

  ProcFile stat_;
  ProcFile system_stat_;
  double ticks_;
  double page_size_;
  double boot_time_ = -1;
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeProcessCollector(const CollectorSettings&, const HostPaths&) {
  return CollectorPtr(std::make_unique<ProcessCollector>());
}

}  // namespace vigil::collectors
