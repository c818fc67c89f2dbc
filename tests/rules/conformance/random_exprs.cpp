// The randomised differential test: random series and random expressions from a PromQL
// grammar, evaluated by vigil's engine and written as a promtool unit-test file whose expected
// samples are vigil's answers; then promtool 2.42 evaluates the same file. promtool compares
// exactly, but Prometheus itself is not bit-stable here (it loads test series in Go map order,
// so sums run in a random order, and Go's math library rounds exp and pow differently from
// glibc), so its "got" answers are compared again with a relative tolerance of 1e-9: only a
// difference beyond that, or in the series returned, is a disagreement. Each one is printed
// with the expression, time, vigil's and Prometheus's answers; the file holds the series.
//
//   promql_random_gen SEED COUNT OUT.yml [--check]
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <regex>

#include "tests/rules/conformance/corpus_yaml.h"
#include "vigil/rules/promql_engine.h"
#include "vigil/rules/promql_parser.h"

using namespace vigil;
using namespace vigil::promql;
using vigil::conformance::number;
using vigil::conformance::seriesText;
using vigil::conformance::yamlQuoted;

namespace {

constexpr int kSamples = 40;        // per series, one a minute
constexpr int64_t kStepMs = 60000;  // the test's interval

class Generator {
 public:
  explicit Generator(uint32_t seed) : rng_(seed) {}

  int pick(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool chance(int percent) { return pick(100) < percent; }
  template <typename T>
  const T& one(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(pick(static_cast<int>(v.size())))];
  }

  // Counters (with a reset now and then) and gauges, on two jobs and three instances, some with
  // gaps (_) and one going stale.
  std::vector<std::pair<LabelSet, std::vector<std::string>>> series() {
    std::vector<std::pair<LabelSet, std::vector<std::string>>> out;
    for (const char* metric : {"requests_total", "errors_total", "temperature", "queue_length"}) {
      const bool counter = std::string(metric).ends_with("_total");
      for (const char* job : {"api", "db"}) {
        for (int inst = 0; inst < 3; ++inst) {
          LabelSet labels{
              {"__name__", metric}, {"instance", "host-" + std::to_string(inst)}, {"job", job}};
          std::vector<std::string> values;
          double v = pick(100);
          for (int i = 0; i < kSamples; ++i) {
            if (chance(5)) {
              values.push_back("_");
              continue;
            }
            if (counter) {
              v = chance(3) ? pick(5) : v + pick(20);
            } else {
              v = std::max(0.0, v + pick(21) - 10) + pick(4) * 0.25;
            }
            // A per-series fraction keeps values distinct across series (no topk ties).
            const double unique = (inst + 1) * 1e-3 + (job[0] == 'd' ? 1e-4 : 0);
            values.push_back(number(v + unique));
          }
          if (chance(15)) {
            values[static_cast<std::size_t>(kSamples - 1 - pick(10))] = "stale";
          }
          out.push_back({labels, values});
        }
      }
    }
    return out;
  }

  std::string selector() {
    std::string s =
        one<std::string>({"requests_total", "errors_total", "temperature", "queue_length"});
    switch (pick(5)) {
      case 0:
        return s + "{job=\"" + one<std::string>({"api", "db"}) + "\"}";
      case 1:
        return s + "{instance=~\"host-[01]\"}";
      case 2:
        return s + "{job!=\"db\"}";
      case 3:
        return s + "{instance!~\"host-2\"}";
      default:
        return s;
    }
  }

  std::string range() { return one<std::string>({"[2m]", "[5m]", "[10m]", "[1h]"}); }
  std::string grouping() {
    return one<std::string>(
        {" by (job)", " by (instance)", " without (instance)", "", " by (job, instance)"});
  }

