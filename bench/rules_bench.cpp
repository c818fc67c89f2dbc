// Rule evaluation benchmark:
//
//   build/bench/rules_bench [--scenario steady|storm|node] [--sharing on|off] [CORPUS.yml...]
//
// 1,000 rules over 20,000 series, one evaluation cycle of every group, timed (median of 5), in
// three scenarios: a fleet's rule file of ten expressions with a hundred thresholds each
// (steady: a few alerts; storm: most series alerting) and one node's 1,000 distinct rules
// (node). Then the steady and node rules as promtool unit-test files through promtool and
// `vigil test rules`, per cycle; and for each corpus file given (by default the conformance
// corpora and the shipped node rules' tests), `vigil test rules` against `promtool test rules`
// on the same file, median of 5 runs each.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include "bench/sample_stats.h"
#include "bench/workload.h"
#include "vigil/rules/rule_eval.h"
#include "vigil/rules/rule_file.h"

using namespace vigil;
using namespace vigil::promql;
using Clock = std::chrono::steady_clock;

namespace {

using bench::benchSeries;
using bench::kSamplesPerSeries;
using bench::kScrapeMs;
using bench::loadSeries;
using bench::RuleTemplate;
using bench::SeriesSpec;

// The rule file: 1,000 rules in 10 groups, every fifth a recording rule. In the steady
// scenario one rule in 47 uses a threshold its series cross (a few incidents going on)
// and the others sit quiet, as on a healthy fleet; in the storm every threshold is low enough
// for most series to alert.
std::string rulesYaml(bool storm) {
  const std::vector<RuleTemplate> templates = bench::alertTemplates();
  std::string out = "groups:\n";
  int rule = 0;
  for (int g = 0; g < 10; ++g) {
    out += "  - name: group" + std::to_string(g) + "\n    rules:\n";
    for (int r = 0; r < 100; ++r, ++rule) {
      const auto& tmpl = templates[static_cast<std::size_t>(rule) % templates.size()];
      const bool fires = storm || rule % 47 == 0;
      const std::string expr = bench::withThreshold(
          tmpl.expr, fires ? std::to_string(1 + rule % 90) : tmpl.quiet_threshold);
      if (rule % 5 == 4) {
        out +=
            "      - record: bench:rule" + std::to_string(rule) + "\n        expr: '" +
            expr.substr(0, expr.find(" >") == std::string::npos ? expr.size() : expr.find(" >")) +
            "'\n";
      } else {
        out +=
            "      - alert: Bench" + std::to_string(rule) + "\n        expr: '" + expr +
            "'\n        for: 5m\n        labels:\n          severity: warning\n"
            "        annotations:\n          summary: '{{ $labels.instance }} at {{ $value }}'\n";
      }
    }
  }
  return out;
}

// The node scenario: what one vigil holds and evaluates on one node of the web application,
// 20,032 series and 1,000 rules that are all different, in the shapes real rule files have
// (node-mixin's node rules, cAdvisor container rules per namespace, and per-service rule files
// as SLO generators such as Sloth and Pyrra write them: every rule selecting its own service).
//   node:        16 CPUs x 8 modes, 20 filesystems, 10 network and 8 disk devices, memory
//   containers:  200 containers in 10 namespaces, 12 cAdvisor metrics each
//   services:    40 jobs, each with http_requests_total (5 routes x 6 codes), the request
//                duration histogram (5 routes x 12 buckets, _sum, _count), and 11 metrics of
//                its own with 30 shards each
constexpr int kNodeJobs = 40;
constexpr int kNodeAppMetrics = 11;
constexpr int kNodeNamespaces = 10;

std::vector<SeriesSpec> nodeSeries() {
  std::vector<SeriesSpec> out;
  auto add = [&](LabelSet labels, double base, double slope) {
    out.push_back({bench::sorted(std::move(labels)), base, slope});
  };
  const std::string instance = "node-1:9100";
  bench::addCpuSeries(out, instance, 16);
  for (int fs = 0; fs < 20; ++fs) {
    const LabelSet where{{"instance", instance},
                         {"mountpoint", "/mnt/" + std::to_string(fs)},
                         {"fstype", "ext4"},
                         {"device", "/dev/sd" + std::to_string(fs)}};
    for (const char* m :
         {"node_filesystem_avail_bytes", "node_filesystem_size_bytes", "node_filesystem_readonly",
          "node_filesystem_files", "node_filesystem_files_free"}) {
      LabelSet ls = where;
      ls.push_back({"__name__", m});
      const std::string_view name(m);
      add(std::move(ls),
          name == "node_filesystem_readonly"     ? 0
          : name == "node_filesystem_size_bytes" ? 1e11
                                                 : 5e10,
          name == "node_filesystem_avail_bytes" ? (fs == 13 ? -5e7 : -1e6 * fs) : 0);
    }
  }
  for (int dev = 0; dev < 10; ++dev) {
    for (const char* m :
         {"node_network_receive_bytes_total", "node_network_transmit_bytes_total",
          "node_network_receive_errs_total", "node_network_transmit_errs_total",
          "node_network_receive_packets_total", "node_network_transmit_packets_total",
          "node_network_receive_drop_total", "node_network_transmit_drop_total", "node_network_up",
          "node_network_mtu_bytes"}) {
      const bool errors = std::string_view(m).find("errs") != std::string_view::npos;
      add({{"__name__", m}, {"instance", instance}, {"device", "eth" + std::to_string(dev)}}, 1e6,
          errors ? (dev == 4 ? 500 : 0) : 1e4);
    }
  }
  for (int dev = 0; dev < 8; ++dev) {
    for (const char* m :
         {"node_disk_reads_completed_total", "node_disk_writes_completed_total",
          "node_disk_read_bytes_total", "node_disk_written_bytes_total",
          "node_disk_io_time_seconds_total", "node_disk_io_time_weighted_seconds_total",
          "node_disk_read_time_seconds_total", "node_disk_write_time_seconds_total"}) {
      add({{"__name__", m}, {"instance", instance}, {"device", "nvme" + std::to_string(dev)}}, 1e3,
          dev + 1);
    }
  }
  for (int m = 0; m < 40; ++m) {
    add({{"__name__", m == 0   ? "node_memory_MemAvailable_bytes"
                      : m == 1 ? "node_memory_MemTotal_bytes"
                               : "node_memory_field" + std::to_string(m) + "_bytes"},
         {"instance", instance}},
        m == 1 ? 16e9 : 1e8 * m, 1e5);
  }
  for (int c = 0; c < 200; ++c) {
    const LabelSet where{{"namespace", "ns" + std::to_string(c % kNodeNamespaces)},
                         {"pod", "pod-" + std::to_string(c / 2)},
                         {"container", "c" + std::to_string(c % 2)}};
    const std::pair<const char*, double> metrics[] = {
        {"container_cpu_usage_seconds_total", 0.5},
        {"container_cpu_cfs_throttled_seconds_total", 0.01 * (c % 7)},
        {"container_cpu_cfs_periods_total", 10},
        {"container_cpu_cfs_throttled_periods_total", c % 37 == 0 ? 5 : 0.1},
        {"container_memory_working_set_bytes", 1e4},
        {"container_memory_rss", 1e4},
        {"container_memory_usage_bytes", 1e4},
        {"container_fs_reads_bytes_total", 1e3},
        {"container_fs_writes_bytes_total", 1e3},
        {"container_spec_cpu_quota", 0},
        {"container_spec_memory_limit_bytes", 0},
        {"container_network_receive_bytes_total", 1e4}};
    for (const auto& [m, slope] : metrics) {
      LabelSet ls = where;
      ls.push_back({"__name__", m});
      const std::string_view name(m);
      add(std::move(ls),
          name == "container_spec_memory_limit_bytes" ? 1e9
          : name == "container_spec_cpu_quota"        ? 100000
                                                      : 1e8 + c * 1e6,
          slope);
    }
  }
  for (int j = 0; j < kNodeJobs; ++j) {
    const std::string job = "svc" + std::to_string(j);
    // Two services fail more than their error budget allows: a few incidents going on.
    const double error_slope = j % 20 == 3 ? 5 : 0.01;
    for (int route = 0; route < 5; ++route) {
      const std::string path = "/api/v1/r" + std::to_string(route);
      for (const char* code : {"200", "201", "304", "404", "500", "503"}) {
        add({{"__name__", "http_requests_total"}, {"job", job}, {"route", path}, {"code", code}}, 0,
            code[0] == '5' ? error_slope : 100);
      }
      const char* const les[] = {"0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                                 "0.5",   "1",    "2.5",   "5",    "10",  "+Inf"};
      // Most requests are fast; one service in ten is slow (its p95 over 0.5 s).
      const double fast[] = {0.2, 0.4, 0.6, 0.75, 0.85, 0.92, 0.96, 0.985, 0.995, 0.999, 1, 1};
      const double slow[] = {0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99, 1, 1};
      for (int b = 0; b < 12; ++b) {
        add({{"__name__", "http_request_duration_seconds_bucket"},
             {"job", job},
             {"route", path},
             {"le", les[b]}},
            0, 500 * (j % 10 == 7 ? slow[b] : fast[b]));
      }
      add({{"__name__", "http_request_duration_seconds_sum"}, {"job", job}, {"route", path}}, 0,
          12);
      add({{"__name__", "http_request_duration_seconds_count"}, {"job", job}, {"route", path}}, 0,
          125);
    }
    for (int k = 0; k < kNodeAppMetrics; ++k) {
      for (int shard = 0; shard < 30; ++shard) {
        add({{"__name__", job + "_metric" + std::to_string(k)},
             {"job", job},
             {"shard", std::to_string(shard)}},
            100 * shard, k % 2 == 0 ? 1.5 : 0);
      }
    }
  }
  return out;
}

// 1,000 rules, every expression different: 40 per-service groups of 20 rules (7 recording),
// 10 per-namespace container groups of 10, and 100 node rules in 5 groups.
std::string nodeRulesYaml() {
  std::string out = "groups:\n";
  auto rule = [&](const std::string& kind, const std::string& name, const std::string& expr) {
    out += "      - " + kind + ": " + name + "\n        expr: '" + expr + "'\n";
    if (kind == "alert") {
      out +=
          "        for: 5m\n        labels:\n          severity: warning\n"
          "        annotations:\n          summary: '{{ $labels.job }} at {{ $value }}'\n";
    }
  };
  auto group = [&](const std::string& name) { out += "  - name: " + name + "\n    rules:\n"; };
  for (int j = 0; j < kNodeJobs; ++j) {
    const std::string job = "svc" + std::to_string(j);
    const std::string sel = "job=\"" + job + "\"";
    group(job);
    for (const char* w : {"5m", "30m", "1h", "2h", "6h"}) {
      rule("record", job + ":errors_per_request:ratio_rate" + std::string(w),
           "sum(rate(http_requests_total{" + sel + ",code=~\"5..\"}[" + w +
               "])) / sum(rate(http_requests_total{" + sel + "}[" + w + "]))");
    }
    rule("record", job + ":request_duration_seconds:p95_5m",
         "histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{" + sel +
             "}[5m])))");
    rule("record", job + ":request_duration_seconds:p99_by_route_5m",
         "histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_seconds_bucket{" +
             sel + "}[5m])))");
    rule("alert", job + "ErrorBudgetBurnFast",
         job + ":errors_per_request:ratio_rate1h > (14.4 * 0.0005) and " + job +
             ":errors_per_request:ratio_rate5m > (14.4 * 0.0005)");
    rule("alert", job + "ErrorBudgetBurnSlow",
         job + ":errors_per_request:ratio_rate6h > (6 * 0.0005) and " + job +
             ":errors_per_request:ratio_rate30m > (6 * 0.0005)");
    rule("alert", job + "HighLatency", job + ":request_duration_seconds:p95_5m > 0.5");
    const std::string shapes[kNodeAppMetrics] = {
        "M > 2950",
        "rate(M[5m]) > 10",
        "avg_over_time(M[10m]) < 1",
        "deriv(M[10m]) > 100",
        "max by (job) (M) > 1e6",
        "absent(M{shard=\"0\"})",
        "increase(M[5m]) > 1e5",
        "changes(M[10m]) > 45",
        "quantile_over_time(0.9, M[5m]) > 1e6",
        "predict_linear(M[10m], 3600) < 0",
        "sum(M) / count(M) > 1e6",
    };
    // Rules on 8 of the service's 11 metrics, each service pairing them with other shapes.
    for (int k = 0; k < 8; ++k) {
      std::string expr = shapes[(k + j) % kNodeAppMetrics];
      const std::string metric = job + "_metric" + std::to_string(k);
      expr.replace(expr.find('M'), 1, metric);
      if (auto again = expr.find("(M)"); again != std::string::npos) {
        expr.replace(again + 1, 1, metric);
      }
      rule("alert", job + "Metric" + std::to_string(k), expr);
    }
    rule("alert", job + "Down", "absent(http_requests_total{" + sel + "})");
    rule("alert", job + "NoTraffic", "sum(rate(http_requests_total{" + sel + "}[5m])) == 0");
  }
  for (int n = 0; n < kNodeNamespaces; ++n) {
    const std::string sel = "namespace=\"ns" + std::to_string(n) + "\"";
    const std::string ns = "ns" + std::to_string(n);
    group("containers-" + ns);
    rule("record", ns + ":container_cpu_usage:rate5m",
         "sum by (pod, container) (rate(container_cpu_usage_seconds_total{" + sel + "}[5m]))");
    rule("record", ns + ":container_memory_working_set:sum",
         "sum by (pod) (container_memory_working_set_bytes{" + sel + "})");
    rule("alert", ns + "CPUThrottlingHigh",
         "sum by (pod, container) (increase(container_cpu_cfs_throttled_periods_total{" + sel +
             "}[5m])) / sum by (pod, container) (increase(container_cpu_cfs_periods_total{" + sel +
             "}[5m])) > 0.25");
    rule("alert", ns + "MemoryNearLimit",
         "container_memory_working_set_bytes{" + sel + "} / (container_spec_memory_limit_bytes{" +
             sel + "} > 0) > 0.9");
    rule("alert", ns + "RssHigh", "container_memory_rss{" + sel + "} > 5e9");
    rule("alert", ns + "FsWritesHigh",
         "sum by (pod) (rate(container_fs_writes_bytes_total{" + sel + "}[5m])) > 1e8");
    rule("alert", ns + "FsReadsHigh",
         "sum by (pod) (rate(container_fs_reads_bytes_total{" + sel + "}[5m])) > 1e8");
    rule("alert", ns + "NetworkReceiveHigh",
         "sum by (pod) (rate(container_network_receive_bytes_total{" + sel + "}[5m])) > 1e9");
    rule("alert", ns + "CPUOverQuota",
         "sum by (pod) (rate(container_cpu_usage_seconds_total{" + sel +
             "}[5m])) / sum by (pod) (container_spec_cpu_quota{" + sel + "} / 100000) > 0.9");
    rule("alert", ns + "MemoryUsageGrowing",
         "deriv(container_memory_usage_bytes{" + sel + "}[10m]) > 1e6");
  }
  // Node rules: per mount point, per network and disk device, per CPU and memory field.
  group("node-filesystems");
  for (int fs = 0; fs < 20; ++fs) {
    const std::string sel = "mountpoint=\"/mnt/" + std::to_string(fs) + "\"";
    rule("alert", "FilesystemFillingUp" + std::to_string(fs),
         "predict_linear(node_filesystem_avail_bytes{" + sel +
             "}[10m], 4 * 3600) < 0 and node_filesystem_readonly{" + sel + "} == 0");
  }
  group("node-network");
  for (int dev = 0; dev < 10; ++dev) {
    const std::string sel = "device=\"eth" + std::to_string(dev) + "\"";
    rule("alert", "NetworkReceiveErrors" + std::to_string(dev),
         "rate(node_network_receive_errs_total{" + sel +
             "}[2m]) / rate(node_network_receive_packets_total{" + sel + "}[2m]) > 0.01");
    rule("alert", "NetworkTransmitErrors" + std::to_string(dev),
         "rate(node_network_transmit_errs_total{" + sel +
             "}[2m]) / rate(node_network_transmit_packets_total{" + sel + "}[2m]) > 0.01");
  }
  group("node-disks");
  for (int dev = 0; dev < 8; ++dev) {
    const std::string sel = "device=\"nvme" + std::to_string(dev) + "\"";
    rule("alert", "DiskBusy" + std::to_string(dev),
         "rate(node_disk_io_time_seconds_total{" + sel + "}[5m]) > 0.9");
    rule("record", "instance_device:disk_read_latency:nvme" + std::to_string(dev),
         "rate(node_disk_read_time_seconds_total{" + sel +
             "}[5m]) / rate(node_disk_reads_completed_total{" + sel + "}[5m])");
    rule("alert", "DiskWriteHeavy" + std::to_string(dev),
         "rate(node_disk_written_bytes_total{" + sel + "}[5m]) > 5e8");
  }
  group("node-cpu");
  for (int cpu = 0; cpu < 16; ++cpu) {
    const std::string sel = "cpu=\"" + std::to_string(cpu) + "\"";
    rule("alert", "CpuBusy" + std::to_string(cpu),
         "1 - rate(node_cpu_seconds_total{" + sel + ",mode=\"idle\"}[5m]) > 0.95");
  }
  group("node-memory");
  for (int m = 2; m < 22; ++m) {
    rule("alert", "MemoryField" + std::to_string(m),
         "node_memory_field" + std::to_string(m) + "_bytes / node_memory_MemTotal_bytes > 0.99");
  }
  return out;
}

double timeCommand(const std::string& cmd) {
  std::vector<double> runs;
  for (int i = 0; i < 5; ++i) {
    const auto s = Clock::now();
    if (std::system((cmd + " > /dev/null 2>&1").c_str()) != 0) {
      return -1;
    }
    runs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
  }
  return vigil::bench::median(runs);
}

std::string formatNumber(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// The bench's series and rules as a promtool unit-test file, whose only check is trivial:
// the point is the rule evaluation both tools do at every 15 s from 0 to `eval_time`.
std::string unitTestYaml(const std::vector<SeriesSpec>& specs, const std::string& eval_time) {
  std::string out =
      "rule_files: [rules.yml]\nevaluation_interval: 15s\ntests:\n  - interval: 15s\n"
      "    input_series:\n";
  for (const auto& spec : specs) {
    std::string name;
    std::string selector;
    for (const auto& l : spec.labels) {
      if (l.name == kMetricNameLabel) {
        name = l.value;
      } else {
        selector += (selector.empty() ? "" : ",") + l.name + "=\"" + l.value + "\"";
      }
    }
    out += "      - series: '" + name + "{" + selector + "}'\n        values: '" +
           formatNumber(spec.base) + (spec.slope < 0 ? "-" : "+") +
           formatNumber(std::abs(spec.slope)) + "x" + std::to_string(kSamplesPerSeries - 1) + "'\n";
  }
  out += "    promql_expr_test:\n      - expr: vector(1)\n        eval_time: " + eval_time +
         "\n        exp_samples:\n          - labels: '{}'\n            value: 1\n";
  return out;
}

// Wall time of one run of `cmd`, or -1 if it failed.
double timeOnce(const std::string& cmd) {
  const auto s = Clock::now();
  if (std::system((cmd + " > /dev/null 2>&1").c_str()) != 0) {
    return -1;
  }
  return std::chrono::duration<double, std::milli>(Clock::now() - s).count();
}

// The peer in the same run: promtool (Prometheus's own rule evaluation) and `vigil test rules`
// on the same rules and series. Both evaluate every group every 15 s from 0 to the test's
// eval_time, so the difference between eval_time 2m (9 cycles) and 1m (5 cycles) is the cost
// of 4 cycles, loading and parsing excluded. The windows are not full yet that early (promtool
// always starts at 0 and takes seconds per cycle here), so these cycles are a little cheaper
// than the steady scenario's.
void comparePeer(const std::string& scenario) {
  const std::string dir = "/tmp/vigil-rules-bench-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const bool node = scenario == "node";
  const auto specs = node ? nodeSeries() : benchSeries();
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
  };
  write("rules.yml", node ? nodeRulesYaml() : rulesYaml(false));
  write("short.yml", unitTestYaml(specs, "1m"));
  write("long.yml", unitTestYaml(specs, "2m"));
  auto perCycle = [&](const std::string& tool) {
    const double shorter = timeOnce(tool + " test rules " + dir + "/short.yml");
    const double longer = timeOnce(tool + " test rules " + dir + "/long.yml");
    return shorter < 0 || longer < 0 ? -1.0 : (longer - shorter) / 4;
  };
  const double vigil_ms = perCycle(VIGIL_BINARY);
  const double promtool_ms = perCycle("promtool");
  std::printf(
      "rules        %-6s same rules and series under test rules: vigil %.1f ms per cycle, "
      "promtool %.1f ms per cycle (ratio %.2f)\n",
      scenario.c_str(), vigil_ms, promtool_ms, vigil_ms / promtool_ms);
  std::filesystem::remove_all(dir);
}

// One evaluation cycle of every group, on a fresh store each time the scenario runs. With
// `shared`, a subexpression several rules of a group have in common is evaluated once per
// cycle (what the agent does); without, every rule evaluates all of its expression.
void runScenario(const std::string& scenario, bool shared) {
  auto store = makeMemStore();
  const bool node = scenario == "node";
  const auto specs = node ? nodeSeries() : benchSeries();
  loadSeries(*store, specs);
  const std::size_t series = specs.size();
  auto rules = parseRuleFile(node ? nodeRulesYaml() : rulesYaml(scenario == "storm"), "bench.yml");
  if (!rules.errors.empty()) {
    std::fprintf(stderr, "%s\n", rules.errors[0].toString().c_str());
    std::exit(1);
  }
  std::vector<GroupEvaluator> evaluators;
  std::size_t shared_subexpressions = 0;
  for (const auto& g : rules.groups) {
    evaluators.emplace_back(g, *store);
    shared_subexpressions += evaluators.back().shareSubexpressions(shared);
  }
  std::vector<double> wall;
  std::vector<double> cpu;
  std::size_t failed_groups = 0;  // a failing rule would make a cycle look cheap
  for (int i = 0; i < 5; ++i) {
    const auto s = Clock::now();
    const std::clock_t c = std::clock();
    for (auto& ev : evaluators) {
      if (Status st = ev.evaluate(600000 + i * 15000LL); !st.isOk()) {
        ++failed_groups;
        std::fprintf(stderr, "group %s: %s\n", ev.group().name.c_str(), st.toString().c_str());
      }
    }
    cpu.push_back(static_cast<double>(std::clock() - c) * 1000 / CLOCKS_PER_SEC);
    wall.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
  }
  std::size_t active_alerts = 0;
  for (const auto& ev : evaluators) {
    for (const auto& rule_alerts : ev.exportAlerts()) {
      active_alerts += rule_alerts.size();
    }
  }
  if (failed_groups > 0) {
    std::fprintf(stderr, "%zu group evaluations failed\n", failed_groups);
    std::exit(1);
  }
  std::printf(
      "rules        %-6s %zu rules over %zu series, %zu alerts active, %zu subexpressions "
      "shared: one cycle on one core median %.1f ms wall, %.1f ms CPU (target < 100 ms)\n",
      scenario.c_str(), rules.ruleCount(), series, active_alerts, shared_subexpressions,
      vigil::bench::median(wall), vigil::bench::median(cpu));
}

}  // namespace

int main(int argc, char** argv) {
  // `--scenario steady|storm|node` runs only that scenario (for profiling).
  std::string only;
  std::string sharing;  // `--sharing on|off`: only with or without shared subexpressions
  std::vector<std::string> corpora;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--scenario" && i + 1 < argc) {
      only = argv[++i];
    } else if (std::string(argv[i]) == "--sharing" && i + 1 < argc) {
      sharing = argv[++i];
    } else {
      corpora.push_back(argv[i]);
    }
  }
  for (const bool shared : {true, false}) {
    if (!sharing.empty() && shared != (sharing == "on")) {
      continue;
    }
    for (const char* scenario : {"steady", "storm", "node"}) {
      if (only.empty() || only == scenario) {
        runScenario(scenario, shared);
      }
    }
  }
  if (!only.empty()) {
    return 0;
  }
  comparePeer("steady");
  comparePeer("node");

  if (corpora.empty()) {
    corpora = {VIGIL_SOURCE_DIR "/tests/rules/conformance/corpus.yml",
               VIGIL_SOURCE_DIR "/tests/rules/conformance/alert_corpus.yml",
               VIGIL_SOURCE_DIR "/rules/library/node_test.yml"};
  }
  for (const auto& file : corpora) {
    const double vigil_ms = timeCommand(std::string(VIGIL_BINARY) + " test rules " + file);
    const double promtool_ms = timeCommand("promtool test rules " + file);
    std::printf("test rules   %s: vigil %.1f ms, promtool %.1f ms (ratio %.2f)\n", file.c_str(),
                vigil_ms, promtool_ms, vigil_ms / promtool_ms);
  }
  return 0;
}
