// node_pressure_* from /proc/pressure (PSI). Kernels without PSI simply have no such series.
#include <array>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

struct Resource {
  const char* file;
  const char* waiting_name;
  const char* waiting_help;
  const char* stalled_name;  // nullptr: not exported (cpu's "full" line)
  const char* stalled_help;
};
constexpr std::array<Resource, 3> kResources{{
    {"cpu", "node_pressure_cpu_waiting_seconds_total",
     "Total time in seconds that processes have waited for CPU time", nullptr, nullptr},
    {"io", "node_pressure_io_waiting_seconds_total",
     "Total time in seconds that processes have waited due to IO congestion",
     "node_pressure_io_stalled_seconds_total",
     "Total time in seconds no process could make progress due to IO congestion"},
    {"memory", "node_pressure_memory_waiting_seconds_total",
     "Total time in seconds that processes have waited for memory",
     "node_pressure_memory_stalled_seconds_total",
     "Total time in seconds no process could make progress due to memory congestion"},
}};

class PressureCollector final : public Collector {
 public:
  explicit PressureCollector(const HostPaths& paths) {
    for (std::size_t i = 0; i < kResources.size(); ++i) {
      files_[i] = std::make_unique<ProcFile>(
          joinPath(paths.procfs, std::string("pressure/") + kResources[i].file));
    }
  }

  Status collect(const CollectContext&, MetricBatch& out) override {
    for (std::size_t i = 0; i < kResources.size(); ++i) {
      if (!files_[i]->tryRead(buf_)) {
        continue;  // no PSI on this kernel, or not for this resource
      }
      const Resource& r = kResources[i];
      forEachLine(buf_, [&](std::string_view line) {
        const bool some = line.rfind("some ", 0) == 0;
        const bool full = line.rfind("full ", 0) == 0;
        if ((!some && !full) || (full && r.stalled_name == nullptr)) {
          return;
        }
        auto pos = line.find("total=");
        if (pos == std::string_view::npos) {
          return;
        }
        auto micros = parseDouble(line.substr(pos + 6));
        if (!micros) {
          return;
        }
        // Divided twice, as node_exporter does: 14036781 / 1e6 is 14.036781, but
        // 14036781 / 1000 / 1000 is 14.036781000000001, and dashboards compare series, not
        // rounding.
        out.addSingle(some ? r.waiting_name : r.stalled_name,
                      some ? r.waiting_help : r.stalled_help, MetricType::kCounter,
                      *micros / 1000.0 / 1000.0);
      });
    }
    return Status::ok();
  }

 private:
  std::array<std::unique_ptr<ProcFile>, kResources.size()> files_;
  std::string buf_;
};

}  // namespace

Result<CollectorPtr> makePressureCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<PressureCollector>(paths));
}

}  // namespace vigil::collectors::node
