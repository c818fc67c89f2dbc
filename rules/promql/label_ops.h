#pragma once
// Label-set edits the PromQL engine, its functions and the rule evaluator all make. Internal to
// rules/. Label sets are kept sorted by name.

#include <algorithm>
#include <string>
#include <string_view>

#include "vigil/metric.h"

namespace vigil::promql {

inline void eraseLabel(LabelSet& ls, std::string_view name) {
  std::erase_if(ls, [&](const Label& l) { return l.name == name; });
}

/// Sets `name` to `value`; an empty value removes the label, as in Prometheus.
inline void setLabel(LabelSet& ls, const std::string& name, const std::string& value) {
  eraseLabel(ls, name);
  if (!value.empty()) {
    ls.push_back({name, value});
    std::sort(ls.begin(), ls.end(), [](const Label& a, const Label& b) { return a.name < b.name; });
  }
}

/// The value of `name`, or "" when absent.
inline std::string labelValue(const LabelSet& ls, std::string_view name) {
  for (const Label& l : ls) {
    if (l.name == name) {
      return l.value;
    }
  }
  return "";
}

/// A string that identifies the label set (names and values with 0xff separators).
inline std::string labelsKey(const LabelSet& labels) {
  std::string key;
  for (const Label& l : labels) {
    key += l.name;
    key += '\xff';
    key += l.value;
    key += '\xff';
  }
  return key;
}

}  // namespace vigil::promql
