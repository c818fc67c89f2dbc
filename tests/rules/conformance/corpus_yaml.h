#pragma once
// Shared by the corpus generators: how they spell strings in the promtool test files they write.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <string>

#include <ostream>

#include "vigil/metric.h"
#include "vigil/rules/unit_test.h"
#include "vigil/store.h"

namespace vigil::conformance {

// A YAML scalar that reads back as exactly `s` (PromQL expressions are full of quotes and braces).
inline std::string yamlQuoted(const std::string& s) {
  YAML::Emitter out;
  out << YAML::SingleQuoted << s;
  return out.c_str();
}

// A label set as promtool's series notation: name{a="b",c="d"}.
inline std::string seriesText(const LabelSet& labels) {
  std::string name;
  std::string inner;
  for (const auto& l : labels) {
    if (l.name == kMetricNameLabel) {
      name = l.value;
      continue;
    }
    inner += inner.empty() ? "" : ",";
    inner += l.name + "=\"";
    for (char c : l.value) {
      if (c == '"' || c == '\\') {
        inner += '\\';
      }
      inner += c;
    }
    inner += "\"";
  }
  return name + "{" + inner + "}";
}

// A sample value exactly, as promtool's YAML reads it.
inline std::string number(double v) {
  if (std::isinf(v)) {
    return v > 0 ? ".inf" : "-.inf";  // YAML's spelling, which promtool's parser reads
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Copies a case's input_series into the test file being written and loads them into `store`,
// `step` ms apart, as promtool will. False (after saying which) if a series does not parse.
inline bool writeAndLoadInputSeries(const YAML::Node& input_series, int64_t step, std::ostream& out,
                                    Store& store) {
  out << "    input_series:\n";
  for (const YAML::Node& s : input_series) {
    const std::string series = s["series"].as<std::string>();
    const std::string values = s["values"].as<std::string>();
    out << "      - series: " << yamlQuoted(series) << "\n        values: " << yamlQuoted(values)
        << "\n";
    auto labels = promql::parseSeriesLabels(series);
    auto expanded = promql::expandSeriesValues(values);
    if (!labels || !expanded) {
      std::fprintf(stderr, "bad series %s\n", series.c_str());
      return false;
    }
    for (std::size_t i = 0; i < expanded->size(); ++i) {
      const auto& v = (*expanded)[i];
      if (v.kind != promql::SeriesValue::Kind::kMissing) {
        (void)store.append(*labels, static_cast<int64_t>(i) * step,
                           v.kind == promql::SeriesValue::Kind::kStale ? staleNaN() : v.value);
      }
    }
  }
  return true;
}

}  // namespace vigil::conformance
