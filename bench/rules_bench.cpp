// Rule evaluation benchmark:
//
//   build/bench/rules_bench [--scenario steady|storm] [--sharing on|off] [CORPUS.yml...]
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

// One evaluation cycle of every group, on a fresh store each time the scenario runs. With
// `shared`, a subexpression several rules of a group have in common is evaluated once per
// cycle (what the agent does); without, every rule evaluates all of its expression.
void runScenario(const char* scenario, bool storm, bool shared) {
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
  std::size_t shared_subexpressions = 0;
  for (const auto& g : rules.groups) {
    evaluators.emplace_back(g, *store);
    shared_subexpressions += evaluators.back().shareSubexpressions(shared);
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
      "rules        %-6s %zu rules over %zu series, %zu alerts active, %zu subexpressions "
      "shared: one cycle on one core median %.1f ms wall, %.1f ms CPU (target < 100 ms)\n",
      scenario, rules.ruleCount(), series, active_alerts, shared_subexpressions, medianOf(wall),
      medianOf(cpu));
}

}  // namespace

int main(int argc, char** argv) {
  // `--scenario steady|storm` runs only that scenario (for profiling).
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
    if (only.empty() || only == "steady") {
      runScenario("steady", false, shared);
    }
    if (only.empty() || only == "storm") {
      runScenario("storm", true, shared);
    }
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
