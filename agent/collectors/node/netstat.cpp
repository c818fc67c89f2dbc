// node_netstat_* from /proc/net/netstat, /proc/net/snmp and /proc/net/snmp6, limited to
// node_exporter 1.5's default field set.
#include <re2/re2.h>

#include <unordered_map>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

constexpr const char* kDefaultFields =
    R"(^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$)";

class NetstatCollector final : public Collector {
 public:
  explicit NetstatCollector(const HostPaths& paths)
      : netstat_(joinPath(paths.procfs, "net/netstat")),
        snmp_(joinPath(paths.procfs, "net/snmp")),
        snmp6_(joinPath(paths.procfs, "net/snmp6")),
        fields_re_(kDefaultFields) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(netstat_.read(buf_));
    parsePairs(buf_, out);
    VIGIL_RETURN_IF_ERROR(snmp_.read(buf_));
    parsePairs(buf_, out);
    if (snmp6_.read(buf_).isOk()) {  // absent without IPv6
      parseSnmp6(buf_, out);
    }
    return Status::ok();
  }

 private:
  void add(MetricBatch& out, const std::string& proto, std::string_view field, double v) {
    const std::string key = proto + "_" + std::string(field);
    // The field set is fixed by the kernel: match each name against the regex once.
    auto [it, inserted] = wanted_.try_emplace(key, false);
    if (inserted) {
      it->second = RE2::FullMatch(key, fields_re_);
    }
    if (!it->second) {
      return;
    }
    out.addSingle("node_netstat_" + key, "Statistic " + proto + std::string(field) + ".",
                  MetricType::kUntyped, v);
  }

  // "TcpExt: SyncookiesSent SyncookiesRecv ..." followed by "TcpExt: 0 0 ...".
  void parsePairs(std::string_view text, MetricBatch& out) {
    std::vector<std::string_view> names;
    std::string names_line;
    bool header = true;
    forEachLine(text, [&](std::string_view line) {
      if (header) {
        names_line = std::string(line);
        splitFields(names_line, names);
      } else {
        splitFields(line, fields_);
        if (!names.empty() && !fields_.empty() && names[0] == fields_[0] &&
            names.size() == fields_.size() && names[0].back() == ':') {
          const std::string proto(names[0].substr(0, names[0].size() - 1));
          for (std::size_t i = 1; i < names.size(); ++i) {
            if (auto v = parseDouble(fields_[i])) {
              add(out, proto, names[i], *v);
            }
          }
        }
      }
      header = !header;
    });
  }

  // "Ip6InOctets 128": the protocol is everything up to and including the '6'.
  void parseSnmp6(std::string_view text, MetricBatch& out) {
    forEachLine(text, [&](std::string_view line) {
      splitFields(line, fields_);
      if (fields_.size() != 2) {
        return;
      }
      auto six = fields_[0].find('6');
      if (six == std::string_view::npos) {
        return;
      }
      if (auto v = parseDouble(fields_[1])) {
        add(out, std::string(fields_[0].substr(0, six + 1)), fields_[0].substr(six + 1), *v);
      }
    });
  }

  ProcFile netstat_;
  ProcFile snmp_;
  ProcFile snmp6_;
  RE2 fields_re_;
  std::unordered_map<std::string, bool> wanted_;
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeNetstatCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<NetstatCollector>(paths));
}

}  // namespace vigil::collectors::node
