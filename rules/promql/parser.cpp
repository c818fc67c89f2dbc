// A recursive-descent parser with precedence climbing for PromQL's binary operators, and the
// type checks Prometheus's parser makes, with the same wording where users see it.
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "lexer.h"
#include "vigil/duration.h"
#include "vigil/rules/promql_parser.h"

namespace vigil::promql {

std::string ParseError::toString() const {
  return std::to_string(line) + ":" + std::to_string(column) + ": parse error: " + message;
}

namespace {

// Thrown inside the parser only; parse() turns it into a ParseError. Never crosses the API.
struct Failure {
  int pos;
  std::string message;
};

int precedence(Tok t) {
  switch (t) {
    case Tok::kOr:
      return 1;
    case Tok::kAnd:
    case Tok::kUnless:
      return 2;
    case Tok::kEqlc:
    case Tok::kNeq:
    case Tok::kLte:
    case Tok::kLss:
    case Tok::kGte:
    case Tok::kGtr:
      return 3;
    case Tok::kAdd:
    case Tok::kSub:
      return 4;
    case Tok::kMul:
    case Tok::kDiv:
    case Tok::kMod:
    case Tok::kAtan2:
      return 5;
    case Tok::kPow:
      return 6;
    default:
      return 0;
  }
}

BinaryOp binaryOp(Tok t) {
  switch (t) {
    case Tok::kOr:
      return BinaryOp::kOr;
    case Tok::kAnd:
      return BinaryOp::kAnd;
    case Tok::kUnless:
      return BinaryOp::kUnless;
    case Tok::kEqlc:
      return BinaryOp::kEq;
    case Tok::kNeq:
      return BinaryOp::kNe;
    case Tok::kLte:
      return BinaryOp::kLe;
    case Tok::kLss:
      return BinaryOp::kLt;
    case Tok::kGte:
      return BinaryOp::kGe;
    case Tok::kGtr:
      return BinaryOp::kGt;
    case Tok::kAdd:
      return BinaryOp::kAdd;
    case Tok::kSub:
      return BinaryOp::kSub;
    case Tok::kMul:
      return BinaryOp::kMul;
    case Tok::kDiv:
      return BinaryOp::kDiv;
    case Tok::kMod:
      return BinaryOp::kMod;
    case Tok::kAtan2:
      return BinaryOp::kAtan2;
    default:
      return BinaryOp::kPow;
  }
}

AggregateOp aggregateOp(const std::string& lowered) {
  static const std::pair<const char*, AggregateOp> kOps[] = {
      {"sum", AggregateOp::kSum},
      {"avg", AggregateOp::kAvg},
      {"count", AggregateOp::kCount},
      {"min", AggregateOp::kMin},
      {"max", AggregateOp::kMax},
      {"group", AggregateOp::kGroup},
      {"stddev", AggregateOp::kStddev},
      {"stdvar", AggregateOp::kStdvar},
      {"topk", AggregateOp::kTopk},
      {"bottomk", AggregateOp::kBottomk},
      {"count_values", AggregateOp::kCountValues},
      {"quantile", AggregateOp::kQuantile}};
  for (const auto& [name, op] : kOps) {
    if (lowered == name) {
      return op;
    }
  }
  return AggregateOp::kSum;
}

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  ExprPtr parseAll() {
    if (peek().type == Tok::kEof) {
      fail(peek().pos, "no expression found in input");
    }
    ExprPtr e = parseExpr(1);
    if (peek().type != Tok::kEof) {
      unexpected("");
    }
    return e;
  }

 private:
  const Token& peek(std::size_t ahead = 0) const {
    const std::size_t i = std::min(pos_ + ahead, toks_.size() - 1);
    return toks_[i];
  }
  const Token& take() {
    const Token& t = peek();
    if (t.type == Tok::kError) {
      fail(t.pos, t.text);
    }
    if (pos_ < toks_.size() - 1) {
      ++pos_;
    }
    return t;
  }
  [[noreturn]] void fail(int pos, std::string message) { throw Failure{pos, std::move(message)}; }

