// node_arp_entries{device}: the neighbour table's IPv4 entries per device, from /proc/net/arp
// (incomplete entries included, as node_exporter 1.5 counts them). A table near
// gc_thresh3 drops neighbours: packets to them are lost.
#include <algorithm>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class ArpCollector final : public Collector {
 public:
  explicit ArpCollector(const HostPaths& paths) : file_(joinPath(paths.procfs, "net/arp")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    if (!file_.tryRead(buf_)) {
      return Status::ok();  // no such file here (a masked /proc): the series are absent
    }
    for (auto& d : devices_) {
      d.entries = 0;
    }
    std::size_t line_number = 0;
    forEachLine(buf_, [&](std::string_view line) {
      if (++line_number == 1) {
        return;  // IP address  HW type  Flags  HW address  Mask  Device
      }
      splitFields(line, fields_);
      if (fields_.size() < 6) {
        return;
      }
      countFor(fields_[5]) += 1;
    });
    auto& entries = out.family("node_arp_entries", "ARP entries by device", MetricType::kGauge);
    for (const auto& d : devices_) {
      if (d.entries > 0) {
        MetricBatch::add(entries, {{"device", d.name}}, static_cast<double>(d.entries));
      }
    }
    // Devices gone from the table are forgotten, so that the list stays as long as the table.
    std::erase_if(devices_, [](const Device& d) { return d.entries == 0; });
    return Status::ok();
  }

 private:
  struct Device {
    std::string name;
    std::size_t entries = 0;
  };

  // The device's count, kept in name order (the order the series are reported in).
  std::size_t& countFor(std::string_view name) {
    auto it = std::lower_bound(devices_.begin(), devices_.end(), name,
                               [](const Device& d, std::string_view n) { return d.name < n; });
    if (it == devices_.end() || it->name != name) {
      it = devices_.insert(it, Device{std::string(name), 0});
    }
    return it->entries;
  }

  ProcFile file_;
  std::string buf_;
  std::vector<std::string_view> fields_;
  std::vector<Device> devices_;
};

}  // namespace

Result<CollectorPtr> makeArpCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<ArpCollector>(paths));
}

}  // namespace vigil::collectors::node
