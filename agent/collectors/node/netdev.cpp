// node_network_*_total{device} from /proc/net/dev, with the loopback device excluded as in
// Debian's node_exporter 1.5 build.
#include <array>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

// Column order of /proc/net/dev after the device name.
constexpr std::array<const char*, 16> kKeys{
    "receive_bytes",  "receive_packets",  "receive_errs",       "receive_drop",
    "receive_fifo",   "receive_frame",    "receive_compressed", "receive_multicast",
    "transmit_bytes", "transmit_packets", "transmit_errs",      "transmit_drop",
    "transmit_fifo",  "transmit_colls",   "transmit_carrier",   "transmit_compressed"};

class NetdevCollector final : public Collector {
 public:
  explicit NetdevCollector(const HostPaths& paths) : file_(joinPath(paths.procfs, "net/dev")) {
    for (std::size_t i = 0; i < kKeys.size(); ++i) {
      names_[i] = std::string("node_network_") + kKeys[i] + "_total";
      helps_[i] = std::string("Network device statistic ") + kKeys[i] + ".";
    }
  }

  Status collect(const CollectContext&, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(file_.read(buf_));
    std::array<MetricFamily*, kKeys.size()> families{};
    forEachLine(buf_, [&](std::string_view line) {
      auto colon = line.find(':');
      if (colon == std::string_view::npos) {
        return;  // the two header lines
      }
      std::string_view device = line.substr(0, colon);
      while (!device.empty() && device.front() == ' ') {
        device.remove_prefix(1);
      }
      if (device.empty() || device == "lo") {
        return;
      }
      splitFields(line.substr(colon + 1), fields_);
      if (fields_.size() < kKeys.size()) {
        return;
      }
      for (std::size_t i = 0; i < kKeys.size(); ++i) {
        auto v = parseDouble(fields_[i]);
        if (!v) {
          continue;
        }
        if (families[i] == nullptr) {
          families[i] = &out.family(names_[i], helps_[i], MetricType::kCounter);
        }
        MetricBatch::add(*families[i], {{"device", std::string(device)}}, *v);
      }
    });
    return Status::ok();
  }

 private:
  ProcFile file_;
  std::string buf_;
  std::vector<std::string_view> fields_;
  std::array<std::string, kKeys.size()> names_;
  std::array<std::string, kKeys.size()> helps_;
};

}  // namespace

Result<CollectorPtr> makeNetdevCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<NetdevCollector>(paths));
}

}  // namespace vigil::collectors::node