  // The tree's depth is bounded while it is built (an upper bound: each operator of a chain
  // counts as a level for everything after it), so that neither this recursive parser nor the
  // evaluator and destructors that walk the tree run out of stack on a query nested thousands
  // deep. Prometheus has no such limit (Go stacks grow); no query written by hand nears it.
  struct DepthGuard {
    explicit DepthGuard(int& depth) : depth(depth), saved(depth) {}
    ~DepthGuard() { depth = saved; }
    int& depth;
    const int saved;
  };
  void deeper(int pos) {
    if (++depth_ > kMaxExprDepth) {
      fail(pos, "expression nested more than " + std::to_string(kMaxExprDepth) +
                    " levels deep (parentheses, calls and operators)");
    }
  }
  [[noreturn]] void unexpected(const std::string& context) {
    const Token& t = peek();
    if (t.type == Tok::kError) {
      fail(t.pos, t.text);
    }
    std::string what =
        t.type == Tok::kEof ? "end of input"
        : t.type == Tok::kIdentifier || t.type == Tok::kNumber || t.type == Tok::kDuration
            ? std::string(tokenName(t.type)) + " \"" + t.text + "\""
            : tokenName(t.type);
    fail(t.pos, "unexpected " + what + (context.empty() ? "" : " " + context));
  }
  const Token& expect(Tok type, const std::string& context) {
    if (peek().type != type) {
      unexpected(context + ", expected " + tokenName(type));
    }
    return take();
  }

  ExprPtr parseExpr(int min_prec) {
    const DepthGuard guard(depth_);
    deeper(peek().pos);
    ExprPtr lhs = parseUnary();
    for (;;) {
      const Tok t = peek().type;
      const int prec = precedence(t);
      if (prec == 0 || prec < min_prec) {
        return lhs;
      }
      const int op_pos = take().pos;
      deeper(op_pos);  // the chain so far becomes the left operand, a level down
      auto bin = std::make_unique<BinaryExpr>();
      bin->op = binaryOp(t);
      parseBinaryModifiers(*bin);
      // ^ is right-associative; everything else left-associative.
      ExprPtr rhs = parseExpr(t == Tok::kPow ? prec : prec + 1);
      bin->pos = {lhs->pos.start, rhs->pos.end};
      bin->lhs = std::move(lhs);
      bin->rhs = std::move(rhs);
      checkBinary(*bin, op_pos);
      lhs = std::move(bin);
    }
  }

  void parseBinaryModifiers(BinaryExpr& bin) {
    if (peek().type == Tok::kBool) {
      take();
      bin.return_bool = true;
    }
    if (peek().type == Tok::kOn || peek().type == Tok::kIgnoring) {
      VectorMatching m;
      m.on = take().type == Tok::kOn;
      m.labels = parseLabelList();
      m.labels_id = internLabelList(m.labels);
      if (peek().type == Tok::kGroupLeft || peek().type == Tok::kGroupRight) {
        m.card = take().type == Tok::kGroupLeft ? Cardinality::kManyToOne : Cardinality::kOneToMany;
        if (peek().type == Tok::kLeftParen) {
          m.include = parseLabelList();
        }
      }
      bin.matching = std::move(m);
    } else if (peek().type == Tok::kGroupLeft || peek().type == Tok::kGroupRight) {
      unexpected("in binary expression: group modifiers need on(...) or ignoring(...) first");
    }
  }

