// Rule evaluation benchmark:
//
//   build/bench/rules_bench [--scenario steady|storm] [CORPUS.yml...]
//
// 1,000 rules (typical node and HTTP alert and recording expressions) over 20,000 series, one
// evaluation cycle of every group, timed (median of 5). Then, for each corpus file given (by
// default the two conformance corpora), `vigil test rules` against `promtool test rules` on the
// same file, median of 5 runs each.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "vigil/rules/rule_eval.h"
#include "vigil/rules/rule_file.h"

using namespace vigil;
using namespace vigil::promql;
using Clock = std::chrono::steady_clock;

namespace {

LabelSet sorted(LabelSet ls) {
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

std::vector<SeriesSpec> benchSeries() {
  std::vector<SeriesSpec> out;
  auto add = [&](LabelSet labels, double base, double slope) {
    out.push_back({sorted(std::move(labels)), base, slope});
  };
  for (int inst = 0; inst < 100; ++inst) {
    const std::string instance = "node-" + std::to_string(inst) + ":9100";
    for (int cpu = 0; cpu < 8; ++cpu) {
      for (const char* mode :
           {"idle", "user", "system", "iowait", "irq", "softirq", "nice", "steal"}) {
        add({{"__name__", "node_cpu_seconds_total"},
             {"instance", instance},
             {"cpu", std::to_string(cpu)},
             {"mode", mode}},
            1000 * cpu, std::string(mode) == "idle" ? 12 : 1);
      }
    }
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

void loadSeries(Store& store, const std::vector<SeriesSpec>& specs) {
  for (const auto& spec : specs) {
    for (int i = 0; i < kSamplesPerSeries; ++i) {
      (void)store.append(spec.labels, i * kScrapeMs, spec.base + spec.slope * i);
    }
  }
}

struct RuleTemplate {
  std::string expr;             // TH stands for the threshold
  std::string quiet_threshold;  // one at which the rule fires for none of the bench's series
};

// The rule file: 1,000 rules in 10 groups, every fifth a recording rule. In the steady
// scenario one rule in 47 uses a threshold its series cross (a few incidents going on)
// and the others sit quiet, as on a healthy fleet; in the storm every threshold is low enough
// for most series to alert.
std::string rulesYaml(bool storm) {
  const std::vector<RuleTemplate> templates = {
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
  std::string out = "groups:\n";
  int rule = 0;
  for (int g = 0; g < 10; ++g) {
    out += "  - name: group" + std::to_string(g) + "\n    rules:\n";
    for (int r = 0; r < 100; ++r, ++rule) {
      const auto& tmpl = templates[static_cast<std::size_t>(rule) % templates.size()];
      std::string expr = tmpl.expr;
      const bool fires = storm || rule % 47 == 0;
      const std::string th = fires ? std::to_string(1 + rule % 90) : tmpl.quiet_threshold;
      for (auto pos = expr.find("TH"); pos != std::string::npos; pos = expr.find("TH")) {
        expr.replace(pos, 2, th);
      }
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

double medianOf(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
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
  return medianOf(runs);
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
void comparePeer() {
  const std::string dir = "/tmp/vigil-rules-bench-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const auto specs = benchSeries();
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
  };
  write("rules.yml", rulesYaml(false));
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
      "rules        steady, same rules and series under test rules: vigil %.1f ms per cycle, "
      "promtool %.1f ms per cycle (ratio %.2f)\n",
      vigil_ms, promtool_ms, vigil_ms / promtool_ms);
  std::filesystem::remove_all(dir);
}

// One evaluation cycle of every group, on a fresh store each time the scenario runs.
void runScenario(const char* scenario, bool storm) {
  auto store = makeMemStore();
  const auto specs = benchSeries();
  loadSeries(*store, specs);
  const std::size_t series = specs.size();
  auto rules = parseRuleFile(rulesYaml(storm), "bench.yml");
  if (!rules.errors.empty()) {
    std::fprintf(stderr, "%s\n", rules.errors[0].toString().c_str());
    std::exit(1);
  }
  std::vector<GroupEvaluator> evaluators;
  for (const auto& g : rules.groups) {
    evaluators.emplace_back(g, *store);
  }
  std::vector<double> wall;
  std::vector<double> cpu;
  for (int i = 0; i < 5; ++i) {
    const auto s = Clock::now();
    const std::clock_t c = std::clock();
    for (auto& ev : evaluators) {
      (void)ev.evaluate(600000 + i * 15000LL);
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
  std::printf(
      "rules        %-6s %zu rules over %zu series, %zu alerts active: one cycle on one core "
      "median %.1f ms wall, %.1f ms CPU (target < 100 ms)\n",
      scenario, rules.ruleCount(), series, active_alerts, medianOf(wall), medianOf(cpu));
}

}  // namespace

int main(int argc, char** argv) {
  // `--scenario steady|storm` runs only that scenario (for profiling).
  std::string only;
  std::vector<std::string> corpora;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--scenario" && i + 1 < argc) {
      only = argv[++i];
    } else {
      corpora.push_back(argv[i]);
    }
  }
  if (only.empty() || only == "steady") {
    runScenario("steady", false);
  }
  if (only.empty() || only == "storm") {
    runScenario("storm", true);
  }
  if (!only.empty()) {
    return 0;
  }
  comparePeer();

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
