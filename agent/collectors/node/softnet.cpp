// node_softnet_* from /proc/net/softnet_stat: per CPU, packets processed by the network
// receive softirq, packets dropped because its backlog was full, and times it ran out of
// budget (a sign that net.core.netdev_budget is too small for the traffic).
#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class SoftnetCollector final : public Collector {
 public:
  explicit SoftnetCollector(const HostPaths& paths)
      : file_(joinPath(paths.procfs, "net/softnet_stat")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    if (!file_.tryRead(buf_)) {
      return Status::ok();  // no such file here (a masked /proc): the series are absent
    }
    auto& processed = out.family("node_softnet_processed_total", "Number of processed packets",
                                 MetricType::kCounter);
    auto& dropped =
        out.family("node_softnet_dropped_total", "Number of dropped packets", MetricType::kCounter);
    auto& squeezed =
        out.family("node_softnet_times_squeezed_total",
                   "Number of times processing packets ran out of quota", MetricType::kCounter);
    std::size_t row = 0;
    Status status = Status::ok();
    forEachLine(buf_, [&](std::string_view line) {
      splitFields(line, fields_);
      if (fields_.empty() || !status.isOk()) {
        return;
      }
      const auto p = fields_.size() >= 3 ? parseHex(fields_[0]) : std::nullopt;
      const auto d = fields_.size() >= 3 ? parseHex(fields_[1]) : std::nullopt;
      const auto s = fields_.size() >= 3 ? parseHex(fields_[2]) : std::nullopt;
      if (!p || !d || !s) {
        status = invalidArgument(file_.path() + ": line " + std::to_string(row + 1) +
                                 " does not start with three hexadecimal counters");
        return;
      }
      // node_exporter 1.5 labels each line with its position, not with the CPU number the
      // kernel writes in the 13th column (they differ once a CPU is offline): the same here,
      // so that the series are node_exporter's.
      const std::string& cpu = labelOf(row++);
      MetricBatch::add(processed, {{"cpu", cpu}}, static_cast<double>(*p));
      MetricBatch::add(dropped, {{"cpu", cpu}}, static_cast<double>(*d));
      MetricBatch::add(squeezed, {{"cpu", cpu}}, static_cast<double>(*s));
    });
    return status;
  }

 private:
  const std::string& labelOf(std::size_t row) {
    while (labels_.size() <= row) {
      labels_.push_back(std::to_string(labels_.size()));
    }
    return labels_[row];
  }

  ProcFile file_;
  std::string buf_;
  std::vector<std::string_view> fields_;
  std::vector<std::string> labels_;  // "0", "1", ... kept from cycle to cycle
};

}  // namespace

Result<CollectorPtr> makeSoftnetCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<SoftnetCollector>(paths));
}

}  // namespace vigil::collectors::node