  std::vector<std::string> parseLabelList() {
    expect(Tok::kLeftParen, "in grouping opts");
    std::vector<std::string> labels;
    while (peek().type != Tok::kRightParen) {
      const Token& t = peek();
      // Keywords are fine as label names: by (on), without (group).
      if (t.type == Tok::kIdentifier || (t.type >= Tok::kAnd && t.type <= Tok::kAggregator)) {
        if (!isValidLabelName(t.text)) {
          fail(t.pos, "invalid label name \"" + t.text + "\"");
        }
        labels.push_back(take().text);
      } else {
        unexpected("in grouping opts, expected label");
      }
      if (peek().type == Tok::kComma) {
        take();
      } else if (peek().type != Tok::kRightParen) {
        unexpected("in grouping opts, expected \",\" or \")\"");
      }
    }
    take();
    return labels;
  }

  ExprPtr parseUnary() {
    const Tok t = peek().type;
    if (t == Tok::kAdd || t == Tok::kSub) {
      const int start = take().pos;
      // Unary minus binds like multiplication: -a^b is -(a^b), -a*b is (-a)*b.
      ExprPtr operand = parseExpr(precedence(Tok::kPow));
      const ValueType vt = operand->type();
      if (vt != ValueType::kScalar && vt != ValueType::kVector) {
        fail(start, std::string("unary expression only allowed on expressions of type scalar or "
                                "instant vector, got \"") +
                        valueTypeName(vt) + "\"");
      }
      if (operand->kind == ExprKind::kNumber) {
        auto* n = static_cast<NumberLiteral*>(operand.get());
        if (t == Tok::kSub) {
          n->value = -n->value;
        }
        n->pos.start = start;
        return operand;
      }
      auto u = std::make_unique<UnaryExpr>();
      u->op = t == Tok::kSub ? UnaryOp::kMinus : UnaryOp::kPlus;
      u->pos = {start, operand->pos.end};
      u->expr = std::move(operand);
      return u;
    }
    return parsePostfix(parsePrimary());
  }

  ExprPtr parsePrimary() {
    const Token& t = peek();
    switch (t.type) {
      case Tok::kNumber:
        return parseNumber();
      case Tok::kString: {
        auto s = std::make_unique<StringLiteral>();
        s->pos = {t.pos, peek(1).pos};  // strings are stored decoded: end at the next token
        s->value = take().text;
        return s;
      }
      case Tok::kLeftParen: {
        const int start = take().pos;
        auto p = std::make_unique<ParenExpr>();
        p->expr = parseExpr(1);
        const int end = expect(Tok::kRightParen, "in paren expression").pos + 1;
        p->pos = {start, end};
        return p;
      }
      case Tok::kLeftBrace:
        return parseSelector("", t.pos);
      case Tok::kAggregator:
        return parseAggregate();
      case Tok::kIdentifier: {
        if (peek(1).type == Tok::kLeftParen) {
          return parseCall();
        }
        const Token& name = take();
        return parseSelector(name.text, name.pos);
      }
      default:
        unexpected("");
    }
  }

