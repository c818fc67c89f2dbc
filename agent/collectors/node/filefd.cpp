// node_filefd_allocated and node_filefd_maximum from /proc/sys/fs/file-nr.
#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class FilefdCollector final : public Collector {
 public:
  explicit FilefdCollector(const HostPaths& paths)
      : file_(joinPath(paths.procfs, "sys/fs/file-nr")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(file_.read(buf_));
    splitFields(std::string_view(buf_).substr(0, buf_.find('\n')), fields_);
    if (fields_.size() != 3) {
      return invalidArgument(file_.path() + ": expected 3 fields");
    }
    auto allocated = parseDouble(fields_[0]);
    auto maximum = parseDouble(fields_[2]);
    if (!allocated || !maximum) {
      return invalidArgument(file_.path() + ": fields are not numbers");
    }
    out.addSingle("node_filefd_allocated", "File descriptor statistics: allocated.",
                  MetricType::kGauge, *allocated);
    out.addSingle("node_filefd_maximum", "File descriptor statistics: maximum.", MetricType::kGauge,
                  *maximum);
    return Status::ok();
  }

 private:
  ProcFile file_;
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeFilefdCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<FilefdCollector>(paths));
}

}  // namespace vigil::collectors::node
