// node_nvme_info{device,firmware_revision,model,serial,state} from /sys/class/nvme: which NVMe
// controllers a node has and whether each is live (a controller that resets or goes dead
// shows here before its disks fail).
#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class NvmeCollector final : public Collector {
 public:
  explicit NvmeCollector(const HostPaths& paths) : dir_(joinPath(paths.sysfs, "class/nvme")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    if (listing_.due()) {
      relist();
    }
    for (Controller& c : controllers_) {
      if (!c.state->tryRead(buf_)) {
        continue;  // gone since the last listing
      }
      const auto first = buf_.find_first_not_of(" \t\n");
      const std::string_view state =
          first == std::string::npos
              ? std::string_view()
              : std::string_view(buf_).substr(first, buf_.find_last_not_of(" \t\n") - first + 1);
      MetricBatch::add(out.family("node_nvme_info",
                                  "Non-numeric data from /sys/class/nvme/<device>, value is "
                                  "always 1.",
                                  MetricType::kGauge),
                       {{"device", c.device},
                        {"firmware_revision", c.firmware},
                        {"model", c.model},
                        {"serial", c.serial},
                        {"state", state}},
                       1);
    }
    return Status::ok();
  }

 private:
  struct Controller {
    std::string device;
    std::string firmware;
    std::string model;
    std::string serial;
    std::unique_ptr<ProcFile> state;
  };

  void relist() {
    controllers_.clear();
    for (const std::string& name : listDirectory(dir_)) {
      if (name.rfind("nvme", 0) != 0) {
        continue;
      }
      const std::string path = dir_ + "/" + name;
      Controller c;
      c.device = name;
      c.firmware = readAttribute(path + "/firmware_rev").value_or("");
      c.model = readAttribute(path + "/model").value_or("");
      c.serial = readAttribute(path + "/serial").value_or("");
      c.state = std::make_unique<ProcFile>(path + "/state");
      controllers_.push_back(std::move(c));
    }
  }

  std::string dir_;
  std::vector<Controller> controllers_;
  // Controllers appear with hotplug: listed again now and then; their state is read every cycle.
  PeriodicListing listing_;
  std::string buf_;
};

}  // namespace

Result<CollectorPtr> makeNvmeCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<NvmeCollector>(paths));
}

}  // namespace vigil::collectors::node
