// Context switches, interrupts, forks, boot time and process states from /proc/stat.
#include <algorithm>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

struct ProcStatField {
  std::string_view key;
  const char* name;
  const char* help;
  MetricType type;
};
constexpr ProcStatField kProcStatFields[] = {
    {"ctxt", "node_context_switches_total", "Total number of context switches.",
     MetricType::kCounter},
    {"btime", "node_boot_time_seconds", "Node boot time, in unixtime.", MetricType::kGauge},
    {"processes", "node_forks_total", "Total number of forks.", MetricType::kCounter},
    {"intr", "node_intr_total", "Total number of interrupts serviced.", MetricType::kCounter},
    {"procs_running", "node_procs_running", "Number of processes in runnable state.",
     MetricType::kGauge},
    {"procs_blocked", "node_procs_blocked",
     "Number of processes blocked waiting for I/O to complete.", MetricType::kGauge},
};

class StatCollector final : public Collector {
 public:
  explicit StatCollector(const HostPaths& paths)
      : file_(SharedProcFile::forPath(joinPath(paths.procfs, "stat"))) {}

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(file_->read(ctx.round, buf_));
    forEachLine(buf_, [&](std::string_view line) {
      auto space = line.find(' ');
      if (space == std::string_view::npos) {
        return;
      }
      std::string_view key = line.substr(0, space);
      for (const auto& f : kProcStatFields) {
        if (f.key != key) {
          continue;
        }
        // Only the first number: intr's line goes on with one count per interrupt (hundreds,
        // thousands on a large machine), which would otherwise all be split and thrown away.
        std::string_view rest = line.substr(space);
        rest.remove_prefix(std::min(rest.find_first_not_of(' '), rest.size()));
        if (auto v = parseDouble(rest.substr(0, rest.find(' ')))) {
          out.addSingle(f.name, f.help, f.type, *v);
        }
        return;
      }
    });
    return Status::ok();
  }

 private:
  std::shared_ptr<SharedProcFile> file_;
  std::string buf_;
};

}  // namespace

Result<CollectorPtr> makeStatCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<StatCollector>(paths));
}

}  // namespace vigil::collectors::node
