// node_vmstat_* from /proc/vmstat, limited to node_exporter's default field set
// ^(oom_kill|pgpg|pswp|pg.*fault).*
#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

bool startsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The default field regex, spelled out: cheaper than a regex on every line every cycle.
bool isDefaultField(std::string_view key) {
  if (startsWith(key, "oom_kill") || startsWith(key, "pgpg") || startsWith(key, "pswp")) {
    return true;
  }
  return startsWith(key, "pg") && key.find("fault", 2) != std::string_view::npos;
}

class VmstatCollector final : public Collector {
 public:
  explicit VmstatCollector(const HostPaths& paths) : file_(joinPath(paths.procfs, "vmstat")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(file_.read(buf_));
    forEachLine(buf_, [&](std::string_view line) {
      splitFields(line, fields_);
      if (fields_.size() != 2 || !isDefaultField(fields_[0])) {
        return;
      }
      if (auto v = parseDouble(fields_[1])) {
        std::string key(fields_[0]);
        out.addSingle("node_vmstat_" + key, "/proc/vmstat information field " + key + ".",
                      MetricType::kUntyped, *v);
      }
    });
    return Status::ok();
  }

 private:
  ProcFile file_;
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeVmstatCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<VmstatCollector>(paths));
}

}  // namespace vigil::collectors::node
