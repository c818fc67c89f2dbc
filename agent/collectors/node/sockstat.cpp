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
    next_ = 0;
    VIGIL_RETURN_IF_ERROR(v4_.read(buf_));
    parse(buf_, out);
    if (v6_.tryRead(buf_)) {  // absent without IPv6
      parse(buf_, out);
    }
    return Status::ok();
  }

 private:
  // A value's metric, made the first time its protocol and key come at its place in the files
  // (which list the same ones in the same order every cycle) and kept.
  struct Series {
    std::string proto;  // as the file has it: "TCP", "UDP6", ...
    std::string key;    // "inuse", "mem", and "mem_bytes" for mem in bytes
    std::string name;
    std::string help;
  };

  // "TCP: inuse 2 orphan 0 tw 1 alloc 2 mem 433": key/value pairs after the protocol.
  void parse(std::string_view text, MetricBatch& out) {
    forEachLine(text, [&](std::string_view line) {
      splitFields(line, fields_);
      if (fields_.size() < 3 || fields_[0].back() != ':') {
        return;
      }
      const std::string_view proto = fields_[0].substr(0, fields_[0].size() - 1);
      for (std::size_t i = 1; i + 1 < fields_.size(); i += 2) {
        auto v = parseDouble(fields_[i + 1]);
        if (!v) {
          continue;
        }
        const std::string_view key = fields_[i];
        add(out, series(proto, key), *v);
        if (key == "mem") {
          add(out, series(proto, "mem_bytes"), *v * page_size_);  // the kernel counts pages
        }
      }
    });
  }

  const Series& series(std::string_view proto, std::string_view key) {
    if (next_ == series_.size()) {
      series_.emplace_back();
    }
    Series& s = series_[next_++];
    if (s.proto != proto || s.key != key) {
      s.proto.assign(proto);
      s.key.assign(key);
      if (proto == "sockets" && key == "used") {
        s.name = "node_sockstat_sockets_used";
        s.help = "Number of IPv4 sockets in use.";
      } else {
        s.name = "node_sockstat_" + s.proto + "_" + s.key;
        s.help = "Number of " + s.proto + " sockets in state " + s.key + ".";
      }
    }
    return s;
  }

  static void add(MetricBatch& out, const Series& s, double v) {
    out.addSingle(s.name, s.help, MetricType::kGauge, v);
  }

  ProcFile v4_;
  ProcFile v6_;
  double page_size_;
  std::string buf_;
  std::vector<std::string_view> fields_;
  std::vector<Series> series_;
  std::size_t next_ = 0;  // this cycle's place in series_
};

}  // namespace

Result<CollectorPtr> makeSockstatCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<SockstatCollector>(paths));
}

}  // namespace vigil::collectors::node
