// node_nf_conntrack_* from /proc/sys/net/netfilter and /proc/net/stat/nf_conntrack. Hosts
// without conntrack have neither: the collector then reports nothing and still succeeds.
#include <array>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

struct ConntrackStatField {
  const char* column;
  const char* help;
};
constexpr std::array<ConntrackStatField, 8> kStatFields{{
    {"found", "Number of searched entries which were successful."},
    {"invalid", "Number of packets seen which can not be tracked."},
    {"ignore", "Number of packets seen which are already connected to a conntrack entry."},
    {"insert", "Number of entries inserted into the list."},
    {"insert_failed", "Number of entries for which list insertion was attempted but failed."},
    {"drop", "Number of packets dropped due to conntrack failure."},
    {"early_drop",
     "Number of dropped conntrack entries to make room for new ones, if maximum table size was "
     "reached."},
    {"search_restart",
     "Number of conntrack table lookups which had to be restarted due to hashtable resizes."},
}};

class ConntrackCollector final : public Collector {
 public:
  explicit ConntrackCollector(const HostPaths& paths)
      : count_(joinPath(paths.procfs, "sys/net/netfilter/nf_conntrack_count")),
        max_(joinPath(paths.procfs, "sys/net/netfilter/nf_conntrack_max")),
        stat_(joinPath(paths.procfs, "net/stat/nf_conntrack")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    if (count_.read(buf_).isOk()) {
      if (auto v = parseDouble(trim(buf_))) {
        out.addSingle("node_nf_conntrack_entries",
                      "Number of currently allocated flow entries for connection tracking.",
                      MetricType::kGauge, *v);
      }
    }
    if (max_.read(buf_).isOk()) {  // a sysctl setting
      if (auto v = parseDouble(trim(buf_))) {
        out.addSingle("node_nf_conntrack_entries_limit",
                      "Maximum size of connection tracking table.", MetricType::kGauge, *v);
      }
    }
    if (stat_.read(buf_).isOk()) {
      collectStats(out);
    }
    return Status::ok();
  }

 private:
  static std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
      s.remove_suffix(1);
    }
    return s;
  }

  // A header of column names, then one line of hex counters per CPU, summed here.
  void collectStats(MetricBatch& out) {
    std::vector<std::string> header;
    std::array<double, kStatFields.size()> sums{};
    std::array<int, kStatFields.size()> columns{};
    columns.fill(-1);
    bool first = true;
    forEachLine(buf_, [&](std::string_view line) {
      splitFields(line, fields_);
      if (first) {
        first = false;
        for (std::size_t c = 0; c < fields_.size(); ++c) {
          for (std::size_t f = 0; f < kStatFields.size(); ++f) {
            if (fields_[c] == kStatFields[f].column) {
              columns[f] = static_cast<int>(c);
            }
          }
        }
        return;
      }
      for (std::size_t f = 0; f < kStatFields.size(); ++f) {
        if (columns[f] >= 0 && static_cast<std::size_t>(columns[f]) < fields_.size()) {
          sums[f] += static_cast<double>(std::strtoull(
              std::string(fields_[static_cast<std::size_t>(columns[f])]).c_str(), nullptr, 16));
        }
      }
    });
    for (std::size_t f = 0; f < kStatFields.size(); ++f) {
      if (columns[f] >= 0) {
        out.addSingle(std::string("node_nf_conntrack_stat_") + kStatFields[f].column,
                      kStatFields[f].help, MetricType::kGauge, sums[f]);
      }
    }
  }

  ProcFile count_;
  SettingFile max_;
  ProcFile stat_;
  std::string buf_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeConntrackCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<ConntrackCollector>(paths));
}

}  // namespace vigil::collectors::node