  // An instant-vector expression of at most `depth` levels.
  std::string vector(int depth) {
    if (depth <= 0) {
      return selector();
    }
    switch (pick(9)) {
      case 0:
        return one<std::string>(
                   {"rate", "increase", "delta", "irate", "idelta", "deriv", "changes", "resets"}) +
               "(" + selector() + range() + ")";
      case 1:
        return one<std::string>({"avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
                                 "count_over_time", "stddev_over_time", "last_over_time",
                                 "present_over_time"}) +
               "(" + selector() + range() + ")";
      case 2:
        return one<std::string>(
                   {"sum", "avg", "min", "max", "count", "stddev", "stdvar", "group"}) +
               grouping() + " (" + vector(depth - 1) + ")";
      case 3:
        // Over raw values, which are distinct: ties would make Prometheus's choice depend on
        // its (random) series order.
        return one<std::string>({"topk", "bottomk"}) + "(" + std::to_string(1 + pick(3)) + ", " +
               selector() + ")";
      case 4:
        return "quantile" + grouping() + " (" + one<std::string>({"0", "0.5", "0.9", "1"}) + ", " +
               vector(depth - 1) + ")";
      case 5:
        // No ^: Go's math.Pow and glibc's pow differ in the last bit, which % and the like then
        // amplify (as exp, sin and tan do; they are left out for the same reason).
        return vector(depth - 1) + " " + one<std::string>({"+", "-", "*", "/", "%"}) + " " +
               one<std::string>({"2", "0.5", "10", "-3"});
      case 6:
        return vector(depth - 1) + " " + one<std::string>({">", "<", ">=", "==", "!="}) +
               (chance(40) ? " bool " : " ") + one<std::string>({"5", "50", "100"});
      case 7: {
        // Vector matching between two selectors of the same shape.
        const std::string op = one<std::string>({"+", "/", "-", "and", "or", "unless", ">"});
        const std::string matching =
            one<std::string>({"", " on (job, instance)", " ignoring (job)"});
        if (matching == " ignoring (job)" && (op == "+" || op == "/" || op == "-" || op == ">")) {
          return "sum by (instance) (" + selector() + ") " + op +
                 " on (instance) sum by (instance) (" + selector() + ")";
        }
        return "(" + vector(depth - 1) + ") " + op + matching + " (" + vector(depth - 1) + ")";
      }
      default: {
        const std::string f = one<std::string>({"abs", "ceil", "floor", "sqrt", "ln", "log2", "sgn",
                                                "timestamp", "clamp_min", "round"});
        const std::string extra = f == "clamp_min" ? ", 5" : f == "round" ? ", 0.5" : "";
        return f + "(" + vector(depth - 1) + extra + ")";
      }
    }
  }

