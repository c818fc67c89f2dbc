#include <charconv>
#include <cmath>
#include <map>
#include <mutex>

#include "vigil/duration.h"
#include "vigil/rules/promql_ast.h"

namespace vigil::promql {

const char* valueTypeName(ValueType t) {
  switch (t) {
    case ValueType::kScalar:
      return "scalar";
    case ValueType::kVector:
      return "instant vector";
    case ValueType::kMatrix:
      return "range vector";
    case ValueType::kString:
      return "string";
  }
  return "unknown";
}

ValueType Expr::type() const {
  switch (kind) {
    case ExprKind::kNumber:
      return ValueType::kScalar;
    case ExprKind::kString:
      return ValueType::kString;
    case ExprKind::kVectorSelector:
    case ExprKind::kAggregate:
      return ValueType::kVector;
    case ExprKind::kMatrixSelector:
    case ExprKind::kSubquery:
      return ValueType::kMatrix;
    case ExprKind::kUnary:
      return static_cast<const UnaryExpr*>(this)->expr->type();
    case ExprKind::kParen:
      return static_cast<const ParenExpr*>(this)->expr->type();
    case ExprKind::kCall:
      return static_cast<const Call*>(this)->func->return_type;
    case ExprKind::kBinary: {
      const auto* b = static_cast<const BinaryExpr*>(this);
      return b->lhs->type() == ValueType::kScalar && b->rhs->type() == ValueType::kScalar
                 ? ValueType::kScalar
                 : ValueType::kVector;
    }
  }
  return ValueType::kVector;
}

const char* binaryOpName(BinaryOp op) {
  static const char* const kNames[] = {"+",  "-", "*", "/",  "%",  "^",   "atan2", "==",
                                       "!=", ">", "<", ">=", "<=", "and", "or",    "unless"};
  return kNames[static_cast<int>(op)];
}

bool isComparison(BinaryOp op) {
  return op == BinaryOp::kEq || op == BinaryOp::kNe || op == BinaryOp::kGt || op == BinaryOp::kLt ||
         op == BinaryOp::kGe || op == BinaryOp::kLe;
}

bool isSetOperator(BinaryOp op) {
  return op == BinaryOp::kAnd || op == BinaryOp::kOr || op == BinaryOp::kUnless;
}

const char* aggregateOpName(AggregateOp op) {
  static const char* const kNames[] = {"sum",  "avg",     "count",        "min",
                                       "max",  "group",   "stddev",       "stdvar",
                                       "topk", "bottomk", "count_values", "quantile"};
  return kNames[static_cast<int>(op)];
}

const Function* findFunction(const std::string& name) {
  using V = ValueType;
  constexpr V s = V::kScalar;
  constexpr V v = V::kVector;
  constexpr V m = V::kMatrix;
  constexpr V str = V::kString;
  static const std::vector<Function> kFunctions = {
      {"abs", {v}, 0, v},
      {"absent", {v}, 0, v},
      {"absent_over_time", {m}, 0, v},
      {"acos", {v}, 0, v},
      {"acosh", {v}, 0, v},
      {"asin", {v}, 0, v},
      {"asinh", {v}, 0, v},
      {"atan", {v}, 0, v},
      {"atanh", {v}, 0, v},
      {"avg_over_time", {m}, 0, v},
      {"ceil", {v}, 0, v},
      {"changes", {m}, 0, v},
      {"clamp", {v, s, s}, 0, v},
      {"clamp_max", {v, s}, 0, v},
      {"clamp_min", {v, s}, 0, v},
      {"cos", {v}, 0, v},
      {"cosh", {v}, 0, v},
      {"count_over_time", {m}, 0, v},
      {"days_in_month", {v}, 1, v},
      {"day_of_month", {v}, 1, v},
      {"day_of_week", {v}, 1, v},
      {"day_of_year", {v}, 1, v},
      {"deg", {v}, 0, v},
      {"delta", {m}, 0, v},
      {"deriv", {m}, 0, v},
      {"exp", {v}, 0, v},
      {"floor", {v}, 0, v},
      {"histogram_quantile", {s, v}, 0, v},
      {"holt_winters", {m, s, s}, 0, v},
      {"hour", {v}, 1, v},
      {"idelta", {m}, 0, v},
      {"increase", {m}, 0, v},
      {"irate", {m}, 0, v},
      {"label_replace", {v, str, str, str, str}, 0, v},
      {"label_join", {v, str, str, str}, -1, v},
      {"last_over_time", {m}, 0, v},
      {"ln", {v}, 0, v},
      {"log10", {v}, 0, v},
      {"log2", {v}, 0, v},
      {"max_over_time", {m}, 0, v},
      {"min_over_time", {m}, 0, v},
      {"minute", {v}, 1, v},
      {"month", {v}, 1, v},
      {"pi", {}, 0, s},
      {"predict_linear", {m, s}, 0, v},
      {"present_over_time", {m}, 0, v},
      {"quantile_over_time", {s, m}, 0, v},
      {"rad", {v}, 0, v},
      {"rate", {m}, 0, v},
      {"resets", {m}, 0, v},
      {"round", {v, s}, 1, v},
      {"scalar", {v}, 0, s},
      {"sgn", {v}, 0, v},
      {"sin", {v}, 0, v},
      {"sinh", {v}, 0, v},
      {"sort", {v}, 0, v},
      {"sort_desc", {v}, 0, v},
      {"sqrt", {v}, 0, v},
      {"stddev_over_time", {m}, 0, v},
      {"stdvar_over_time", {m}, 0, v},
      {"sum_over_time", {m}, 0, v},
      {"tan", {v}, 0, v},
      {"tanh", {v}, 0, v},
      {"time", {}, 0, s},
      {"timestamp", {v}, 0, v},
      {"vector", {s}, 0, v},
      {"year", {v}, 1, v},
  };
  for (const Function& f : kFunctions) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

namespace {

std::string number(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string labelList(const std::vector<std::string>& labels) {
  std::string out = "(";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    out += (i ? ", " : "") + labels[i];
  }
  return out + ")";
}

std::string modifiers(int64_t offset_ms, AtKind at, int64_t at_ms) {
  std::string out;
  if (at == AtKind::kTimestamp) {
    char buf[32];
    std::snprintf(buf, sizeof buf, " @ %.3f", static_cast<double>(at_ms) / 1000);
    out += buf;
  } else if (at == AtKind::kStart) {
    out += " @ start()";
  } else if (at == AtKind::kEnd) {
    out += " @ end()";
  }
  if (offset_ms != 0) {
    out += " offset " + formatDuration(Duration{offset_ms});
  }
  return out;
}

std::string selectorText(const VectorSelector& vs) {
  std::string out = vs.name;
  std::string inner;
  for (const auto& m : vs.matchers) {
    if (!vs.name.empty() && m.name() == "__name__" && m.type() == MatchType::kEqual) {
      continue;
    }
    inner += inner.empty() ? "" : ", ";
    inner += m.toString();
  }
  if (!inner.empty() || vs.name.empty()) {
    out += "{" + inner + "}";
  }
  return out;
}

}  // namespace

uint32_t internLabelList(const std::vector<std::string>& names) {
  // Lists come from rule files and queries; past this many distinct ones (queries over the API
  // can make up any), new lists get no number and the engine keys by the expression instead.
  constexpr std::size_t kMaxLists = 4096;
  static std::mutex mu;
  static std::map<std::vector<std::string>, uint32_t> ids;
  std::lock_guard lock(mu);
  auto it = ids.find(names);
  if (it != ids.end()) {
    return it->second;
  }
  if (ids.size() >= kMaxLists) {
    return 0;
  }
  const auto id = static_cast<uint32_t>(ids.size() + 1);
  ids.emplace(names, id);
  return id;
}

std::string toString(const Expr& e) {
  switch (e.kind) {
    case ExprKind::kNumber:
      return number(static_cast<const NumberLiteral&>(e).value);
    case ExprKind::kString:
      return goQuote(static_cast<const StringLiteral&>(e).value);
    case ExprKind::kVectorSelector: {
      const auto& vs = static_cast<const VectorSelector&>(e);
      return selectorText(vs) + modifiers(vs.offset_ms, vs.at, vs.at_ms);
    }
    case ExprKind::kMatrixSelector: {
      const auto& ms = static_cast<const MatrixSelector&>(e);
      const auto& vs = static_cast<const VectorSelector&>(*ms.selector);
      return selectorText(vs) + "[" + formatDuration(Duration{ms.range_ms}) + "]" +
             modifiers(vs.offset_ms, vs.at, vs.at_ms);
    }
    case ExprKind::kSubquery: {
      const auto& sq = static_cast<const Subquery&>(e);
      return toString(*sq.expr) + "[" + formatDuration(Duration{sq.range_ms}) + ":" +
             (sq.step_ms ? formatDuration(Duration{sq.step_ms}) : "") + "]" +
             modifiers(sq.offset_ms, sq.at, sq.at_ms);
    }
    case ExprKind::kUnary: {
      const auto& u = static_cast<const UnaryExpr&>(e);
      std::string out(u.op == UnaryOp::kMinus ? "-" : "+");
      out += toString(*u.expr);
      return out;
    }
    case ExprKind::kParen: {
      std::string out("(");
      out += toString(*static_cast<const ParenExpr&>(e).expr);
      out += ')';
      return out;
    }
    case ExprKind::kCall: {
      const auto& c = static_cast<const Call&>(e);
      std::string out = c.func->name + "(";
      for (std::size_t i = 0; i < c.args.size(); ++i) {
        out += (i ? ", " : "") + toString(*c.args[i]);
      }
      return out + ")";
    }
    case ExprKind::kAggregate: {
      const auto& a = static_cast<const AggregateExpr&>(e);
      std::string out = aggregateOpName(a.op);
      if (a.without || !a.grouping.empty()) {
        out += (a.without ? " without " : " by ") + labelList(a.grouping);
      }
      out += " (";
      if (a.param) {
        out += toString(*a.param) + ", ";
      }
      return out + toString(*a.expr) + ")";
    }
    case ExprKind::kBinary: {
      const auto& b = static_cast<const BinaryExpr&>(e);
      std::string op = binaryOpName(b.op);
      if (b.return_bool) {
        op += " bool";
      }
      if (b.matching) {
        const VectorMatching& m = *b.matching;
        if (m.on || !m.labels.empty()) {
          op += (m.on ? " on" : " ignoring") + labelList(m.labels);
        }
        if (m.card == Cardinality::kManyToOne || m.card == Cardinality::kOneToMany) {
          op += (m.card == Cardinality::kManyToOne ? " group_left" : " group_right") +
                labelList(m.include);
        }
      }
      return toString(*b.lhs) + " " + op + " " + toString(*b.rhs);
    }
  }
  return "";
}

}  // namespace vigil::promql
