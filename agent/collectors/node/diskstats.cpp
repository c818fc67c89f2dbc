// node_disk_* from /proc/diskstats, with node_exporter 1.5's units, default device exclusion
// and node_disk_info from the udev database.
#include <re2/re2.h>

#include <array>
#include <chrono>
#include <map>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

// node_exporter 1.5's --collector.diskstats.device-exclude default: partitions, ram and loop.
constexpr const char* kDefaultExclude = R"(^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$)";
constexpr double kSectorBytes = 512;  // /proc/diskstats counts 512-byte sectors whatever the disk

struct DiskstatsField {
  const char* name;
  const char* help;
  MetricType type;
  double scale;
};
// In /proc/diskstats column order after major, minor and name. Discard fields came with kernel
// 4.18 and flush fields with 5.5; only the columns a kernel has are exported.
constexpr std::array<DiskstatsField, 17> kDiskstatsFields{{
    {"node_disk_reads_completed_total", "The total number of reads completed successfully.",
     MetricType::kCounter, 1},
    {"node_disk_reads_merged_total", "The total number of reads merged.", MetricType::kCounter, 1},
    {"node_disk_read_bytes_total", "The total number of bytes read successfully.",
     MetricType::kCounter, kSectorBytes},
    {"node_disk_read_time_seconds_total", "The total number of seconds spent by all reads.",
     MetricType::kCounter, 0.001},
    {"node_disk_writes_completed_total", "The total number of writes completed successfully.",
     MetricType::kCounter, 1},
    {"node_disk_writes_merged_total", "The number of writes merged.", MetricType::kCounter, 1},
    {"node_disk_written_bytes_total", "The total number of bytes written successfully.",
     MetricType::kCounter, kSectorBytes},
    {"node_disk_write_time_seconds_total",
     "This is the total number of seconds spent by all writes.", MetricType::kCounter, 0.001},
    {"node_disk_io_now", "The number of I/Os currently in progress.", MetricType::kGauge, 1},
    {"node_disk_io_time_seconds_total", "Total seconds spent doing I/Os.", MetricType::kCounter,
     0.001},
    {"node_disk_io_time_weighted_seconds_total", "The weighted # of seconds spent doing I/Os.",
     MetricType::kCounter, 0.001},
    {"node_disk_discards_completed_total", "The total number of discards completed successfully.",
     MetricType::kCounter, 1},
    {"node_disk_discards_merged_total", "The total number of discards merged.",
     MetricType::kCounter, 1},
    {"node_disk_discarded_sectors_total", "The total number of sectors discarded successfully.",
     MetricType::kCounter, 1},
    {"node_disk_discard_time_seconds_total",
     "This is the total number of seconds spent by all discards.", MetricType::kCounter, 0.001},
    {"node_disk_flush_requests_total", "The total number of flush requests completed successfully",
     MetricType::kCounter, 1},
    {"node_disk_flush_requests_time_seconds_total",
     "This is the total number of seconds spent by all flush requests.", MetricType::kCounter,
     0.001},
}};

