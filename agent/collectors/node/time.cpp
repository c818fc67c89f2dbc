// node_time_seconds, node_time_zone_offset_seconds and the clocksource info series.
#include <algorithm>
#include <ctime>
#include <filesystem>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class TimeCollector final : public Collector {
 public:
  explicit TimeCollector(const HostPaths& paths)
      : clocksource_dir_(joinPath(paths.sysfs, "devices/system/clocksource")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    struct timespec ts {};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    out.addSingle("node_time_seconds", "System time in seconds since epoch (1970).",
                  MetricType::kGauge,
                  static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9);
    struct tm local {};
    ::localtime_r(&ts.tv_sec, &local);
    auto& zone = out.family("node_time_zone_offset_seconds", "System time zone offset in seconds.",
                            MetricType::kGauge);
    MetricBatch::add(zone, {{"time_zone", local.tm_zone != nullptr ? local.tm_zone : "UTC"}},
                     static_cast<double>(local.tm_gmtoff));
    collectClocksources(out);
    return Status::ok();
  }

 private:
  struct Clocksource {
    std::string device;
    // Both change only when a clocksource is registered or the kernel gives one up (an
    // unstable TSC).
    std::unique_ptr<SettingFile> available;
    std::unique_ptr<SettingFile> current;
  };

  // The clocksource devices are fixed at boot: list them once, keep their files open.
  void discover() {
    std::error_code ec;
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(clocksource_dir_, ec)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      if (name.rfind("clocksource", 0) != 0) {
        continue;
      }
      const std::string dir = clocksource_dir_ + "/" + name;
      sources_.push_back({name.substr(11),
                          std::make_unique<SettingFile>(dir + "/available_clocksource"),
                          std::make_unique<SettingFile>(dir + "/current_clocksource")});
    }
    discovered_ = true;
  }

  void collectClocksources(MetricBatch& out) {
    if (!discovered_) {
      discover();
    }
    for (const Clocksource& cs : sources_) {
      const std::string& device = cs.device;
      std::string& text = text_;
      if (cs.available->tryRead(text)) {
        auto& f = out.family("node_time_clocksource_available_info",
                             "Available clocksources read from '/sys/devices/system/clocksource'.",
                             MetricType::kGauge);
        splitFields(std::string_view(text).substr(0, text.find('\n')), fields_);
        for (const std::string_view source : fields_) {
          MetricBatch::add(f, {{"clocksource", source}, {"device", device}}, 1);
        }
      }
      if (cs.current->tryRead(text)) {
        const std::string_view source = std::string_view(text).substr(0, text.find('\n'));
        if (!source.empty()) {
          auto& f = out.family("node_time_clocksource_current_info",
                               "Current clocksource read from '/sys/devices/system/clocksource'.",
                               MetricType::kGauge);
          MetricBatch::add(f, {{"clocksource", source}, {"device", device}}, 1);
        }
      }
    }
  }

  std::string clocksource_dir_;
  bool discovered_ = false;
  std::vector<Clocksource> sources_;
  std::string text_;
  std::vector<std::string_view> fields_;  // kept: its room is made once
};

}  // namespace

Result<CollectorPtr> makeTimeCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<TimeCollector>(paths));
}

}  // namespace vigil::collectors::node
