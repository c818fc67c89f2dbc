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
    std::size_t wanted = 0;
    forEachLine(buf_, [&](std::string_view line) {
      // "pgfault 123": a key, one space, a value.
      const std::size_t space = line.find(' ');
      if (space == std::string_view::npos || !isDefaultField(line.substr(0, space))) {
        return;
      }
      if (auto v = parseDouble(line.substr(space + 1))) {
        const Field& f = field(wanted++, line.substr(0, space));
        out.addSingle(f.name, f.help, MetricType::kUntyped, *v);
      }
    });
    return Status::ok();
  }

 private:
  struct Field {
    std::string key;
    std::string name;
    std::string help;
  };

  // The names of the k-th field of the default set, made again only when the key at that place
  // changes: the kernel lists the same keys in the same order every time.
  const Field& field(std::size_t k, std::string_view key) {
    if (k >= fields_.size()) {
      fields_.resize(k + 1);
    }
    Field& f = fields_[k];
    if (f.key != key) {
      f.key = key;
      f.name = "node_vmstat_" + f.key;
      f.help = "/proc/vmstat information field " + f.key + ".";
    }
    return f;
  }

  ProcFile file_;
  std::string buf_;
  std::vector<Field> fields_;
};

}  // namespace

Result<CollectorPtr> makeVmstatCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<VmstatCollector>(paths));
}

}  // namespace vigil::collectors::node
