// node_sockstat_* from /proc/net/sockstat and sockstat6.
#include <unistd.h>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class SockstatCollector final : public Collector {
 public:
  explicit SockstatCollector(const HostPaths& paths)
      : v4_(joinPath(paths.procfs, "net/sockstat")),
        v6_(joinPath(paths.procfs, "net/sockstat6")),
        page_size_(static_cast<double>(sysconf(_SC_PAGESIZE))) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(v4_.read(buf_));
    parse(buf_, out);
    if (v6_.read(buf_).isOk()) {  // absent without IPv6
      parse(buf_, out);
    }
    return Status::ok();
  }

 private:
  // "TCP: inuse 2 orphan 0 tw 1 alloc 2 mem 433": key/value pairs after the protocol.
  void parse(std::string_view text, MetricBatch& out) {
    forEachLine(text, [&](std::string_view line) {
      splitFields(line, fields_);
      if (fields_.size() < 3 || fields_[0].back() != ':') {
        return;
      }
      const std::string proto(fields_[0].substr(0, fields_[0].size() - 1));
      for (std::size_t i = 1; i + 1 < fields_.size(); i += 2) {
        auto v = parseDouble(fields_[i + 1]);
        if (!v) {
          continue;
        }
        const std::string key(fields_[i]);
        if (proto == "sockets" && key == "used") {
          out.addSingle("node_sockstat_sockets_used", "Number of IPv4 sockets in use.",
                        MetricType::kGauge, *v);
          continue;
        }
        add(out, proto, key, *v);
        if (key == "mem") {
          add(out, proto, "mem_bytes", *v * page_size_);  // the kernel counts pages
        }
      }
    });
  }

  static void add(MetricBatch& out, const std::string& proto, const std::string& key, double v) {
    out.addSingle("node_sockstat_" + proto + "_" + key,
                  "Number of " + proto + " sockets in state " + key + ".", MetricType::kGauge, v);
  }

  ProcFile v4_;
  ProcFile v6_;
  double page_size_;
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeSockstatCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<SockstatCollector>(paths));
}

}  // namespace vigil::collectors::node
