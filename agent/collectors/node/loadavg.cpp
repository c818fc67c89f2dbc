// node_load1/5/15 from /proc/loadavg.
#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class LoadavgCollector final : public Collector {
 public:
  explicit LoadavgCollector(const HostPaths& paths) : file_(joinPath(paths.procfs, "loadavg")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(file_.read(buf_));
    splitFields(buf_, fields_);
    if (fields_.size() < 3) {
      return invalidArgument(file_.path() + ": expected at least 3 fields");
    }
    static constexpr const char* kNames[3] = {"node_load1", "node_load5", "node_load15"};
    static constexpr const char* kHelp[3] = {"1m load average.", "5m load average.",
                                             "15m load average."};
    for (int i = 0; i < 3; ++i) {
      auto v = parseDouble(fields_[i]);
      if (!v) {
        return invalidArgument(file_.path() + ": field " + std::to_string(i + 1) +
                               " is not a number");
      }
      out.addSingle(kNames[i], kHelp[i], MetricType::kGauge, *v);
    }
    return Status::ok();
  }

 private:
  ProcFile file_;
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeLoadavgCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<LoadavgCollector>(paths));
}

}  // namespace vigil::collectors::node
