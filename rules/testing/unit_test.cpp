#include "vigil/rules/unit_test.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "vigil/duration.h"
#include "vigil/rules/promql_engine.h"
#include "vigil/rules/promql_parser.h"
#include "vigil/rules/rule_eval.h"
#include "vigil/rules/rule_file.h"

#include <glob.h>
#include <filesystem>
#include <map>

namespace vigil::promql {

namespace {

std::optional<double> parseNumber(std::string_view s) {
  std::string lowered;
  for (char c : s) {
    lowered += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (lowered == "inf" || lowered == "+inf") {
    return std::numeric_limits<double>::infinity();
  }
  if (lowered == "-inf") {
    return -std::numeric_limits<double>::infinity();
  }
  if (lowered == "nan") {
    return std::numeric_limits<double>::quiet_NaN();
  }
  std::string text(s);
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) {
    return std::nullopt;
  }
  return v;
}

}  // namespace

Result<std::vector<SeriesValue>> expandSeriesValues(std::string_view text) {
  std::vector<SeriesValue> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos < text.size() && std::isspace(static_cast<unsigned char>(text[pos]))) {
      ++pos;
    }
    if (pos >= text.size()) {
      break;
    }
    std::size_t end = pos;
    while (end < text.size() && !std::isspace(static_cast<unsigned char>(text[end]))) {
      ++end;
    }
    const std::string_view token = text.substr(pos, end - pos);
    pos = end;
    auto bad = [&](const std::string& why) {
      return invalidArgument("invalid series value \"" + std::string(token) + "\": " + why);
    };
    if (token == "stale") {
      out.push_back({SeriesValue::Kind::kStale, 0});
      continue;
    }
    const auto x = token.find('x');
    std::string_view head = token.substr(0, x);
    long repeat = -1;
    if (x != std::string_view::npos) {
      std::string_view count = token.substr(x + 1);
      auto [p, ec] = std::from_chars(count.data(), count.data() + count.size(), repeat);
      if (ec != std::errc() || p != count.data() + count.size() || repeat < 0) {
        return bad("expected a count after x");
      }
      if (repeat > 1000000) {
        return bad("too many repetitions");
      }
    }
    if (head == "_") {
      // "_xN" is N missing values; "_" alone is one.
      for (long i = 0; i < std::max(1L, repeat); ++i) {
        out.push_back({SeriesValue::Kind::kMissing, 0});
      }
      continue;
    }
    // "a+bxN" and "a-bxN": N+1 values from a in steps of b; "axN": N+1 times a.
    double start = 0;
    double step = 0;
    if (repeat >= 0) {
      std::size_t op = std::string_view::npos;
      for (std::size_t i = 1; i < head.size(); ++i) {
        if ((head[i] == '+' || head[i] == '-') && head[i - 1] != 'e' && head[i - 1] != 'E') {
          op = i;
        }
      }
      auto a = parseNumber(op == std::string_view::npos ? head : head.substr(0, op));
      if (!a) {
        return bad("expected a number");
      }
      start = *a;
      if (op != std::string_view::npos) {
        auto b = parseNumber(head.substr(op + 1));
        if (!b) {
          return bad("expected a step after " + std::string(1, head[op]));
        }
        step = head[op] == '-' ? -*b : *b;
      }
      // Repeated addition, not start + i * step: promtool accumulates, and the rounding of
      // the two differs in the last bits.
      double v = start;
      for (long i = 0; i <= repeat; ++i) {
        out.push_back({SeriesValue::Kind::kValue, v});
        v += step;
      }
      continue;
    }
    auto v = parseNumber(head);
    if (!v) {
      return bad("expected a number, _, stale or a+bxN");
    }
    out.push_back({SeriesValue::Kind::kValue, *v});
  }
  return out;
}

Result<LabelSet> parseSeriesLabels(std::string_view text) {
  std::string trimmed(text);
  trimmed.erase(0, trimmed.find_first_not_of(" \t"));
  trimmed.erase(trimmed.find_last_not_of(" \t") + 1);
  if (trimmed == "{}" || trimmed.empty()) {
    return LabelSet{};
  }
  auto parsed = parse(trimmed);
  if (!parsed.expr || parsed.expr->kind != ExprKind::kVectorSelector) {
    return invalidArgument("invalid series \"" + trimmed + "\"" +
                           (parsed.error ? ": " + parsed.error->toString() : ""));
  }
  const auto& vs = static_cast<const VectorSelector&>(*parsed.expr);
  LabelSet out;
  for (const auto& m : vs.matchers) {
    if (m.type() != MatchType::kEqual) {
      return invalidArgument("invalid series \"" + trimmed +
                             "\": only = matchers describe a series");
    }
    if (!m.value().empty()) {
      out.push_back({m.name(), m.value()});
    }
  }
  std::sort(out.begin(), out.end(), [](const Label& a, const Label& b) { return a.name < b.name; });
  return out;
}

