#pragma once
// The typed syntax tree of a PromQL expression (Prometheus 2.42, without native histograms).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vigil/store.h"

namespace vigil::promql {

/// The largest magnitude of a time or duration, in seconds, that PromQL and its API accept
/// (Prometheus's own bound, about 292 million years): its milliseconds fit in int64.
inline constexpr double kMaxTimeSeconds = 9.2e15;

enum class ValueType { kScalar, kVector, kMatrix, kString };
const char* valueTypeName(ValueType t);

/// Byte offsets [start, end) into the expression text.
struct PosRange {
  int start = 0;
  int end = 0;
};

enum class ExprKind {
  kNumber,
  kString,
  kVectorSelector,
  kMatrixSelector,
  kSubquery,
  kUnary,
  kBinary,
  kAggregate,
  kCall,
  kParen,
};

struct Expr {
  explicit Expr(ExprKind k) : kind(k) {}
  virtual ~Expr() = default;
  const ExprKind kind;
  PosRange pos;
  ValueType type() const;
};
using ExprPtr = std::unique_ptr<Expr>;

struct NumberLiteral final : Expr {
  NumberLiteral() : Expr(ExprKind::kNumber) {}
  double value = 0;
};

struct StringLiteral final : Expr {
  StringLiteral() : Expr(ExprKind::kString) {}
  std::string value;
};

/// The @ modifier: a fixed timestamp, or the query's start or end.
enum class AtKind { kNone, kTimestamp, kStart, kEnd };

struct VectorSelector final : Expr {
  VectorSelector() : Expr(ExprKind::kVectorSelector) {}
  std::string name;                    // empty when given only by matchers
  std::vector<LabelMatcher> matchers;  // includes __name__="name" when a name was given
  int64_t offset_ms = 0;
  AtKind at = AtKind::kNone;
  int64_t at_ms = 0;
};

struct MatrixSelector final : Expr {
  MatrixSelector() : Expr(ExprKind::kMatrixSelector) {}
  ExprPtr selector;  // a VectorSelector; its offset and @ apply to the whole range
  int64_t range_ms = 0;
};

struct Subquery final : Expr {
  Subquery() : Expr(ExprKind::kSubquery) {}
  ExprPtr expr;
  int64_t range_ms = 0;
  int64_t step_ms = 0;  // 0: the evaluation interval
  int64_t offset_ms = 0;
  AtKind at = AtKind::kNone;
  int64_t at_ms = 0;
};

enum class UnaryOp { kPlus, kMinus };

struct UnaryExpr final : Expr {
  UnaryExpr() : Expr(ExprKind::kUnary) {}
  UnaryOp op = UnaryOp::kMinus;
  ExprPtr expr;
};

enum class BinaryOp {
  kAdd,
  kSub,
  kMul,
  kDiv,
  kMod,
  kPow,
  kAtan2,
  kEq,
  kNe,
  kGt,
  kLt,
  kGe,
  kLe,
  kAnd,
  kOr,
  kUnless,
};
const char* binaryOpName(BinaryOp op);
bool isComparison(BinaryOp op);
bool isSetOperator(BinaryOp op);

enum class Cardinality { kOneToOne, kManyToOne, kOneToMany, kManyToMany };

struct VectorMatching {
  Cardinality card = Cardinality::kOneToOne;
  bool on = false;                   // on(...) rather than ignoring(...)
  std::vector<std::string> labels;   // the on/ignoring list
  uint32_t labels_id = 0;            // internLabelList(labels); 0: none
  std::vector<std::string> include;  // extra labels of group_left/group_right
};

struct BinaryExpr final : Expr {
  BinaryExpr() : Expr(ExprKind::kBinary) {}
  BinaryOp op = BinaryOp::kAdd;
  ExprPtr lhs;
  ExprPtr rhs;
  bool return_bool = false;
  /// Set when both sides are vectors.
  std::optional<VectorMatching> matching;
};

enum class AggregateOp {
  kSum,
  kAvg,
  kCount,
  kMin,
  kMax,
  kGroup,
  kStddev,
  kStdvar,
  kTopk,
  kBottomk,
  kCountValues,
  kQuantile,
};
const char* aggregateOpName(AggregateOp op);

struct AggregateExpr final : Expr {
  AggregateExpr() : Expr(ExprKind::kAggregate) {}
  AggregateOp op = AggregateOp::kSum;
  ExprPtr expr;
  ExprPtr param;  // topk/bottomk/quantile/count_values
  std::vector<std::string> grouping;
  uint32_t grouping_id = 0;  // internLabelList(grouping); 0: none
  bool without = false;
};

/// A number naming a list of label names (a grouping or matching list), the same for equal
/// lists: the engine keys what it keeps per series by it, so that rules grouping the same way
/// share it. 0 once too many distinct lists have been seen (the table stays bounded).
uint32_t internLabelList(const std::vector<std::string>& names);

struct Function {
  std::string name;
  std::vector<ValueType> arg_types;
  /// 0: exactly arg_types; n > 0: the last n arguments are optional; -1: the last may repeat.
  int variadic = 0;
  ValueType return_type = ValueType::kVector;
};
/// The function called `name`, or nullptr.
const Function* findFunction(const std::string& name);

struct Call final : Expr {
  Call() : Expr(ExprKind::kCall) {}
  const Function* func = nullptr;
  std::vector<ExprPtr> args;
};

struct ParenExpr final : Expr {
  ParenExpr() : Expr(ExprKind::kParen) {}
  ExprPtr expr;
};

/// PromQL text for `e`, normalised as Prometheus prints it.
std::string toString(const Expr& e);

}  // namespace vigil::promql