 private:
  std::mt19937 rng_;
};

// "{a="1", b="2"} 1.5E+00, {...} 2E+00" as promtool prints samples: label sets and values.
std::vector<std::pair<std::string, double>> parseSamples(const std::string& text) {
  std::vector<std::pair<std::string, double>> out;
  static const std::regex kSample(R"((\{[^}]*\}) ([^ ,]+))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kSample);
       it != std::sregex_iterator(); ++it) {
    const std::string v = (*it)[2];
    const double value = v == "+Inf"   ? HUGE_VAL
                         : v == "-Inf" ? -HUGE_VAL
                         : v == "NaN"  ? NAN
                                       : std::strtod(v.c_str(), nullptr);
    out.emplace_back((*it)[1], value);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool close(double a, double b) {
  if (a == b) {
    return true;
  }
  return std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b));
}

// Runs promtool on `file`; returns the failures that are real disagreements.
int check(const std::string& file) {
  const std::string command = "promtool test rules " + file + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    std::cerr << "cannot run promtool\n";
    return 1;
  }
  std::string output;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, pipe)) {
    output.append(buf, n);
  }
  const int status = pclose(pipe);
  if (status != 0 && output.find("FAILED") == std::string::npos) {
    std::cerr << output;
    return 1;  // promtool could not run the file at all
  }
  int disagreements = 0;
  int within_tolerance = 0;
  static const std::regex kFailure(R"(expr: (".*"), time: (\S+),\n\s+exp: (.*)\n\s+got: (.*)\n)");
  for (auto it = std::sregex_iterator(output.begin(), output.end(), kFailure);
       it != std::sregex_iterator(); ++it) {
    const auto expected = parseSamples((*it)[3]);
    const auto got = parseSamples((*it)[4]);
    bool same = expected.size() == got.size();
    for (std::size_t i = 0; same && i < expected.size(); ++i) {
      same = expected[i].first == got[i].first && close(expected[i].second, got[i].second);
    }
    if (same) {
      ++within_tolerance;
      continue;
    }
    ++disagreements;
    std::cout << "DISAGREEMENT expr: " << (*it)[1] << " at " << (*it)[2]
              << "\n  vigil:      " << (*it)[3] << "\n  Prometheus: " << (*it)[4] << "\n";
  }
  // Any other failure promtool reports (an error where vigil had an answer) is a disagreement.
  std::size_t reported = 0;
  for (std::size_t pos = 0; (pos = output.find("    expr: ", pos)) != std::string::npos; ++pos) {
    ++reported;
  }
  if (reported > static_cast<std::size_t>(disagreements + within_tolerance)) {
    disagreements += static_cast<int>(reported) - disagreements - within_tolerance;
    std::cout << "DISAGREEMENT: promtool reported failures of another kind:\n" << output;
  }
  std::cout << "promtool: " << disagreements << " disagreements, " << within_tolerance
            << " differences within 1e-9 (series in " << file << ")\n";
  return disagreements == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 && !(argc == 5 && std::string(argv[4]) == "--check")) {
    std::cerr << "usage: promql_random_gen SEED COUNT OUT.yml [--check]\n";
    return 2;
  }
  Generator gen(static_cast<uint32_t>(std::atol(argv[1])));
  const int count = std::atoi(argv[2]);
  std::ofstream out(argv[3]);
  out << "# Generated by promql_random_gen " << argv[1] << " " << argv[2]
      << ": expected samples are vigil's answers.\nevaluation_interval: 1m\ntests:\n"
         "  - interval: 1m\n    input_series:\n";
  auto store = makeMemStore();
  for (const auto& [labels, values] : gen.series()) {
    std::string text;
    for (std::size_t i = 0; i < values.size(); ++i) {
      text += (i ? " " : "") + values[i];
      if (values[i] != "_") {
        (void)store->append(
            labels, static_cast<int64_t>(i) * kStepMs,
            values[i] == "stale" ? staleNaN() : std::strtod(values[i].c_str(), nullptr));
      }
    }
    out << "      - series: " << yamlQuoted(seriesText(labels))
        << "\n        values: " << yamlQuoted(text) << "\n";
  }
  out << "    promql_expr_test:\n";
  Engine engine(*store);
  int written = 0;
  int skipped = 0;
  for (int i = 0; written < count && i < count * 20; ++i) {
    const std::string expr = gen.vector(1 + gen.pick(3));
    auto parsed = parse(expr);
    if (!parsed.expr) {
      std::cerr << "generated an invalid expression: " << expr << ": " << parsed.error->toString()
                << "\n";
      return 1;
    }
    const int minute = 10 + gen.pick(kSamples - 10);
    auto r = engine.instant(*parsed.expr, minute * kStepMs);
    if (!r) {
      ++skipped;  // errors (e.g. many-to-many) cannot be expected in promtool's format
      continue;
    }
    const auto* v = std::get_if<Vector>(&*r);
    if (v == nullptr ||
        std::any_of(v->begin(), v->end(), [](const InstantSample& s) { return std::isnan(s.v); })) {
      ++skipped;  // promtool compares exactly, and NaN never equals NaN
      continue;
    }
    out << "      - expr: " << yamlQuoted(expr) << "\n        eval_time: " << minute << "m\n";
    if (v->empty()) {
      out << "        exp_samples: []\n";
    } else {
      out << "        exp_samples:\n";
      for (const auto& s : *v) {
        out << "          - labels: " << yamlQuoted(seriesText(s.metric))
            << "\n            value: " << number(s.v) << "\n";
      }
    }
    ++written;
  }
  std::cerr << "wrote " << written << " cases, skipped " << skipped << "\n";
  out.close();
  return argc == 5 ? check(argv[3]) : 0;
}
