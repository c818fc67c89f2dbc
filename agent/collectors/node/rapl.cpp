// node_rapl_<zone>_joules_total{index,path} from /sys/class/powercap: the energy the CPU
// packages, cores, DRAM and platform used, from Intel's (and AMD's) RAPL counters. Since the
// Platypus fix the counters are root's to read; without them there is nothing to report.
#include <map>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class RaplCollector final : public Collector {
 public:
  explicit RaplCollector(const HostPaths& paths) : dir_(joinPath(paths.sysfs, "class/powercap")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    if (listing_.due()) {
      relist();
    }
    for (Zone& zone : zones_) {
      const auto microjoules = readNumber(*zone.energy, buf_);
      if (!microjoules) {
        continue;
      }
      // Divided, not multiplied by 1e-6, for node_exporter's doubles.
      MetricBatch::add(out.family(zone.family, zone.help, MetricType::kCounter),
                       {{"index", zone.index}, {"path", zone.path}}, *microjoules / 1000000.0);
    }
    return Status::ok();
  }

 private:
  struct Zone {
    std::string family;
    std::string help;
    std::string index;
    std::string path;
    std::unique_ptr<ProcFile> energy;
  };

  // node_exporter 1.5's zones: the "intel-rapl:N[:M]" entries, in name order. A "package-N"
  // zone is "package" with index N; any other name is indexed by how many zones of that name
  // came before it (the DRAM of the second package is "dram" 1).
  void relist() {
    zones_.clear();
    std::map<std::string, int> seen;
    for (const std::string& entry : listDirectory(dir_)) {
      if (entry.find(':') == std::string::npos) {
        continue;
      }
      const std::string path = dir_ + "/" + entry;
      auto name = readAttribute(path + "/name");
      if (!name || name->empty()) {
        continue;
      }
      std::string kind = *name;
      std::string index;
      const auto dash = name->rfind('-');
      if (name->rfind("package-", 0) == 0 && parseUnsigned(name->substr(dash + 1))) {
        kind = "package";
        index = name->substr(dash + 1);
      } else {
        index = std::to_string(seen[kind]++);
      }
      std::string metric;
      for (char c : kind) {
        const bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        metric.push_back(ok ? c : '_');
      }
      zones_.push_back(Zone{"node_rapl_" + metric + "_joules_total",
                            "Current RAPL " + metric + " value in joules", std::move(index), path,
                            std::make_unique<ProcFile>(path + "/energy_uj")});
    }
  }

  std::string dir_;
  std::vector<Zone> zones_;
  // Zones come with the powercap driver: listed again now and then.
  PeriodicListing listing_;
  std::string buf_;
};

}  // namespace

Result<CollectorPtr> makeRaplCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<RaplCollector>(paths));
}

}  // namespace vigil::collectors::node
