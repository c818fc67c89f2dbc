// Rule evaluation benchmark:
//
//   build/bench/rules_bench [CORPUS.yml...]
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
#include <string>
#include <vector>

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

std::size_t loadSeries(Store& store) {
  std::size_t n = 0;
  auto add = [&](LabelSet labels, double base, double slope) {
    labels = sorted(std::move(labels));
    for (int i = 0; i < 40; ++i) {
      (void)store.append(labels, i * 15000LL, base + slope * i);
    }
    ++n;
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
  return n;
}

std::string rulesYaml() {
  const std::vector<std::string> templates = {
      "100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))) > TH",
      "node_filesystem_avail_bytes / node_filesystem_size_bytes * 100 < TH and "
      "node_filesystem_readonly == 0",
      "predict_linear(node_filesystem_avail_bytes{fstype!=\"\"}[5m], 4 * 3600) < TH",
      "sum by (instance) (rate(http_requests_total{code=~\"5..\"}[5m])) / sum by (instance) "
      "(rate(http_requests_total[5m])) > TH / 1000",
      "(1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes) * 100 > TH",
      "rate(node_network_receive_errs_total[2m]) / rate(node_network_receive_packets_total[2m]) > "
      "TH / 100",
      "increase(node_network_receive_drop_total[5m]) > TH",
      "max_over_time(node_network_up[5m]) < 1",
      "sum by (instance, code) (rate(http_requests_total[5m])) > TH * 10",
      "avg_over_time(node_memory_MemAvailable_bytes[5m]) < TH * 1e7",
  };
  std::string out = "groups:\n";
  int rule = 0;
  for (int g = 0; g < 10; ++g) {
    out += "  - name: group" + std::to_string(g) + "\n    rules:\n";
    for (int r = 0; r < 100; ++r, ++rule) {
      std::string expr = templates[static_cast<std::size_t>(rule) % templates.size()];
      const std::string th = std::to_string(1 + rule % 90);
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

}  // namespace

int main(int argc, char** argv) {
  auto store = makeMemStore();
  const std::size_t series = loadSeries(*store);
  auto rules = parseRuleFile(rulesYaml(), "bench.yml");
  if (!rules.errors.empty()) {
    std::fprintf(stderr, "%s\n", rules.errors[0].toString().c_str());
    return 1;
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
  std::printf(
      "rules        %zu rules over %zu series, one cycle on one core: median %.1f ms wall, "
      "%.1f ms CPU (target < 100 ms)\n",
      rules.ruleCount(), series, medianOf(wall), medianOf(cpu));

  std::vector<std::string> corpora;
  for (int i = 1; i < argc; ++i) {
    corpora.push_back(argv[i]);
  }
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
