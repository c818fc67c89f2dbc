// node_dmi_info from /sys/class/dmi/id: the machine's vendor, model and firmware, as labels
// (for dashboards that show what a node is, and for finding the nodes of one model or BIOS).
// Serial numbers and the UUID are root's to read: without them the labels are left out, as
// node_exporter leaves them out.
#include <array>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

struct DmiField {
  const char* file;
  const char* label;
};
// node_exporter 1.5's labels, in its (alphabetical) order.
constexpr std::array<DmiField, 20> kDmiFields{{
    {"bios_date", "bios_date"},
    {"bios_release", "bios_release"},
    {"bios_vendor", "bios_vendor"},
    {"bios_version", "bios_version"},
    {"board_asset_tag", "board_asset_tag"},
    {"board_name", "board_name"},
    {"board_serial", "board_serial"},
    {"board_vendor", "board_vendor"},
    {"board_version", "board_version"},
    {"chassis_asset_tag", "chassis_asset_tag"},
    {"chassis_serial", "chassis_serial"},
    {"chassis_vendor", "chassis_vendor"},
    {"chassis_version", "chassis_version"},
    {"product_family", "product_family"},
    {"product_name", "product_name"},
    {"product_serial", "product_serial"},
    {"product_sku", "product_sku"},
    {"product_uuid", "product_uuid"},
    {"product_version", "product_version"},
    {"sys_vendor", "system_vendor"},
}};

class DmiCollector final : public Collector {
 public:
  explicit DmiCollector(const HostPaths& paths) : dir_(joinPath(paths.sysfs, "class/dmi/id")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    // The firmware's tables do not change while the machine runs: read once.
    if (!read_) {
      for (const DmiField& f : kDmiFields) {
        if (auto value = readAttribute(dir_ + "/" + f.file)) {
          labels_.push_back(Label{f.label, std::move(*value)});
        }
      }
      read_ = true;
    }
    if (!labels_.empty()) {
      MetricBatch::addCopyOf(
          out.family("node_dmi_info",
                     "A metric with a constant '1' value labeled by bios_date, bios_release, "
                     "bios_vendor, bios_version, board_asset_tag, board_name, board_serial, "
                     "board_vendor, board_version, chassis_asset_tag, chassis_serial, "
                     "chassis_vendor, chassis_version, product_family, product_name, "
                     "product_serial, product_sku, product_uuid, product_version, system_vendor "
                     "if provided by DMI.",
                     MetricType::kGauge),
          labels_, 1);
    }
    return Status::ok();
  }

 private:
  std::string dir_;
  bool read_ = false;
  LabelSet labels_;  // sorted by name, as kDmiFields is
};

}  // namespace

Result<CollectorPtr> makeDmiCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<DmiCollector>(paths));
}

}  // namespace vigil::collectors::node
