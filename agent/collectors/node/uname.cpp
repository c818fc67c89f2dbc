// node_uname_info from uname(2); Grafana's Node Exporter Full dashboard keys its variables on
// the nodename label.
#include <sys/utsname.h>

#include <cerrno>
#include <cstring>

#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class UnameCollector final : public Collector {
 public:
  Status collect(const CollectContext&, MetricBatch& out) override {
    struct utsname u {};
    if (::uname(&u) != 0) {
      return unavailable(std::string("uname: ") + std::strerror(errno));
    }
    auto& f = out.family("node_uname_info",
                         "Labeled system information as provided by the uname system call.",
                         MetricType::kGauge);
    MetricBatch::add(f,
                     {{"domainname", u.domainname},
                      {"machine", u.machine},
                      {"nodename", u.nodename},
                      {"release", u.release},
                      {"sysname", u.sysname},
                      {"version", u.version}},
                     1);
    return Status::ok();
  }
};

}  // namespace

Result<CollectorPtr> makeUnameCollector(const CollectorSettings&, const HostPaths&) {
  return CollectorPtr(std::make_unique<UnameCollector>());
}

}  // namespace vigil::collectors::node
