// node_network_* device properties from /sys/class/net/<iface>, as node_exporter 1.5 exports
// them: numeric attributes as gauges (counters for the *_changes_total ones), text attributes
// in node_network_info. Attributes a device does not support (reads fail) are left out.
#include <dirent.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>
#include <string_view>

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

// node_network_info's labels besides device and operstate.
constexpr const char* kInfoAttributes[] = {"address", "broadcast", "duplex", "ifalias"};
constexpr std::size_t kFirstProperty = 1 + std::size(kInfoAttributes);  // after operstate
constexpr std::size_t kAttributes = kFirstProperty + std::size(kProperties);

class NetclassCollector final : public Collector {
 public:
  explicit NetclassCollector(const HostPaths& paths) : dir_(joinPath(paths.sysfs, "class/net")) {
    for (const Property& p : kProperties) {
      names_.push_back(std::string("node_network_") + p.name);
      helps_.push_back(std::string("Network device property: ") + p.name);
    }
  }
  ~NetclassCollector() override {
    if (dir_stream_ != nullptr) {
      ::closedir(dir_stream_);
    }
  }
  NetclassCollector(const NetclassCollector&) = delete;
  NetclassCollector& operator=(const NetclassCollector&) = delete;

  Status collect(const CollectContext&, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(listDevices());
    // Devices that went away: forget their open files.
    for (auto it = files_.begin(); it != files_.end();) {
      it = std::binary_search(devices_.begin(), devices_.end(), it->first) ? std::next(it)
                                                                           : files_.erase(it);
    }
    auto& up = out.family("node_network_up", "Value is 1 if operstate is 'up', 0 otherwise.",
                          MetricType::kGauge);
    auto& info = out.family("node_network_info",
                            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
                            MetricType::kGauge);
    for (const std::string& device : devices_) {
      auto& open_files = files_[device];
      // Attribute files stay open between cycles and are re-read with pread. The text is valid
      // until the next read. `slot` numbers the attributes: the info ones, then kProperties.
      auto readAttribute = [&](std::size_t slot, const char* file, bool& ok) -> std::string_view {
        auto& f = open_files[slot];
        if (f == nullptr) {
          f = std::make_unique<ProcFile>(dir_ + "/" + device + "/" + file);
        }
        ok = f->read(scratch_).isOk();
        std::string_view text = scratch_;
        while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
          text.remove_suffix(1);
        }
        return text;
      };
      bool ok = false;
      LabelSet info_labels{{"device", device},
                           {"operstate", std::string(readAttribute(0, "operstate", ok))}};
      MetricBatch::add(up, {{"device", device}}, info_labels[1].value == "up" ? 1 : 0);
      for (std::size_t i = 0; i < std::size(kInfoAttributes); ++i) {
        info_labels.push_back(
            {kInfoAttributes[i], std::string(readAttribute(1 + i, kInfoAttributes[i], ok))});
      }
      MetricBatch::add(info, std::move(info_labels), 1);
      for (std::size_t i = 0; i < std::size(kProperties); ++i) {
        const Property& p = kProperties[i];
        const std::string_view text = readAttribute(kFirstProperty + i, p.file, ok);
        if (!ok || text.empty()) {
          continue;
        }
        double value = 0;
        if (p.hex) {
          value = static_cast<double>(std::strtoull(std::string(text).c_str(), nullptr, 16));
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
        MetricBatch::add(out.family(names_[i], helps_[i], p.type), {{"device", device}}, value);
      }
    }
    return Status::ok();
  }

 private:
  // The directory stays open and is read again from its start each cycle (sorted names in
  // devices_): devices come and go, but opening it costs a path lookup every cycle.
  Status listDevices() {
    if (dir_stream_ == nullptr) {
      dir_stream_ = ::opendir(dir_.c_str());
      if (dir_stream_ == nullptr) {
        return notFound(dir_ + ": " + std::strerror(errno));
      }
    } else {
      ::rewinddir(dir_stream_);
    }
    devices_.clear();
    errno = 0;
    while (const dirent* entry = ::readdir(dir_stream_)) {
      const std::string_view name = entry->d_name;
      if (name != "." && name != "..") {
        devices_.emplace_back(name);
      }
    }
    if (errno != 0) {
      const int err = errno;
      ::closedir(dir_stream_);
      dir_stream_ = nullptr;
      return notFound(dir_ + ": " + std::strerror(err));
    }
    std::sort(devices_.begin(), devices_.end());
    return Status::ok();
  }

  std::string dir_;
  DIR* dir_stream_ = nullptr;
  std::vector<std::string> devices_;
  std::vector<std::string> names_;  // per property: node_network_<name>
  std::vector<std::string> helps_;
  // Per device, its attribute files by slot.
  std::map<std::string, std::array<std::unique_ptr<ProcFile>, kAttributes>> files_;
  std::string scratch_;
};

}  // namespace

Result<CollectorPtr> makeNetclassCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<NetclassCollector>(paths));
}

}  // namespace vigil::collectors::node
