// node_edac_* from /sys/devices/system/edac/mc: memory errors the ECC corrected and those it
// could not, per memory controller and per chip-select row ("unknown" for the errors the
// hardware could not place). A rising correctable count is a DIMM to replace before it fails.
#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class EdacCollector final : public Collector {
 public:
  explicit EdacCollector(const HostPaths& paths)
      : dir_(joinPath(paths.sysfs, "devices/system/edac/mc")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    if (listing_.due()) {
      relist();
    }
    for (Counter& c : counters_) {
      const auto value = readNumber(*c.file, buf_);
      if (!value) {
        continue;
      }
      auto& family = out.family(
          c.csrow.empty() ? (c.correctable ? "node_edac_correctable_errors_total"
                                           : "node_edac_uncorrectable_errors_total")
                          : (c.correctable ? "node_edac_csrow_correctable_errors_total"
                                           : "node_edac_csrow_uncorrectable_errors_total"),
          help(c), MetricType::kCounter);
      if (c.csrow.empty()) {
        MetricBatch::add(family, {{"controller", c.controller}}, *value);
      } else {
        MetricBatch::add(family, {{"controller", c.controller}, {"csrow", c.csrow}}, *value);
      }
    }
    return Status::ok();
  }

 private:
  struct Counter {
    std::string controller;
    std::string csrow;  // empty: the controller's total
    bool correctable = true;
    std::unique_ptr<ProcFile> file;
  };

  static const char* help(const Counter& c) {
    if (c.csrow.empty()) {
      return c.correctable ? "Total correctable memory errors."
                           : "Total uncorrectable memory errors.";
    }
    return c.correctable ? "Total correctable memory errors for this csrow."
                         : "Total uncorrectable memory errors for this csrow.";
  }

  static bool numbered(const std::string& name, std::string_view prefix) {
    return name.size() > prefix.size() && name.rfind(prefix, 0) == 0 &&
           parseUnsigned(std::string_view(name).substr(prefix.size())).has_value();
  }

  void relist() {
    counters_.clear();
    for (const std::string& mc : listDirectory(dir_)) {
      if (!numbered(mc, "mc")) {
        continue;
      }
      const std::string controller = mc.substr(2);
      const std::string path = dir_ + "/" + mc;
      auto add = [&](std::string csrow, bool correctable, const std::string& file) {
        counters_.push_back(
            Counter{controller, std::move(csrow), correctable, std::make_unique<ProcFile>(file)});
      };
      add("", true, path + "/ce_count");
      add("", false, path + "/ue_count");
      add("unknown", true, path + "/ce_noinfo_count");
      add("unknown", false, path + "/ue_noinfo_count");
      for (const std::string& row : listDirectory(path)) {
        if (numbered(row, "csrow")) {
          add(row.substr(5), true, path + "/" + row + "/ce_count");
          add(row.substr(5), false, path + "/" + row + "/ue_count");
        }
      }
    }
  }

  std::string dir_;
  std::vector<Counter> counters_;
  // Memory controllers do not come and go, but their driver may load after vigil starts.
  PeriodicListing listing_;
  std::string buf_;
};

}  // namespace

Result<CollectorPtr> makeEdacCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<EdacCollector>(paths));
}

}  // namespace vigil::collectors::node
