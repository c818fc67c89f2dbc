#pragma once
// The workload the rule and query benchmarks share: 20,000 series of a 100-node fleet (CPU,
// filesystems, network, memory, HTTP requests), 40 samples each at 15 s, and ten typical alert
// expressions with a threshold to fill in.
#include <algorithm>
#include <string>
#include <vector>

#include "vigil/metric.h"
#include "vigil/store.h"

namespace vigil::bench {

inline LabelSet sorted(LabelSet ls) {
  std::sort(ls.begin(), ls.end(), [](const Label& a, const Label& b) { return a.name < b.name; });
  return ls;
}

// A series of the bench: 40 samples, 15 s apart, from `base` growing by `slope`.
struct SeriesSpec {
  LabelSet labels;  // sorted, with __name__
  double base;
  double slope;
};
constexpr int kSamplesPerSeries = 40;
constexpr int64_t kScrapeMs = 15000;

/// node_cpu_seconds_total of `cpus` CPUs of one instance, each of node_exporter's 8 modes.
inline void addCpuSeries(std::vector<SeriesSpec>& out, const std::string& instance, int cpus) {
  for (int cpu = 0; cpu < cpus; ++cpu) {
    for (const char* mode :
         {"idle", "user", "system", "iowait", "irq", "softirq", "nice", "steal"}) {
      out.push_back({sorted({{"__name__", "node_cpu_seconds_total"},
                             {"instance", instance},
                             {"cpu", std::to_string(cpu)},
                             {"mode", mode}}),
                     1000.0 * cpu, std::string(mode) == "idle" ? 12.0 : 1.0});
    }
  }
}

inline std::vector<SeriesSpec> benchSeries() {
  std::vector<SeriesSpec> out;
  auto add = [&](LabelSet labels, double base, double slope) {
    out.push_back({sorted(std::move(labels)), base, slope});
  };
  for (int inst = 0; inst < 100; ++inst) {
    const std::string instance = "node-" + std::to_string(inst) + ":9100";
    addCpuSeries(out, instance, 8);
    for (int fs = 0; fs < 10; ++fs) {
      const std::string mp = "/mnt/" + std::to_string(fs);
      add({{"__name__", "node_filesystem_avail_bytes"},
           {"instance", instance},
           {"mountpoint", mp},
           {"fstype", "ext4"}},
          5e10, -1e6 * fs);
      add({{"__name__", "node_filesystem_size_bytes"},
           {"instance", instance},
           {"mountpoint", mp},
           {"fstype", "ext4"}},
          1e11, 0);
      add({{"__name__", "node_filesystem_readonly"},
           {"instance", instance},
           {"mountpoint", mp},
           {"fstype", "ext4"}},
          0, 0);
    }
    for (int dev = 0; dev < 5; ++dev) {
      for (const char* m :
           {"node_network_receive_bytes_total", "node_network_transmit_bytes_total",
            "node_network_receive_errs_total", "node_network_transmit_errs_total",
            "node_network_receive_packets_total", "node_network_transmit_packets_total",
            "node_network_receive_drop_total", "node_network_transmit_drop_total",
            "node_network_up", "node_network_mtu_bytes"}) {
        add({{"__name__", m}, {"instance", instance}, {"device", "eth" + std::to_string(dev)}}, 1e6,
            1e4);
      }
    }
    for (int m = 0; m < 20; ++m) {
      add({{"__name__", m == 0   ? "node_memory_MemAvailable_bytes"
                        : m == 1 ? "node_memory_MemTotal_bytes"
                                 : "node_memory_field" + std::to_string(m) + "_bytes"},
           {"instance", instance}},
          8e9 - m, 1e5);
    }
    for (const char* code : {"200", "201", "204", "301", "400", "404", "429", "500", "503"}) {
      for (int path = 0; path < 4; ++path) {
        add({{"__name__", "http_requests_total"},
             {"instance", instance},
             {"code", code},
             {"path", "/api/" + std::to_string(path)}},
            0, code[0] == '5' ? 1 : 100);
      }
    }
  }
  return out;
}

inline void loadSeries(Store& store, const std::vector<SeriesSpec>& specs, int64_t start_ms = 0,
                       int samples = kSamplesPerSeries) {
  for (const auto& spec : specs) {
    for (int i = 0; i < samples; ++i) {
      (void)store.append(spec.labels, start_ms + i * kScrapeMs, spec.base + spec.slope * i);
    }
  }
}

struct RuleTemplate {
  std::string expr;             // TH stands for the threshold
  std::string quiet_threshold;  // one at which the rule fires for none of the bench's series
};

inline std::vector<RuleTemplate> alertTemplates() {
  return {
      {"100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))) > TH",
       "1000"},
      {"node_filesystem_avail_bytes / node_filesystem_size_bytes * 100 < TH and "
       "node_filesystem_readonly == 0",
       "0"},
      {"predict_linear(node_filesystem_avail_bytes{fstype!=\"\"}[5m], 4 * 3600) < TH", "0"},
      {"sum by (instance) (rate(http_requests_total{code=~\"5..\"}[5m])) / sum by (instance) "
       "(rate(http_requests_total[5m])) > TH / 1000",
       "1000"},
      {"(1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) * 100 > TH", "100"},
      {"rate(node_network_receive_errs_total[2m]) / rate(node_network_receive_packets_total[2m]) "
       "> TH / 100",
       "1000"},
      {"increase(node_network_receive_drop_total[5m]) > TH", "1e9"},
      {"max_over_time(node_network_up[5m]) < TH / 100", "1"},
      {"sum by (instance, code) (rate(http_requests_total[5m])) > TH * 10", "1e6"},
      {"avg_over_time(node_memory_MemAvailable_bytes[5m]) < TH * 1e7", "1"},
  };
}

/// A vigil configuration section turning every collector off, for benchmarks that measure
/// something else (queries, alert ingestion) without collection in the background.
inline std::string collectorsDisabledYaml() {
  std::string out = "collectors:\n";
  for (const char* name :
       {"cpu",    "meminfo",  "loadavg", "stat",     "vmstat",    "filefd",    "pressure",
        "netdev", "netclass", "netstat", "sockstat", "conntrack", "diskstats", "filesystem",
        "uname",  "time",     "os",      "timex",    "cgroup",    "process"}) {
    out += std::string("  ") + name + ": {enabled: false}\n";
  }
  return out;
}

/// The web section of a benchmarked vigil: on loopback without tokens, and without a request
/// budget per client (a benchmark measures vigil, not its rate limit).
inline std::string unlimitedLoopbackWebYaml() {
  return "web:\n  authorization: {disabled_on_loopback: true}\n"
         "  limits: {requests_per_second_per_client: 0}\n";
}

/// `expr` with every TH replaced by `threshold`.
inline std::string withThreshold(std::string expr, const std::string& threshold) {
  for (auto pos = expr.find("TH"); pos != std::string::npos; pos = expr.find("TH")) {
    expr.replace(pos, 2, threshold);
  }
  return expr;
}

}  // namespace vigil::bench