  ExprPtr parseNumber() {
    const Token& t = take();
    auto n = std::make_unique<NumberLiteral>();
    n->pos = {t.pos, t.pos + static_cast<int>(t.text.size())};
    std::string lowered;
    for (char c : t.text) {
      lowered += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (lowered == "inf") {
      n->value = std::numeric_limits<double>::infinity();
    } else if (lowered == "nan") {
      n->value = std::numeric_limits<double>::quiet_NaN();
    } else if (lowered.rfind("0x", 0) == 0) {
      errno = 0;
      n->value = static_cast<double>(std::strtoull(t.text.c_str() + 2, nullptr, 16));
      if (errno == ERANGE) {
        fail(t.pos, "number out of range: \"" + t.text + "\"");
      }
    } else {
      n->value = std::strtod(t.text.c_str(), nullptr);
    }
    return n;
  }

  int64_t parseDurationToken(const std::string& context) {
    const Token& t = peek();
    if (t.type != Tok::kDuration && !(t.type == Tok::kNumber && t.text == "0")) {
      unexpected(context + ", expected duration");
    }
    take();
    auto d = parseDuration(t.text);
    if (!d) {
      fail(t.pos, "invalid duration \"" + t.text + "\"");
    }
    return d->count();
  }

  ExprPtr parseSelector(const std::string& name, int start) {
    auto vs = std::make_unique<VectorSelector>();
    vs->name = name;
    int end = start + static_cast<int>(name.size());
    if (!name.empty()) {
      vs->matchers.push_back(*LabelMatcher::create(MatchType::kEqual, "__name__", name));
    }
    if (peek().type == Tok::kLeftBrace) {
      take();
      while (peek().type != Tok::kRightBrace) {
        const Token& label = peek();
        if (label.type != Tok::kIdentifier) {
          unexpected("in label matching, expected label");
        }
        take();
        const Token& op = peek();
        MatchType mt;
        switch (op.type) {
          case Tok::kAssign:
            mt = MatchType::kEqual;
            break;
          case Tok::kNeq:
            mt = MatchType::kNotEqual;
            break;
          case Tok::kEqlRegex:
            mt = MatchType::kRegexMatch;
            break;
          case Tok::kNeqRegex:
            mt = MatchType::kRegexNoMatch;
            break;
          default:
            unexpected("in label matching, expected one of \"=\", \"!=\", \"=~\" or \"!~\"");
        }
        take();
        const Token& value = peek();
        if (value.type != Tok::kString) {
          unexpected("in label matching, expected string");
        }
        take();
        if (label.text == "__name__" && !name.empty()) {
          fail(label.pos,
               "metric name must not be set twice: \"" + name + "\" or \"" + value.text + "\"");
        }
        auto m = LabelMatcher::create(mt, label.text, value.text);
        if (!m) {
          fail(value.pos, m.status().message());
        }
        vs->matchers.push_back(std::move(*m));
        if (peek().type == Tok::kComma) {
          take();
        } else if (peek().type != Tok::kRightBrace) {
          unexpected("in label matching, expected \",\" or \"}\"");
        }
      }
      end = take().pos + 1;
    }
    vs->pos = {start, end};
    bool any_non_empty = false;
    for (const auto& m : vs->matchers) {
      any_non_empty = any_non_empty || !m.matches("");
    }
    if (!any_non_empty) {
      fail(start, "vector selector must contain at least one non-empty matcher");
    }
    return vs;
  }

  ExprPtr parseCall() {
    const Token& name = take();
    const Function* f = findFunction(name.text);
    if (f == nullptr) {
      fail(name.pos, "unknown function with name \"" + name.text + "\"");
    }
    auto call = std::make_unique<Call>();
    call->func = f;
    take();  // (
    while (peek().type != Tok::kRightParen) {
      call->args.push_back(parseExpr(1));
      if (peek().type == Tok::kComma) {
        take();
        if (peek().type == Tok::kRightParen) {
          unexpected("in function call, expected expression");
        }
      } else if (peek().type != Tok::kRightParen) {
        unexpected("in call to function \"" + f->name + "\", expected \",\" or \")\"");
      }
    }
    call->pos = {name.pos, take().pos + 1};
    checkCall(*call, name.pos);
    return call;
  }

  ExprPtr parseAggregate() {
    const Token& op_tok = take();
    auto agg = std::make_unique<AggregateExpr>();
    agg->op = aggregateOp(op_tok.text);
    bool grouped = false;
    auto grouping = [&] {
      if (peek().type == Tok::kBy || peek().type == Tok::kWithout) {
        if (grouped) {
          unexpected("in aggregation: grouping given twice");
        }
        agg->without = take().type == Tok::kWithout;
        agg->grouping = parseLabelList();
        agg->grouping_id = internLabelList(agg->grouping);
        grouped = true;
      }
    };
    grouping();
    expect(Tok::kLeftParen, "in aggregation");
    const bool has_param = agg->op == AggregateOp::kTopk || agg->op == AggregateOp::kBottomk ||
                           agg->op == AggregateOp::kQuantile ||
                           agg->op == AggregateOp::kCountValues;
    if (peek().type == Tok::kRightParen) {
      fail(peek().pos, "no arguments for aggregate expression provided");
    }
    ExprPtr first = parseExpr(1);
    if (has_param) {
      expect(Tok::kComma, "in aggregation");
      agg->param = std::move(first);
      agg->expr = parseExpr(1);
    } else {
      agg->expr = std::move(first);
    }
    if (peek().type == Tok::kComma) {
      fail(peek().pos, has_param ? "wrong number of arguments for aggregate expression provided, "
                                   "expected 2, got 3"
                                 : "wrong number of arguments for aggregate expression provided, "
                                   "expected 1, got 2");
    }
    int end = expect(Tok::kRightParen, "in aggregation").pos + 1;
    const std::size_t before = pos_;
    grouping();
    if (pos_ != before) {
      end = toks_[pos_ - 1].pos + 1;
    }
    agg->pos = {op_tok.pos, end};
    checkAggregate(*agg);
    return agg;
  }

  // Ranges, subqueries, offset and @ after an expression.
  ExprPtr parsePostfix(ExprPtr e) {
    for (;;) {
      const Tok t = peek().type;
      if (t == Tok::kLeftBracket) {
        e = parseRange(std::move(e));
      } else if (t == Tok::kOffset) {
        const int at = take().pos;
        bool negative = false;
        if (peek().type == Tok::kSub) {
          take();
          negative = true;
        }
        const int64_t d = parseDurationToken("in offset");
        if (negative) {
          // Prometheus 2.42 rejects these unless a feature flag is on; promtool has it off.
          fail(at, "negative offset is disabled");
        }
        setOffset(*e, d, at);
        e->pos.end = toks_[pos_ - 1].pos + static_cast<int>(toks_[pos_ - 1].text.size());
      } else if (t == Tok::kAt) {
        const int at = take().pos;
        AtKind kind = AtKind::kTimestamp;
        int64_t ms = 0;
        if (peek().type == Tok::kStart || peek().type == Tok::kEnd) {
          kind = take().type == Tok::kStart ? AtKind::kStart : AtKind::kEnd;
          expect(Tok::kLeftParen, "in @ modifier");
          expect(Tok::kRightParen, "in @ modifier");
        } else {
          bool negative = false;
          if (peek().type == Tok::kSub || peek().type == Tok::kAdd) {
            negative = take().type == Tok::kSub;
          }
          if (peek().type != Tok::kNumber) {
            unexpected("in @ modifier, expected timestamp, start() or end()");
          }
          auto n = parseNumber();
          double secs = static_cast<NumberLiteral*>(n.get())->value * (negative ? -1 : 1);
          if (!std::isfinite(secs) || std::fabs(secs) > kMaxTimeSeconds) {
            fail(at, "timestamp out of bounds for @ modifier: " + std::to_string(secs));
          }
          ms = static_cast<int64_t>(std::llround(secs * 1000));
        }
        setAt(*e, kind, ms, at);
        e->pos.end = toks_[pos_ - 1].pos + static_cast<int>(toks_[pos_ - 1].text.size());
      } else {
        return e;
      }
    }
  }

  ExprPtr parseRange(ExprPtr e) {
    const int open = take().pos;
    const int64_t range = parseDurationToken("in subquery or range selector");
    if (peek().type == Tok::kColon) {
      take();
      int64_t step = 0;
      if (peek().type != Tok::kRightBracket) {
        step = parseDurationToken("in subquery");
      }
      const int end = expect(Tok::kRightBracket, "in subquery").pos + 1;
      if (e->type() != ValueType::kVector) {
        fail(e->pos.start, std::string("subquery is only allowed on instant vector, got ") +
                               valueTypeName(e->type()) + " in \"" + toString(*e) + "\" instead");
      }
      auto sq = std::make_unique<Subquery>();
      sq->pos = {e->pos.start, end};
      sq->expr = std::move(e);
      sq->range_ms = range;
      sq->step_ms = step;
      if (range == 0) {
        fail(open, "duration must be greater than 0");
      }
      return sq;
    }
    const int end = expect(Tok::kRightBracket, "in range selector").pos + 1;
    if (e->kind != ExprKind::kVectorSelector) {
      fail(e->pos.start, "ranges only allowed for vector selectors");
    }
    const auto* vs = static_cast<const VectorSelector*>(e.get());
    if (vs->offset_ms != 0 || vs->at != AtKind::kNone) {
      fail(open, "no offset or @ modifiers allowed before range");
    }
    if (range == 0) {
      fail(open, "duration must be greater than 0");
    }
    auto ms = std::make_unique<MatrixSelector>();
    ms->pos = {e->pos.start, end};
    ms->selector = std::move(e);
    ms->range_ms = range;
    return ms;
  }

  void setOffset(Expr& e, int64_t d, int pos) {
    int64_t* slot = nullptr;
    switch (e.kind) {
      case ExprKind::kVectorSelector:
        slot = &static_cast<VectorSelector&>(e).offset_ms;
        break;
      case ExprKind::kMatrixSelector:
        slot = &static_cast<VectorSelector&>(*static_cast<MatrixSelector&>(e).selector).offset_ms;
        break;
      case ExprKind::kSubquery:
        slot = &static_cast<Subquery&>(e).offset_ms;
        break;
      default:
        fail(pos,
             "offset modifier must be preceded by an instant vector selector or range "
             "vector selector or a subquery");
    }
    if (*slot != 0) {
      fail(pos, "offset may not be set multiple times");
    }
    *slot = d;
  }

  void setAt(Expr& e, AtKind kind, int64_t ms, int pos) {
    AtKind* at = nullptr;
    int64_t* at_ms = nullptr;
    auto selectorSlots = [&](VectorSelector& vs) {
      at = &vs.at;
      at_ms = &vs.at_ms;
    };
    switch (e.kind) {
      case ExprKind::kVectorSelector:
        selectorSlots(static_cast<VectorSelector&>(e));
        break;
      case ExprKind::kMatrixSelector:
        selectorSlots(static_cast<VectorSelector&>(*static_cast<MatrixSelector&>(e).selector));
        break;
      case ExprKind::kSubquery:
        at = &static_cast<Subquery&>(e).at;
        at_ms = &static_cast<Subquery&>(e).at_ms;
        break;
      default:
        fail(pos,
             "@ modifier must be preceded by an instant vector selector or range vector "
             "selector or a subquery");
    }
    if (*at != AtKind::kNone) {
      fail(pos, "@ <timestamp> may not be set multiple times");
    }
    *at = kind;
    *at_ms = ms;
  }

  void checkBinary(BinaryExpr& bin, int op_pos) {
    const ValueType lt = bin.lhs->type();
    const ValueType rt = bin.rhs->type();
    auto operandOk = [](ValueType t) { return t == ValueType::kScalar || t == ValueType::kVector; };
    if (!operandOk(lt) || !operandOk(rt)) {
      fail(op_pos, "binary expression must contain only scalar and instant vector types");
    }
    if (bin.return_bool && !isComparison(bin.op)) {
      fail(op_pos, "bool modifier can only be used on comparison operators");
    }
    if (isComparison(bin.op) && lt == ValueType::kScalar && rt == ValueType::kScalar &&
        !bin.return_bool) {
      fail(op_pos, "comparisons between scalars must use BOOL modifier");
    }
    const bool both_vectors = lt == ValueType::kVector && rt == ValueType::kVector;
    if (isSetOperator(bin.op)) {
      if (lt == ValueType::kScalar || rt == ValueType::kScalar) {
        fail(op_pos, std::string("set operator \"") + binaryOpName(bin.op) +
                         "\" not allowed in binary scalar expression");
      }
      if (bin.matching && bin.matching->card != Cardinality::kOneToOne) {
        fail(op_pos,
             std::string("no grouping allowed for \"") + binaryOpName(bin.op) + "\" operation");
      }
    }
    if (bin.matching && !both_vectors) {
      fail(op_pos, "vector matching only allowed between instant vectors");
    }
    if (both_vectors) {
      if (!bin.matching) {
        bin.matching = VectorMatching{};
      }
      if (isSetOperator(bin.op)) {
        bin.matching->card = Cardinality::kManyToMany;
      }
      if (bin.matching->on) {
        for (const auto& inc : bin.matching->include) {
          for (const auto& l : bin.matching->labels) {
            if (inc == l) {
              fail(op_pos, "label \"" + inc + "\" must not occur in ON and GROUP clause at once");
            }
          }
        }
      }
    }
  }

  void checkAggregate(const AggregateExpr& agg) {
    if (agg.expr->type() != ValueType::kVector) {
      fail(agg.expr->pos.start, std::string("expected type instant vector in aggregation "
                                            "expression, got ") +
                                    valueTypeName(agg.expr->type()));
    }
    if (agg.param) {
      const ValueType want =
          agg.op == AggregateOp::kCountValues ? ValueType::kString : ValueType::kScalar;
      if (agg.param->type() != want) {
        fail(agg.param->pos.start, std::string("expected type ") + valueTypeName(want) +
                                       " in aggregation parameter, got " +
                                       valueTypeName(agg.param->type()));
      }
    }
  }

  void checkCall(const Call& call, int pos) {
    const Function& f = *call.func;
    const int nargs = static_cast<int>(call.args.size());
    const int nparams = static_cast<int>(f.arg_types.size());
    if (f.variadic == 0 && nargs != nparams) {
      fail(pos, "expected " + std::to_string(nparams) + " argument(s) in call to \"" + f.name +
                    "\", got " + std::to_string(nargs));
    }
    if (f.variadic > 0) {
      const int min = nparams - f.variadic;
      if (nargs < min) {
        fail(pos, "expected at least " + std::to_string(min) + " argument(s) in call to \"" +
                      f.name + "\", got " + std::to_string(nargs));
      }
      if (nargs > nparams) {
        fail(pos, "expected at most " + std::to_string(nparams) + " argument(s) in call to \"" +
                      f.name + "\", got " + std::to_string(nargs));
      }
    }
    if (f.variadic < 0 && nargs < nparams - 1) {
      fail(pos, "expected at least " + std::to_string(nparams - 1) + " argument(s) in call to \"" +
                    f.name + "\", got " + std::to_string(nargs));
    }
    for (int i = 0; i < nargs; ++i) {
      const ValueType want = f.arg_types[static_cast<std::size_t>(std::min(i, nparams - 1))];
      const Expr* arg = call.args[static_cast<std::size_t>(i)].get();
      if (arg->type() != want) {
        fail(arg->pos.start, std::string("expected type ") + valueTypeName(want) +
                                 " in call to function \"" + f.name + "\", got " +
                                 valueTypeName(arg->type()));
      }
    }
  }

  std::vector<Token> toks_;
  std::size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

ParseResult parse(std::string_view text) {
  ParseResult result;
  auto toLineCol = [&](int pos) {
    ParseError e;
    for (int i = 0; i < pos && i < static_cast<int>(text.size()); ++i) {
      if (text[static_cast<std::size_t>(i)] == '\n') {
        ++e.line;
        e.column = 1;
      } else {
        ++e.column;
      }
    }
    return e;
  };
  try {
    Parser p(lex(text));
    result.expr = p.parseAll();
  } catch (const Failure& f) {
    ParseError e = toLineCol(f.pos);
    e.message = f.message;
    result.error = std::move(e);
    result.expr.reset();
  }
  return result;
}

}  // namespace vigil::promql
