// node_network_* device properties from /sys/class/net/<iface>, as node_exporter 1.5 exports
// them: numeric attributes as gauges (counters for the *_changes_total ones), text attributes
// in node_network_info. Attributes a device does not support (reads fail) are left out.
#include <algorithm>
#include <filesystem>
#include <map>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

struct Property {
  const char* file;
  const char* name;  // node_network_<name>
  MetricType type;
  bool hex = false;
};
constexpr Property kProperties[] = {
    {"addr_assign_type", "address_assign_type", MetricType::kGauge},
    {"carrier", "carrier", MetricType::kGauge},
    {"carrier_changes", "carrier_changes_total", MetricType::kCounter},
    {"carrier_down_count", "carrier_down_changes_total", MetricType::kCounter},
    {"carrier_up_count", "carrier_up_changes_total", MetricType::kCounter},
    {"dev_id", "device_id", MetricType::kGauge, true},
    {"dormant", "dormant", MetricType::kGauge},
    {"flags", "flags", MetricType::kGauge, true},
    {"ifindex", "iface_id", MetricType::kGauge},
    {"iflink", "iface_link", MetricType::kGauge},
    {"link_mode", "iface_link_mode", MetricType::kGauge},
    {"mtu", "mtu_bytes", MetricType::kGauge},
    {"name_assign_type", "name_assign_type", MetricType::kGauge},
    {"netdev_group", "net_dev_group", MetricType::kGauge},
    {"type", "protocol_type", MetricType::kGauge},
    {"speed", "speed_bytes", MetricType::kGauge},
    {"tx_queue_len", "transmit_queue_length", MetricType::kGauge},
};

class NetclassCollector final : public Collector {
 public:
  explicit NetclassCollector(const HostPaths& paths) : dir_(joinPath(paths.sysfs, "class/net")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    std::error_code ec;
    std::vector<std::string> devices;
    for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
      devices.push_back(entry.path().filename().string());
    }
    if (ec) {
      return notFound(dir_ + ": " + ec.message());
    }
    std::sort(devices.begin(), devices.end());
    // Devices that went away: forget their open files.
    for (auto it = files_.begin(); it != files_.end();) {
      it = std::binary_search(devices.begin(), devices.end(), it->first) ? std::next(it)
                                                                         : files_.erase(it);
    }
    for (const std::string& device : devices) {
      const std::string dir = dir_ + "/" + device;
      auto& open_files = files_[device];
      // Attribute files stay open between cycles and are re-read with pread.
      auto readAttribute = [&](const std::string&, const char* file, bool& ok) {
        auto [it, inserted] = open_files.try_emplace(file, nullptr);
        if (inserted) {
          it->second = std::make_unique<ProcFile>(dir + "/" + file);
        }
        std::string& text = scratch_;
        ok = it->second->read(text).isOk();
        while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
          text.pop_back();
        }
        return text;
      };
      bool ok = false;
      const std::string operstate = readAttribute(dir, "operstate", ok);  // a copy
      MetricBatch::add(
          out.family("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.",
                     MetricType::kGauge),
          {{"device", device}}, operstate == "up" ? 1 : 0);
      LabelSet info{{"device", device}, {"operstate", operstate}};
      for (const char* attr : {"address", "broadcast", "duplex", "ifalias"}) {
        info.push_back({attr, readAttribute(dir, attr, ok)});
      }
      MetricBatch::add(
          out.family("node_network_info",
                     "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
                     MetricType::kGauge),
          std::move(info), 1);
      for (const Property& p : kProperties) {
        const std::string text = readAttribute(dir, p.file, ok);
        if (!ok || text.empty()) {
          continue;
        }
        double value = 0;
        if (p.hex) {
          value = static_cast<double>(std::strtoull(text.c_str(), nullptr, 16));
        } else {
          auto v = parseDouble(text);
          if (!v) {
            continue;
          }
          value = *v;
        }
        if (std::string_view(p.file) == "speed") {
          value *= 1000 * 1000 / 8;  // Mbit/s to bytes/s; an unknown speed (-1) stays negative
        }
        const std::string name = std::string("node_network_") + p.name;
        MetricBatch::add(
            out.family(name, std::string("Network device property: ") + p.name, p.type),
            {{"device", device}}, value);
      }
    }
    return Status::ok();
  }

 private:
  std::string dir_;
  std::map<std::string, std::map<std::string, std::unique_ptr<ProcFile>>> files_;
  std::string scratch_;
};

}  // namespace

Result<CollectorPtr> makeNetclassCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<NetclassCollector>(paths));
}

}  // namespace vigil::collectors::node
