#pragma once
// PromQL's functions, as Prometheus 2.42 computes them.

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/rules/promql_engine.h"

namespace vigil::promql {

/// One series of a range-vector argument: its samples in the window, not copied.
struct RangeView {
  SeriesLabels metric;
  std::span<const Sample> points;
};

/// Vectors whose storage serves again: a range query evaluates its expression at every step,
/// and without this each step's vectors were allocated anew (the large ones mapped and faulted
/// in page by page). Not thread-safe: one per evaluation.
class VectorPool {
 public:
  /// An empty vector with room for `capacity` samples.
  Vector take(std::size_t capacity) { return takeFrom(vectors_, capacity); }
  /// Takes `v` back for a later take(); its samples are destroyed now.
  void give(Vector&& v) { giveTo(vectors_, std::move(v)); }
  std::vector<RangeView> takeViews(std::size_t capacity) { return takeFrom(views_, capacity); }
  void giveViews(std::vector<RangeView>&& v) { giveTo(views_, std::move(v)); }
  /// give() for a value that holds a vector; other values are left alone.
  void giveValue(Value& v) {
    if (auto* vec = std::get_if<Vector>(&v)) {
      give(std::move(*vec));
    }
  }

 private:
  // Deep enough for the vectors one step of a nested expression holds at once.
  static constexpr std::size_t kMaxSpare = 8;

  template <typename V>
  static V takeFrom(std::vector<V>& spare, std::size_t capacity) {
    V out;
    if (!spare.empty()) {
      out = std::move(spare.back());
      spare.pop_back();
    }
    out.reserve(capacity);
    return out;
  }
  template <typename V>
  static void giveTo(std::vector<V>& spare, V&& v) {
    v.clear();
    if (v.capacity() > 0 && spare.size() < kMaxSpare) {
      spare.push_back(std::move(v));
    }
  }

  std::vector<Vector> vectors_;
  std::vector<std::vector<RangeView>> views_;
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
  VectorPool* pool = nullptr;  // where result vectors come from
};

Result<Value> callFunction(FunctionContext& ctx);

/// For the functions that map each series' window of samples to one value (rate,
/// max_over_time, ...): that mapping; empty for the others. `scalars` are the call's number
/// arguments in order. The mapping gets the window's points and bounds, the evaluation time,
/// and whether the points may hold a counter reset (false saves rate a pass over them).
using WindowFunction =
    std::function<std::optional<double>(std::span<const Sample> points, int64_t range_start,
                                        int64_t range_end, int64_t t, bool may_reset)>;
WindowFunction windowFunction(std::string_view name, const std::vector<double>& scalars);

/// The φ-quantile of `values` as Prometheus computes it (linear interpolation).
double quantile(double q, std::vector<double> values);

/// Labels of the equality matchers of a selector (absent's output), without __name__.
LabelSet absentLabels(const Expr& arg);

}  // namespace vigil::promql
