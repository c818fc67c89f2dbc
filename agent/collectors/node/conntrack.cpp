// node_nf_conntrack_* from /proc/net/stat/nf_conntrack and /proc/sys/net/netfilter. Hosts
// without conntrack have neither: the collector then reports nothing and still succeeds.
#include <array>
#include <optional>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

// A column of /proc/net/stat/nf_conntrack and the metric it is summed into (named in full
// here, so that no name is put together on every cycle).
struct ConntrackStatField {
  const char* column;
  const char* metric;
  const char* help;
};
constexpr std::array<ConntrackStatField, 8> kStatFields{{
    {"found", "node_nf_conntrack_stat_found", "Number of searched entries which were successful."},
    {"invalid", "node_nf_conntrack_stat_invalid",
     "Number of packets seen which can not be tracked."},
    {"ignore", "node_nf_conntrack_stat_ignore",
     "Number of packets seen which are already connected to a conntrack entry."},
    {"insert", "node_nf_conntrack_stat_insert", "Number of entries inserted into the list."},
    {"insert_failed", "node_nf_conntrack_stat_insert_failed",
     "Number of entries for which list insertion was attempted but failed."},
    {"drop", "node_nf_conntrack_stat_drop", "Number of packets dropped due to conntrack failure."},
    {"early_drop", "node_nf_conntrack_stat_early_drop",
     "Number of dropped conntrack entries to make room for new ones, if maximum table size was "
     "reached."},
    {"search_restart", "node_nf_conntrack_stat_search_restart",
     "Number of conntrack table lookups which had to be restarted due to hashtable resizes."},
}};

class ConntrackCollector final : public Collector {
 public:
  explicit ConntrackCollector(const HostPaths& paths)
      : count_(joinPath(paths.procfs, "sys/net/netfilter/nf_conntrack_count")),
        max_(joinPath(paths.procfs, "sys/net/netfilter/nf_conntrack_max")),
        stat_(joinPath(paths.procfs, "net/stat/nf_conntrack")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    // The statistics' first column, "entries", is the counter nf_conntrack_count reads (the
    // kernel prints it on every CPU's line): taken from there, a cycle reads one file fewer
    // (a sysctl read costs about as much as the rest of the collector), and the sysctl only
    // where the statistics cannot be read.
    std::optional<Stats> stats;
    if (stat_.tryRead(buf_)) {
      stats = parseStats(buf_);
    }
    std::optional<double> entries = stats ? stats->entries : std::nullopt;
    if (!entries && count_.tryRead(buf_)) {
      entries = parseDouble(trim(buf_));
    }
    if (entries) {
      out.addSingle("node_nf_conntrack_entries",
                    "Number of currently allocated flow entries for connection tracking.",
                    MetricType::kGauge, *entries);
    }
    if (max_.tryRead(buf_)) {  // a sysctl setting
      if (auto v = parseDouble(trim(buf_))) {
        out.addSingle("node_nf_conntrack_entries_limit",
                      "Maximum size of connection tracking table.", MetricType::kGauge, *v);
      }
    }
    if (stats) {
      for (std::size_t f = 0; f < kStatFields.size(); ++f) {
        if (stats->columns[f] >= 0) {
          out.addSingle(kStatFields[f].metric, kStatFields[f].help, MetricType::kGauge,
                        stats->sums[f]);
        }
      }
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

  struct Stats {
    std::array<double, kStatFields.size()> sums{};
    std::array<int, kStatFields.size()> columns{};  // -1: not in this kernel's header
    std::optional<double> entries;                  // from the first CPU's line
  };

  // A header of column names, then one line of hex counters per CPU, summed. Nothing without
  // a header.
  std::optional<Stats> parseStats(std::string_view text) {
    Stats stats;
    stats.columns.fill(-1);
    int entries_column = -1;
    bool first = true;
    const auto at = [this](int column) -> std::optional<unsigned long long> {
      if (column < 0 || static_cast<std::size_t>(column) >= fields_.size()) {
        return std::nullopt;
      }
      return parseHex(fields_[static_cast<std::size_t>(column)]);
    };
    forEachLine(text, [&](std::string_view line) {
      splitFields(line, fields_);
      if (first) {
        first = false;
        for (std::size_t c = 0; c < fields_.size(); ++c) {
          if (fields_[c] == "entries") {
            entries_column = static_cast<int>(c);
          }
          for (std::size_t f = 0; f < kStatFields.size(); ++f) {
            if (fields_[c] == kStatFields[f].column) {
              stats.columns[f] = static_cast<int>(c);
            }
          }
        }
        return;
      }
      if (!stats.entries) {
        if (auto v = at(entries_column)) {
          stats.entries = static_cast<double>(*v);
        }
      }
      for (std::size_t f = 0; f < kStatFields.size(); ++f) {
        stats.sums[f] += static_cast<double>(at(stats.columns[f]).value_or(0));
      }
    });
    if (first) {
      return std::nullopt;
    }
    return stats;
  }

  ProcFile count_;  // read only where stat_ cannot be
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
