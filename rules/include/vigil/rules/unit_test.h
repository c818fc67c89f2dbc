#pragma once
// promtool's rule unit-test files (`promtool test rules`): input series in the expanding
// notation, evaluated expressions and their expected samples.

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "vigil/store.h"

namespace vigil::promql {

/// One value of an expanded input series: a number, a stale marker, or missing ("_").
struct SeriesValue {
  enum class Kind { kValue, kStale, kMissing };
  Kind kind = Kind::kValue;
  double value = 0;
};

/// Expands promtool's notation: "1 2 _ stale 3+2x4 10-1x3 7x2 _x3". kInvalidArgument names the
/// token that is wrong.
Result<std::vector<SeriesValue>> expandSeriesValues(std::string_view text);

/// Parses a series description such as `metric{a="b"}` or `{a="b"}` into sorted labels.
Result<LabelSet> parseSeriesLabels(std::string_view text);

struct UnitTestReport {
  int tests = 0;
  int failures = 0;
};

/// Runs every test of the file the way `promtool test rules` does, writing promtool-like output
/// to `out`. Parts vigil cannot evaluate yet (alerting and recording rules) count as failures
/// with a message saying so.
UnitTestReport runUnitTestFile(const std::string& path, std::ostream& out);

}  // namespace vigil::promql
