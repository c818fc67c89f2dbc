// node_memory_* from /proc/meminfo: every key, named as node_exporter 1.5 names them.
#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class MeminfoCollector final : public Collector {
 public:
  explicit MeminfoCollector(const HostPaths& paths) : file_(joinPath(paths.procfs, "meminfo")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(file_.read(buf_));
    forEachLine(buf_, [&](std::string_view line) {
      splitFields(line, fields_);
      if (fields_.size() < 2 || fields_[0].back() != ':') {
        return;
      }
      auto value = parseDouble(fields_[1]);
      if (!value) {
        return;
      }
      std::string key = mangle(fields_[0].substr(0, fields_[0].size() - 1));
      double v = *value;
      if (fields_.size() == 3) {  // the only unit the kernel uses here is kB
        v *= 1024;
        key += "_bytes";
      }
      const bool counter = key.size() > 6 && key.compare(key.size() - 6, 6, "_total") == 0;
      out.addSingle("node_memory_" + key, "Memory information field " + key + ".",
                    counter ? MetricType::kCounter : MetricType::kGauge, v);
    });
    return Status::ok();
  }

 private:
  // "Active(anon)" becomes "Active_anon".
  static std::string mangle(std::string_view key) {
    std::string out;
    out.reserve(key.size());
    for (char c : key) {
      if (c == '(') {
        out += '_';
      } else if (c != ')') {
        out += c;
      }
    }
    return out;
  }

  ProcFile file_;
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeMeminfoCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<MeminfoCollector>(paths));
}

}  // namespace vigil::collectors::node
