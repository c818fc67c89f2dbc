// node_netstat_* from /proc/net/netstat, /proc/net/snmp and /proc/net/snmp6, limited to
// node_exporter 1.5's default field set.
#include <re2/re2.h>

#include <string_view>

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
    // The kernel's tables never change shape; files that keep changing (not procfs) must not
    // grow the caches without bound.
    if (fields_by_key_.size() > 4096 || headers_.size() > 256 || snmp6_by_place_.size() > 4096) {
      netstat_headers_.clear();
      snmp_headers_.clear();
      headers_.clear();
      snmp6_by_place_.clear();
      fields_by_key_.clear();
    }
    VIGIL_RETURN_IF_ERROR(netstat_.read(buf_));
    parsePairs(buf_, netstat_headers_, out);
    VIGIL_RETURN_IF_ERROR(snmp_.read(buf_));
    parsePairs(buf_, snmp_headers_, out);
    if (snmp6_.tryRead(buf_)) {  // absent without IPv6
      parseSnmp6(buf_, out);
    }
    return Status::ok();
  }

 private:
  // What to do with one field of the kernel's tables: its metric name and help when the
  // default field set has it, empty otherwise.
  struct Field {
    std::string name;
    std::string help;
  };
  struct Header {
    std::string text;                  // the whole line
    std::string proto;                 // "TcpExt:"
    std::vector<const Field*> fields;  // the names after it, in order
  };

  // The field `proto`_`field`, decided once: the kernel's set of fields is fixed.
  const Field& field(std::string_view proto, std::string_view name) {
    std::string key(proto);
    key += '_';
    key += name;
    auto it = fields_by_key_.find(key);
    if (it == fields_by_key_.end()) {
      Field f;
      if (RE2::FullMatch(key, fields_re_)) {
        f.name = "node_netstat_" + key;
        f.help = "Statistic " + std::string(proto) + std::string(name) + ".";
      }
      it = fields_by_key_.emplace(std::move(key), std::move(f)).first;
    }
    return it->second;
  }

  static void add(MetricBatch& out, const Field& f, double v) {
    if (!f.name.empty()) {
      out.addSingle(f.name, f.help, MetricType::kUntyped, v);
    }
  }

  // "TcpExt: SyncookiesSent SyncookiesRecv ..." followed by "TcpExt: 0 0 ...". A header line
  // is compared whole with the one at its place last cycle (the kernel's never change), and
  // looked up by its text only when it differs, rather than each of its fields by name.
  void parsePairs(std::string_view text, std::vector<const Header*>& by_place, MetricBatch& out) {
    const Header* header = nullptr;
    bool is_header = true;
    std::size_t place = 0;
    forEachLine(text, [&](std::string_view line) {
      if (is_header) {
        header = headerAt(by_place, place++, line);
      } else {
        splitFields(line, fields_);
        // The values line repeats the header's "Proto:" and has one value per name.
        if (!header->fields.empty() && fields_.size() == header->fields.size() + 1 &&
            fields_[0] == header->proto) {
          // Most of the kernel's fields are not in the default set: only those are parsed.
          for (std::size_t i = 0; i < header->fields.size(); ++i) {
            if (header->fields[i]->name.empty()) {
              continue;
            }
            if (auto v = parseDouble(fields_[i + 1])) {
              add(out, *header->fields[i], *v);
            }
          }
        }
      }
      is_header = !is_header;
    });
  }

  const Header* headerAt(std::vector<const Header*>& by_place, std::size_t place,
                         std::string_view line) {
    if (place < by_place.size() && by_place[place]->text == line) {
      return by_place[place];
    }
    auto it = headers_.find(line);
    if (it == headers_.end()) {
      std::vector<std::string_view> names;
      splitFields(line, names);
      Header h;
      h.text = std::string(line);
      if (!names.empty() && names[0].back() == ':') {
        h.proto = std::string(names[0]);
        const std::string_view proto = names[0].substr(0, names[0].size() - 1);
        for (std::size_t i = 1; i < names.size(); ++i) {
          h.fields.push_back(&field(proto, names[i]));
        }
      }
      it = headers_.emplace(std::string(line), std::move(h)).first;
    }
    if (place >= by_place.size()) {
      by_place.resize(place + 1);
    }
    by_place[place] = &it->second;
    return &it->second;
  }

  // "Ip6InOctets 128": the protocol is everything up to and including the '6'. The field of
  // each line is the one at its place last cycle when the name is the same (it always is).
  void parseSnmp6(std::string_view text, MetricBatch& out) {
    std::size_t place = 0;
    forEachLine(text, [&](std::string_view line) {
      splitFields(line, fields_);
      if (fields_.size() != 2) {
        return;
      }
      const Field* f = nullptr;
      if (place < snmp6_by_place_.size() && snmp6_by_place_[place].first == fields_[0]) {
        f = snmp6_by_place_[place].second;
      } else {
        auto six = fields_[0].find('6');
        if (six == std::string_view::npos) {
          return;
        }
        f = &field(fields_[0].substr(0, six + 1), fields_[0].substr(six + 1));
        if (place >= snmp6_by_place_.size()) {
          snmp6_by_place_.resize(place + 1);
        }
        snmp6_by_place_[place] = {std::string(fields_[0]), f};
      }
      ++place;
      if (f->name.empty()) {
        return;
      }
      if (auto v = parseDouble(fields_[1])) {
        add(out, *f, *v);
      }
    });
  }

  ProcFile netstat_;
  ProcFile snmp_;
  ProcFile snmp6_;
  RE2 fields_re_;
  // Node-based maps: the headers hold pointers to the fields.
  StringMap<Field> fields_by_key_;
  StringMap<Header> headers_;
  // Per file, the header of each pair of lines by place (pointers into headers_), and snmp6's
  // name and field of each line by place.
  std::vector<const Header*> netstat_headers_;
  std::vector<const Header*> snmp_headers_;
  std::vector<std::pair<std::string, const Field*>> snmp6_by_place_;
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeNetstatCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<NetstatCollector>(paths));
}

}  // namespace vigil::collectors::node
