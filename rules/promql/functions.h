#pragma once
// PromQL's functions, as Prometheus 2.42 computes them.

#include <span>
#include <string>
#include <vector>

#include "vigil/rules/promql_engine.h"

namespace vigil::promql {

/// One series of a range-vector argument: its samples in the window, not copied.
struct RangeView {
  SeriesLabels metric;
  std::span<const Sample> points;
};

struct FunctionContext {
  int64_t t;  // evaluation time, ms
  const Call& call;
  std::vector<Value>& args;       // the range-vector argument's place holds nothing
  std::vector<RangeView> matrix;  // the range-vector argument, if the function has one
  // For rate, increase, delta: the window of the range argument at this step.
  int64_t range_start = 0;
  int64_t range_end = 0;
  // For absent and absent_over_time: the labels of the argument's equality matchers.
  LabelSet absent_labels;
};

Result<Value> callFunction(FunctionContext& ctx);

/// The φ-quantile of `values` as Prometheus computes it (linear interpolation).
double quantile(double q, std::vector<double> values);

/// Labels of the equality matchers of a selector (absent's output), without __name__.
LabelSet absentLabels(const Expr& arg);

}  // namespace vigil::promql
