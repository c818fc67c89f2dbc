#pragma once
// Evaluating PromQL over the store, with Prometheus 2.42's semantics: 5 m lookback, staleness
// markers, rate extrapolation, __name__ dropped where Prometheus drops it.

#include <chrono>
#include <string>
#include <variant>
#include <vector>

#include "vigil/rules/promql_ast.h"
#include "vigil/store.h"

namespace vigil::promql {

struct InstantSample {
  LabelSet metric;  // sorted, __name__ included where it survives
  int64_t t = 0;
  double v = 0;
};
using Vector = std::vector<InstantSample>;

struct RangeSeries {
  LabelSet metric;
  std::vector<Sample> points;
};
using Matrix = std::vector<RangeSeries>;

struct Scalar {
  int64_t t = 0;
  double v = 0;
};
struct String {
  int64_t t = 0;
  std::string v;
};

using Value = std::variant<Scalar, String, Vector, Matrix>;

struct EngineOptions {
  std::chrono::milliseconds lookback{5 * 60 * 1000};
  /// Most samples a query may hold at once; past it the query fails with kResourceExhausted.
  std::size_t max_samples = 50'000'000;
};

class Engine {
 public:
  explicit Engine(const Store& store, EngineOptions options = {})
      : store_(store), options_(options) {}

  /// Evaluates `expr` at `t_ms`. Errors (many-to-many matching, duplicate series, limits) come
  /// back as a Status with Prometheus's wording.
  Result<Value> instant(const Expr& expr, int64_t t_ms) const;

  /// Evaluates `expr` at every step from `start_ms` to `end_ms`; each selector is read from the
  /// store once for the whole range.
  Result<Matrix> range(const Expr& expr, int64_t start_ms, int64_t end_ms, int64_t step_ms) const;

 private:
  const Store& store_;
  EngineOptions options_;
};

}  // namespace vigil::promql
