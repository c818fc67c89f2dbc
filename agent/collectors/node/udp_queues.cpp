// node_udp_queues{ip,queue}: bytes queued in the kernel for UDP sockets, summed over the
// sockets of /proc/net/udp (v4) and /proc/net/udp6 (v6). A receive queue that stays up means
// a UDP server (DNS, StatsD, syslog) is not keeping up and will start dropping datagrams.
#include <array>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class UdpQueuesCollector final : public Collector {
 public:
  explicit UdpQueuesCollector(const HostPaths& paths)
      : files_{
            ProcFileAndIp{std::make_unique<ProcFile>(joinPath(paths.procfs, "net/udp")), "v4"},
            ProcFileAndIp{std::make_unique<ProcFile>(joinPath(paths.procfs, "net/udp6")), "v6"}} {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    for (auto& entry : files_) {
      // Named here, not bound: a lambda below uses them, and clang (before 16) does not let
      // lambdas capture structured bindings.
      ProcFile* file = entry.file.get();
      const char* ip = entry.ip;
      // No IPv6 (or no IPv4) in this kernel or namespace: that family's series are absent.
      if (!file->tryRead(buf_)) {
        continue;
      }
      unsigned long long tx = 0;
      unsigned long long rx = 0;
      std::size_t line_number = 0;
      Status status = Status::ok();
      forEachLine(buf_, [&](std::string_view line) {
        if (++line_number == 1 || !status.isOk()) {
          return;  // the header
        }
        splitFields(line, fields_);
        if (fields_.empty()) {
          return;
        }
        // sl local_address rem_address st tx_queue:rx_queue ...
        const std::string_view queues = fields_.size() > 4 ? fields_[4] : std::string_view();
        const auto colon = queues.find(':');
        const auto t =
            colon == std::string_view::npos ? std::nullopt : parseHex(queues.substr(0, colon));
        const auto r =
            colon == std::string_view::npos ? std::nullopt : parseHex(queues.substr(colon + 1));
        if (!t || !r) {
          status = invalidArgument(file->path() + ": line " + std::to_string(line_number) +
                                   ": expected tx_queue:rx_queue in hexadecimal as field 5");
          return;
        }
        tx += *t;
        rx += *r;
      });
      VIGIL_RETURN_IF_ERROR(status);
      auto& queues = out.family("node_udp_queues",
                                "Number of allocated memory in the kernel for UDP datagrams in "
                                "bytes.",
                                MetricType::kGauge);
      MetricBatch::add(queues, {{"ip", ip}, {"queue", "tx"}}, static_cast<double>(tx));
      MetricBatch::add(queues, {{"ip", ip}, {"queue", "rx"}}, static_cast<double>(rx));
    }
    return Status::ok();
  }

 private:
  struct ProcFileAndIp {
    std::unique_ptr<ProcFile> file;
    const char* ip;
  };
  std::array<ProcFileAndIp, 2> files_;
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeUdpQueuesCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<UdpQueuesCollector>(paths));
}

}  // namespace vigil::collectors::node