class DiskstatsCollector final : public Collector {
 public:
  explicit DiskstatsCollector(const HostPaths& paths)
      : file_(joinPath(paths.procfs, "diskstats")),
        udev_dir_(joinPath(paths.rootfs, "run/udev/data")),
        exclude_(kDefaultExclude) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(file_.read(buf_));
    std::array<MetricFamily*, kDiskstatsFields.size()> families{};
    forEachLine(buf_, [&](std::string_view line) {
      splitFields(line, fields_);
      if (fields_.size() < 3 + 11) {
        return;
      }
      const std::string_view device = fields_[2];
      auto ex = excluded_.find(device);
      if (ex == excluded_.end()) {
        ex = excluded_.emplace(std::string(device), RE2::FullMatch(device, exclude_)).first;
      }
      if (ex->second) {
        return;
      }
      const std::size_t present = std::min(fields_.size() - 3, kDiskstatsFields.size());
      for (std::size_t i = 0; i < present; ++i) {
        auto v = parseDouble(fields_[i + 3]);
        if (!v) {
          continue;
        }
        if (families[i] == nullptr) {
          families[i] = &out.family(kDiskstatsFields[i].name, kDiskstatsFields[i].help,
                                    kDiskstatsFields[i].type);
        }
        MetricBatch::add(*families[i], {{"device", device}}, *v * kDiskstatsFields[i].scale);
      }
      addInfo(out, device, fields_[0], fields_[1]);
    });
    return Status::ok();
  }

 private:
  // Properties udev recorded for the device ("E:KEY=VALUE" lines); empty without udev.
  std::vector<std::pair<std::string, std::string>> udevProperties(std::string_view device_number) {
    std::vector<std::pair<std::string, std::string>> props;
    std::string text;
    if (!ProcFile(udev_dir_ + "/b" + std::string(device_number)).tryRead(text)) {
      return props;
    }
    forEachLine(text, [&](std::string_view line) {
      if (line.rfind("E:", 0) != 0) {
        return;
      }
      auto eq = line.find('=');
      if (eq != std::string_view::npos) {
        props.emplace_back(std::string(line.substr(2, eq - 2)), std::string(line.substr(eq + 1)));
      }
    });
    return props;
  }

  // Views into the cached udev properties and the line: nothing is copied, every cycle.
  void addInfo(MetricBatch& out, std::string_view device, std::string_view major,
               std::string_view minor) {
    // udev's record of a device rarely changes: read it once a minute, not every cycle.
    device_number_.assign(major).append(":").append(minor);
    auto found = udev_cache_.find(device_number_);
    if (found == udev_cache_.end()) {
      found = udev_cache_.emplace(device_number_, UdevInfo{}).first;
    }
    UdevInfo& cached = found->second;
    const auto now = std::chrono::steady_clock::now();
    if (cached.read_at == std::chrono::steady_clock::time_point{} ||
        now - cached.read_at > std::chrono::minutes(1)) {
      cached.props = udevProperties(device_number_);
      cached.read_at = now;
    }
    const auto& props = cached.props;
    auto get = [&](std::string_view key) -> std::string_view {
      for (const auto& [k, v] : props) {
        if (k == key) {
          return v;
        }
      }
      return {};
    };
    std::string_view serial = get("SCSI_IDENT_SERIAL");
    if (serial.empty()) {
      serial = get("ID_SERIAL_SHORT");
    }
    MetricBatch::add(
        out.family("node_disk_info", "Info of /sys/block/<block_device>.", MetricType::kGauge),
        {{"device", device},
         {"major", major},
         {"minor", minor},
         {"path", get("ID_PATH")},
         {"wwn", get("ID_WWN")},
         {"model", get("ID_MODEL")},
         {"serial", serial},
         {"revision", get("ID_REVISION")}},
        1);
    if (const std::string_view type = get("ID_FS_TYPE"); !type.empty()) {
      MetricBatch::add(out.family("node_disk_filesystem_info", "Info about disk filesystem.",
                                  MetricType::kGauge),
                       {{"device", device},
                        {"type", type},
                        {"usage", get("ID_FS_USAGE")},
                        {"uuid", get("ID_FS_UUID")},
                        {"version", get("ID_FS_VERSION")}},
                       1);
    }
    if (const std::string_view name = get("DM_NAME"); !name.empty()) {
      MetricBatch::add(out.family("node_disk_device_mapper_info", "Info about disk device mapper.",
                                  MetricType::kGauge),
                       {{"device", device},
                        {"name", name},
                        {"uuid", get("DM_UUID")},
                        {"vg_name", get("DM_VG_NAME")},
                        {"lv_name", get("DM_LV_NAME")},
                        {"lv_layer", get("DM_LV_LAYER")}},
                       1);
    }
  }

  struct UdevInfo {
    std::vector<std::pair<std::string, std::string>> props;
    std::chrono::steady_clock::time_point read_at;
  };

  ProcFile file_;
  std::string udev_dir_;
  RE2 exclude_;
  std::map<std::string, bool, std::less<>> excluded_;
  std::map<std::string, UdevInfo, std::less<>> udev_cache_;
  std::string device_number_;  // "MAJOR:MINOR", the key of udev_cache_
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeDiskstatsCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<DiskstatsCollector>(paths));
}

}  // namespace vigil::collectors::node
