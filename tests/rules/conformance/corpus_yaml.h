#pragma once
// Shared by the corpus generators: how they spell strings in the promtool test files they write.
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <string>

#include "vigil/metric.h"
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

}  // namespace vigil::conformance
