// node_entropy_available_bits and node_entropy_pool_size_bits from /proc/sys/kernel/random.
#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class EntropyCollector final : public Collector {
 public:
  explicit EntropyCollector(const HostPaths& paths)
      : available_(joinPath(paths.procfs, "sys/kernel/random/entropy_avail")),
        pool_size_(joinPath(paths.procfs, "sys/kernel/random/poolsize")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    // Either file may be missing (a kernel without it, a masked /proc): that metric is absent.
    if (auto bits = readNumber(available_, buf_)) {
      out.addSingle("node_entropy_available_bits", "Bits of available entropy.", MetricType::kGauge,
                    *bits);
    }
    if (auto bits = readNumber(pool_size_, buf_)) {
      out.addSingle("node_entropy_pool_size_bits", "Bits of entropy pool.", MetricType::kGauge,
                    *bits);
    }
    return Status::ok();
  }

 private:
  ProcFile available_;
  SettingFile pool_size_;  // fixed at 256 bits since Linux 5.18
  std::string buf_;
};

}  // namespace

Result<CollectorPtr> makeEntropyCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<EntropyCollector>(paths));
}

}  // namespace vigil::collectors::node