namespace {

std::string formatValue(double v) {
  // promtool prints values with %E-like formatting; the exact digits only matter to a reader.
  char buf[64];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

struct GotSample {
  LabelSet labels;
  double value;
};

std::string describeSamples(const std::vector<GotSample>& samples) {
  std::string out;
  for (const auto& s : samples) {
    out += out.empty() ? "" : ", ";
    out += labelsToString(s.labels) + " " + formatValue(s.value);
  }
  return out.empty() ? "nil" : out;
}

Result<int64_t> durationMs(const YAML::Node& node) {
  if (!node) {
    return int64_t{0};
  }
  auto d = parseDuration(node.as<std::string>());
  if (!d) {
    return d.status();
  }
  return d->count();
}

}  // namespace

UnitTestReport runUnitTestFile(const std::string& path, std::ostream& out) {
  UnitTestReport report;
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::Exception& e) {
    out << path << ": " << e.what() << "\n";
    report.failures = 1;
    return report;
  }
  auto failFile = [&](const std::string& why) {
    out << "  FAILED:\n    " << why << "\n";
    ++report.failures;
  };
  // Rule files, relative to the test file, globs expanded.
  std::vector<RuleGroup> groups;
  const std::string base = std::filesystem::path(path).parent_path().string();
  for (const YAML::Node& f : root["rule_files"]) {
    std::string pattern = f.as<std::string>();
    if (!pattern.empty() && pattern[0] != '/' && !base.empty()) {
      pattern = base + "/" + pattern;
    }
    glob_t g{};
    if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
      for (std::size_t i = 0; i < g.gl_pathc; ++i) {
        auto loaded = loadRuleFile(g.gl_pathv[i]);
        for (const auto& e : loaded.errors) {
          failFile(e.toString());
        }
        for (auto& grp : loaded.groups) {
          groups.push_back(std::move(grp));
        }
      }
    }
    ::globfree(&g);
  }
  if (report.failures > 0) {
    return report;
  }
  std::vector<std::string> order;
  for (const YAML::Node& n : root["group_eval_order"]) {
    order.push_back(n.as<std::string>());
  }
  if (!order.empty()) {
    std::stable_sort(groups.begin(), groups.end(), [&](const RuleGroup& a, const RuleGroup& b) {
      auto ia = std::find(order.begin(), order.end(), a.name);
      auto ib = std::find(order.begin(), order.end(), b.name);
      return ia < ib;
    });
  }
  int64_t eval_interval = 60000;
  if (root["evaluation_interval"]) {
    if (auto d = parseDuration(root["evaluation_interval"].as<std::string>())) {
      eval_interval = d->count();
    }
  }
  const YAML::Node tests = root["tests"];
  if (!tests || !tests.IsSequence()) {
    failFile("no tests in " + path);
    return report;
  }
  for (const YAML::Node& test : tests) {
    ++report.tests;
    try {
      auto interval = durationMs(test["interval"]);
      if (!interval || *interval == 0) {
        interval = int64_t{60000};  // promtool's default evaluation interval
      }
      auto store = makeMemStore();
      for (const YAML::Node& series : test["input_series"]) {
        auto labels = parseSeriesLabels(series["series"].as<std::string>());
        auto values = expandSeriesValues(series["values"].as<std::string>(""));
        if (!labels || !values) {
          failFile((!labels ? labels.status() : values.status()).message());
          continue;
        }
        for (std::size_t i = 0; i < values->size(); ++i) {
          const SeriesValue& v = (*values)[i];
          if (v.kind == SeriesValue::Kind::kMissing) {
            continue;
          }
          (void)store->append(*labels, static_cast<int64_t>(i) * *interval,
                              v.kind == SeriesValue::Kind::kStale ? staleNaN() : v.value);
        }
      }
      // External labels and evaluation: every group at every evaluation interval from 0 to the
      // last eval_time, alerts checked against the evaluation at or just before their time.
      std::map<std::string, std::string> external;
      for (const auto& kv : test["external_labels"]) {
        external[kv.first.as<std::string>()] = kv.second.as<std::string>();
      }
      std::vector<GroupEvaluator> evaluators;
      for (const auto& g : groups) {
        evaluators.emplace_back(g, *store, external);
      }
      // By index: yaml-cpp's Node assignment writes through to the document, so nodes must
      // not be sorted themselves.
      struct AlertTest {
        int64_t eval_time;
        std::size_t index;
      };
      const YAML::Node alert_nodes = test["alert_rule_test"];
      std::vector<AlertTest> alert_tests;
      int64_t max_time = 0;
      for (std::size_t i = 0; alert_nodes && i < alert_nodes.size(); ++i) {
        auto t = durationMs(alert_nodes[i]["eval_time"]);
        alert_tests.push_back({t ? *t : 0, i});
        max_time = std::max(max_time, t ? *t : 0);
      }
      for (const YAML::Node& tc : test["promql_expr_test"]) {
        auto t = durationMs(tc["eval_time"]);
        max_time = std::max(max_time, t ? *t : 0);
      }
      std::stable_sort(
          alert_tests.begin(), alert_tests.end(),
          [](const AlertTest& a, const AlertTest& b) { return a.eval_time < b.eval_time; });
      std::size_t next_alert = 0;
      for (int64_t ts = 0; (!groups.empty() || !alert_tests.empty()) && ts <= max_time;
           ts += eval_interval) {
        for (auto& ev : evaluators) {
          (void)ev.evaluate(ts);
        }
        while (next_alert < alert_tests.size() && alert_tests[next_alert].eval_time >= ts &&
               alert_tests[next_alert].eval_time < ts + eval_interval) {
          const YAML::Node at = alert_nodes[alert_tests[next_alert].index];
          const std::string name = at["alertname"].as<std::string>("");
          using Entry = std::pair<LabelSet, std::vector<std::pair<std::string, std::string>>>;
          std::vector<Entry> got;
          for (auto& ev : evaluators) {
            for (auto& a : ev.alerts(name)) {
              if (a.state == AlertState::kFiring) {
                auto ann = a.annotations;
                std::sort(ann.begin(), ann.end());
                got.emplace_back(a.labels, std::move(ann));
              }
            }
          }
          std::vector<Entry> exp;
          for (const YAML::Node& ea : at["exp_alerts"]) {
            LabelSet labels{{"alertname", name}};
            for (const auto& kv : ea["exp_labels"]) {
              labels.push_back({kv.first.as<std::string>(), kv.second.as<std::string>()});
            }
            std::sort(labels.begin(), labels.end(),
                      [](const Label& a, const Label& b) { return a.name < b.name; });
            std::vector<std::pair<std::string, std::string>> ann;
            for (const auto& kv : ea["exp_annotations"]) {
              ann.emplace_back(kv.first.as<std::string>(), kv.second.as<std::string>());
            }
            std::sort(ann.begin(), ann.end());
            exp.emplace_back(std::move(labels), std::move(ann));
          }
          std::sort(got.begin(), got.end());
          std::sort(exp.begin(), exp.end());
          if (got != exp) {
            ++report.failures;
            auto show = [](const std::vector<Entry>& v) {
              std::string s = "[";
              for (std::size_t i = 0; i < v.size(); ++i) {
                s += "\n        " + std::to_string(i) + ": Labels:" + labelsToString(v[i].first) +
                     " Annotations:{";
                for (const auto& [k, val] : v[i].second) {
                  s += k + "=\"" + val + "\" ";
                }
                s += "}";
              }
              return s + "\n        ]";
            };
            out << "  FAILED:\n    alertname: " << name
                << ", time: " << formatDuration(Duration{alert_tests[next_alert].eval_time})
                << ",\n"
                << "        exp:" << show(exp) << "\n        got:" << show(got) << "\n";
          }
          ++next_alert;
        }
      }
      Engine engine(*store);
      for (const YAML::Node& tc : test["promql_expr_test"]) {
        const std::string expr = tc["expr"].as<std::string>();
        auto eval_time = durationMs(tc["eval_time"]);
        auto parsed = parse(expr);
        std::vector<GotSample> got;
        std::string error;
        if (!eval_time) {
          error = eval_time.status().message();
        } else if (!parsed.expr) {
          error = parsed.error->toString();
        } else {
          auto r = engine.instant(*parsed.expr, *eval_time);
          if (!r) {
            error = r.status().message();
          } else if (auto* s = std::get_if<Scalar>(&*r)) {
            got.push_back({{}, s->v});
          } else if (auto* v = std::get_if<Vector>(&*r)) {
            for (const auto& sample : *v) {
              got.push_back({sample.metric, sample.v});
            }
          } else {
            error = "expression must evaluate to a scalar or an instant vector";
          }
        }
        std::vector<GotSample> expected;
        for (const YAML::Node& s : tc["exp_samples"]) {
          auto labels = parseSeriesLabels(s["labels"].as<std::string>(""));
          if (!labels) {
            error = labels.status().message();
            break;
          }
          expected.push_back({*labels, s["value"].as<double>()});
        }
        auto byLabels = [](const GotSample& a, const GotSample& b) { return a.labels < b.labels; };
        std::sort(got.begin(), got.end(), byLabels);
        std::sort(expected.begin(), expected.end(), byLabels);
        // Exact comparison, as promtool's reflect.DeepEqual (so NaN never equals NaN).
        bool same = error.empty() && got.size() == expected.size();
        for (std::size_t i = 0; same && i < got.size(); ++i) {
          same = got[i].labels == expected[i].labels && got[i].value == expected[i].value;
        }
        if (!same) {
          ++report.failures;
          out << "  FAILED:\n    expr: \"" << expr
              << "\", time: " << formatDuration(Duration{eval_time ? *eval_time : 0}) << ",\n";
          if (!error.empty()) {
            out << "        error: " << error << "\n";
          } else {
            out << "        exp: " << describeSamples(expected) << "\n"
                << "        got: " << describeSamples(got) << "\n";
          }
        }
      }
    } catch (const YAML::Exception& e) {
      failFile(std::string("invalid test: ") + e.what());
    }
  }
  return report;
}

}  // namespace vigil::promql
