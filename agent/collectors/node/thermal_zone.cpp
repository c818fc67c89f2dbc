// node_thermal_zone_temp and node_cooling_device_{cur,max}_state from /sys/class/thermal: the
// kernel's thermal zones (ACPI, the CPU package) and the fans and throttles that cool them.
// A cooling device at its maximum state means the machine is throttling to stay cool.
#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class ThermalZoneCollector final : public Collector {
 public:
  explicit ThermalZoneCollector(const HostPaths& paths)
      : dir_(joinPath(paths.sysfs, "class/thermal")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    if (listing_.due()) {
      relist();
    }
    for (Entry& zone : zones_) {
      // A sensor that cannot answer now (some give EAGAIN or ENODATA): that zone is left out.
      if (auto millidegrees = readNumber(*zone.value, buf_)) {
        MetricBatch::add(
            out.family("node_thermal_zone_temp", "Zone temperature in Celsius", MetricType::kGauge),
            {{"type", zone.type}, {"zone", zone.number}}, *millidegrees / 1000.0);
      }
    }
    for (Entry& device : cooling_) {
      const auto current = readNumber(*device.value, buf_);
      const auto maximum = readNumber(*device.max_state, buf_);
      if (current) {
        MetricBatch::add(
            out.family("node_cooling_device_cur_state",
                       "Current throttle state of the cooling device", MetricType::kGauge),
            {{"name", device.number}, {"type", device.type}}, *current);
      }
      if (maximum) {
        MetricBatch::add(
            out.family("node_cooling_device_max_state",
                       "Maximum throttle state of the cooling device", MetricType::kGauge),
            {{"name", device.number}, {"type", device.type}}, *maximum);
      }
    }
    return Status::ok();
  }

 private:
  struct Entry {
    std::string number;  // of thermal_zoneN or cooling_deviceN
    std::string type;
    std::unique_ptr<ProcFile> value;      // temp, or cur_state
    std::unique_ptr<ProcFile> max_state;  // cooling devices only
  };

  void relist() {
    zones_.clear();
    cooling_.clear();
    for (const std::string& name : listDirectory(dir_)) {
      const bool zone = name.rfind("thermal_zone", 0) == 0;
      const bool cooling = name.rfind("cooling_device", 0) == 0;
      if (!zone && !cooling) {
        continue;
      }
      const std::string path = dir_ + "/" + name;
      auto type = readAttribute(path + "/type");
      if (!type) {
        continue;
      }
      Entry e;
      e.number = name.substr(zone ? 12 : 14);
      e.type = std::move(*type);
      e.value = std::make_unique<ProcFile>(path + (zone ? "/temp" : "/cur_state"));
      if (cooling) {
        e.max_state = std::make_unique<ProcFile>(path + "/max_state");
      }
      (zone ? zones_ : cooling_).push_back(std::move(e));
    }
  }

  std::string dir_;
  std::vector<Entry> zones_;
  std::vector<Entry> cooling_;
  // Zones and cooling devices appear with their drivers: listed again now and then.
  PeriodicListing listing_;
  std::string buf_;
};

}  // namespace

Result<CollectorPtr> makeThermalZoneCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<ThermalZoneCollector>(paths));
}

}  // namespace vigil::collectors::node
