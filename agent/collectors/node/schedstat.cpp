// node_schedstat_* from /proc/schedstat: per CPU, the time tasks ran on it, the time runnable
// tasks waited for it (the run-queue latency behind "CPU saturation") and the timeslices run.
// Kernels built without CONFIG_SCHEDSTATS have no such file: the series are absent.
#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class SchedstatCollector final : public Collector {
 public:
  explicit SchedstatCollector(const HostPaths& paths) : file_(joinPath(paths.procfs, "schedstat")) {
    // A CPU's record is its line and a line per scheduling domain, a kilobyte or more on a
    // machine with several NUMA levels.
    file_.expectLongRecords();
  }

  Status collect(const CollectContext&, MetricBatch& out) override {
    if (!file_.tryRead(buf_)) {
      return Status::ok();
    }
    auto& running =
        out.family("node_schedstat_running_seconds_total",
                   "Number of seconds CPU spent running a process.", MetricType::kCounter);
    auto& waiting = out.family("node_schedstat_waiting_seconds_total",
                               "Number of seconds spent by processing waiting for this CPU.",
                               MetricType::kCounter);
    auto& timeslices = out.family("node_schedstat_timeslices_total",
                                  "Number of timeslices executed by CPU.", MetricType::kCounter);
    forEachLine(buf_, [&](std::string_view line) {
      if (line.rfind("cpu", 0) != 0) {
        return;  // version, timestamp and the domain lines
      }
      splitFields(line, fields_);
      // cpuN, six fields of yield and schedule() counts, then (version 15) the three here.
      if (fields_.size() < 10 || !parseUnsigned(fields_[0].substr(3))) {
        return;
      }
      const auto run_ns = parseDouble(fields_[7]);
      const auto wait_ns = parseDouble(fields_[8]);
      const auto slices = parseDouble(fields_[9]);
      if (!run_ns || !wait_ns || !slices) {
        return;
      }
      const std::string_view cpu = fields_[0].substr(3);
      MetricBatch::add(running, {{"cpu", cpu}}, *run_ns / 1e9);
      MetricBatch::add(waiting, {{"cpu", cpu}}, *wait_ns / 1e9);
      MetricBatch::add(timeslices, {{"cpu", cpu}}, *slices);
    });
    return Status::ok();
  }

 private:
  ProcFile file_;
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeSchedstatCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<SchedstatCollector>(paths));
}

}  // namespace vigil::collectors::node
