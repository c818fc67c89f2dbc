#pragma once
// A sorted label set from name/value pairs, for tests: L({{"__name__", "up"}, {"job", "x"}}).
#include <algorithm>
#include <initializer_list>
#include <utility>

#include "vigil/metric.h"

namespace vigil::test {

inline LabelSet L(std::initializer_list<std::pair<const char*, const char*>> pairs) {
  LabelSet out;
  for (const auto& [n, v] : pairs) {
    out.push_back({n, v});
  }
  std::sort(out.begin(), out.end(), [](const Label& a, const Label& b) { return a.name < b.name; });
  return out;
}

}  // namespace vigil::test
