// The PromQL evaluator. Each query reads every selector from the store once, for the window
// the whole query needs; evaluation then steps through time over those samples.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "functions.h"
#include "label_ops.h"
#include "vigil/rules/promql_engine.h"

namespace vigil::promql {

namespace {

struct SelectorData {
  SelectCache::SeriesList series;
};

// Errors inside evaluation unwind to instant()/range(), which turn them into a Status.
struct EvalError {
  Status status;
};

[[noreturn]] void fail(StatusCode code, std::string message) {
  throw EvalError{Status(code, std::move(message))};
}

// Which series belong together in vector matching and aggregation: a hash of the labels listed
// (`on`, `by`) or of all but those listed and __name__ (`ignoring`, `without`). A 64-bit hash
// as Prometheus uses, instead of a string per series: this runs for every series of every rule.
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ULL;
constexpr uint64_t kFnvPrime = 0x100000001b3ULL;

void hashLabel(uint64_t& h, const Label& l) {
  for (unsigned char c : l.name) {
    h = (h ^ c) * kFnvPrime;
  }
  h = (h ^ 0xff) * kFnvPrime;
  for (unsigned char c : l.value) {
    h = (h ^ c) * kFnvPrime;
  }
  h = (h ^ 0xff) * kFnvPrime;
}

uint64_t signatureOf(const LabelSet& labels, const std::vector<std::string>& names, bool on) {
  uint64_t h = kFnvOffset;
  for (const Label& l : labels) {
    const bool listed = std::find(names.begin(), names.end(), l.name) != names.end();
    if (on ? listed : (!listed && l.name != kMetricNameLabel)) {
      hashLabel(h, l);
    }
  }
  return h;
}

uint64_t signatureOf(const SeriesLabels& labels, const std::vector<std::string>& names, bool on) {
  if (!on && names.empty() && labels.borrowedFrom() != nullptr) {
    return labels.borrowedFrom()->signature;  // all labels but __name__, hashed when read
  }
  return signatureOf(labels.get(), names, on);
}

std::string describe(const LabelSet& labels) { return labelsToString(labels); }

// The operators whose results lose __name__. Prometheus 2.42 keeps it for atan2.
bool isArithmetic(BinaryOp op) {
  return op == BinaryOp::kAdd || op == BinaryOp::kSub || op == BinaryOp::kMul ||
         op == BinaryOp::kDiv || op == BinaryOp::kMod || op == BinaryOp::kPow;
}

// The value of `lhs op rhs`, and for comparisons whether the pair is kept.
std::pair<double, bool> applyOp(BinaryOp op, double lhs, double rhs) {
  switch (op) {
    case BinaryOp::kAdd:
      return {lhs + rhs, true};
    case BinaryOp::kSub:
      return {lhs - rhs, true};
    case BinaryOp::kMul:
      return {lhs * rhs, true};
    case BinaryOp::kDiv:
      return {lhs / rhs, true};
    case BinaryOp::kMod:
      return {std::fmod(lhs, rhs), true};
    case BinaryOp::kPow:
      return {std::pow(lhs, rhs), true};
    case BinaryOp::kAtan2:
      return {std::atan2(lhs, rhs), true};
    case BinaryOp::kEq:
      return {lhs, lhs == rhs};
    case BinaryOp::kNe:
      return {lhs, lhs != rhs};
    case BinaryOp::kGt:
      return {lhs, lhs > rhs};
    case BinaryOp::kLt:
      return {lhs, lhs < rhs};
    case BinaryOp::kGe:
      return {lhs, lhs >= rhs};
    case BinaryOp::kLe:
      return {lhs, lhs <= rhs};
    default:
      return {lhs, true};
  }
}

class Evaluator {
 public:
  Evaluator(const Store& store, const EngineOptions& options, int64_t start, int64_t end,
            int64_t step, SelectCache* cache = nullptr)
      : store_(store), options_(options), start_(start), end_(end), step_(step), cache_(cache) {
    if (options.timeout.count() > 0) {
      deadline_ = std::chrono::steady_clock::now() + options.timeout;
    }
  }

  // Reads every selector once, over the window the query can need.
  void prefetch(const Expr& e, int64_t extra_back) {
    switch (e.kind) {
      case ExprKind::kVectorSelector: {
        const auto& vs = static_cast<const VectorSelector&>(e);
        fetch(vs, extra_back + options_.lookback.count());
        return;
      }
      case ExprKind::kMatrixSelector: {
        const auto& ms = static_cast<const MatrixSelector&>(e);
        fetch(static_cast<const VectorSelector&>(*ms.selector), extra_back + ms.range_ms);
        return;
      }
      case ExprKind::kSubquery: {
        const auto& sq = static_cast<const Subquery&>(e);
        prefetch(*sq.expr, extra_back + sq.range_ms + sq.offset_ms + sq.step_ms + stepOr(sq));
        return;
      }
      case ExprKind::kUnary:
        prefetch(*static_cast<const UnaryExpr&>(e).expr, extra_back);
        return;
      case ExprKind::kParen:
        prefetch(*static_cast<const ParenExpr&>(e).expr, extra_back);
        return;
      case ExprKind::kBinary:
        prefetch(*static_cast<const BinaryExpr&>(e).lhs, extra_back);
        prefetch(*static_cast<const BinaryExpr&>(e).rhs, extra_back);
        return;
      case ExprKind::kAggregate: {
        const auto& a = static_cast<const AggregateExpr&>(e);
        prefetch(*a.expr, extra_back);
        if (a.param) {
          prefetch(*a.param, extra_back);
        }
        return;
      }
      case ExprKind::kCall:
        for (const auto& arg : static_cast<const Call&>(e).args) {
          prefetch(*arg, extra_back);
        }
        return;
      default:
        return;
    }
  }

  Value eval(const Expr& e, int64_t t) {
    // The clock is read every 256 nodes evaluated: cheap, and often enough to stop within a
    // small fraction of the timeout.
    if (deadline_ && (++evaluations_ & 0xff) == 0 &&
        std::chrono::steady_clock::now() > *deadline_) {
      fail(StatusCode::kDeadlineExceeded, "query timed out in expression evaluation");
    }
    switch (e.kind) {
      case ExprKind::kNumber:
        return Scalar{t, static_cast<const NumberLiteral&>(e).value};
      case ExprKind::kString:
        return String{t, static_cast<const StringLiteral&>(e).value};
      case ExprKind::kParen:
        return eval(*static_cast<const ParenExpr&>(e).expr, t);
      case ExprKind::kVectorSelector:
        return selectInstant(static_cast<const VectorSelector&>(e), t);
      case ExprKind::kMatrixSelector:
        return selectRange(static_cast<const MatrixSelector&>(e), t);
      case ExprKind::kSubquery:
        return subquery(static_cast<const Subquery&>(e), t);
      case ExprKind::kUnary:
        return unary(static_cast<const UnaryExpr&>(e), t);
      case ExprKind::kBinary:
        return binary(static_cast<const BinaryExpr&>(e), t);
      case ExprKind::kAggregate:
        return aggregate(static_cast<const AggregateExpr&>(e), t);
      case ExprKind::kCall:
        return call(static_cast<const Call&>(e), t);
    }
    fail(StatusCode::kInternal, "unknown expression kind");
  }

 private:
  int64_t stepOr(const Subquery& sq) const { return sq.step_ms != 0 ? sq.step_ms : step_; }

  static int64_t selectorTime(const VectorSelector& vs, int64_t t, int64_t start, int64_t end) {
    switch (vs.at) {
      case AtKind::kTimestamp:
        return vs.at_ms;
      case AtKind::kStart:
        return start;
      case AtKind::kEnd:
        return end;
      default:
        return t;
    }
  }

  void fetch(const VectorSelector& vs, int64_t back) {
    int64_t lo = start_;
    int64_t hi = end_;
    if (vs.at == AtKind::kTimestamp) {
      lo = std::min(lo, vs.at_ms);
      hi = std::max(hi, vs.at_ms);
    }
    const int64_t mint = lo - vs.offset_ms - back;
    const int64_t maxt = hi - vs.offset_ms;
    auto& data = fetched_[&vs];
    // Series come in creation order, as Prometheus's head returns them to queries: the order
    // of floating-point sums in aggregations depends on it in the last bits.
    if (cache_ != nullptr) {
      data.series = cache_->select(store_, vs.matchers, mint, maxt);
    } else {
      data.series = SelectCache::prepare(store_.select(vs.matchers, mint, maxt));
    }
    std::size_t samples = 0;
    for (const auto& s : *data.series) {
      samples += s.samples.size();
    }
    total_samples_ += samples;
    if (total_samples_ > options_.max_samples) {
      fail(StatusCode::kResourceExhausted,
           "query processing would load too many samples into memory in query execution");
    }
  }

  const SelectorData& data(const VectorSelector& vs) {
    auto it = fetched_.find(&vs);
    if (it == fetched_.end()) {
      // A selector reached outside the prefetched tree (a subquery's own steps): read it now.
      fetch(vs, options_.lookback.count());
      it = fetched_.find(&vs);
    }
    return it->second;
  }

  // The latest sample at or before `ref`, no older than the lookback and not followed by a
  // staleness marker: what an instant selector sees of a series.
  const Sample* visibleAt(const SelectedSeries& s, int64_t ref) const {
    auto it = std::upper_bound(s.samples.begin(), s.samples.end(), ref,
                               [](int64_t value, const Sample& p) { return value < p.t; });
    if (it == s.samples.begin()) {
      return nullptr;
    }
    --it;
    if (it->t < ref - options_.lookback.count()) {
      return nullptr;
    }
    if (!s.stale_at.empty()) {
      auto st = std::upper_bound(s.stale_at.begin(), s.stale_at.end(), ref);
      if (st != s.stale_at.begin() && *std::prev(st) > it->t) {
        return nullptr;
      }
    }
    return &*it;
  }

  // The samples of `s` in [mint, maxt], staleness markers left out as Prometheus leaves them
  // out of range vectors.
  static std::span<const Sample> window(const SelectedSeries& s, int64_t mint, int64_t maxt) {
    auto lo = std::lower_bound(s.samples.begin(), s.samples.end(), mint,
                               [](const Sample& p, int64_t value) { return p.t < value; });
    auto hi = std::upper_bound(lo, s.samples.end(), maxt,
                               [](int64_t value, const Sample& p) { return value < p.t; });
    return {lo, hi};
  }

 public:
  // A function's range-vector argument as views: into the store read for a matrix selector
  // (nothing copied), or into `held` for a subquery, which must outlive the views.
  std::vector<RangeView> rangeArgument(const Expr& arg, int64_t t, Value& held) {
    std::vector<RangeView> out;
    if (arg.kind == ExprKind::kMatrixSelector) {
      const auto& ms = static_cast<const MatrixSelector&>(arg);
      const auto& vs = static_cast<const VectorSelector&>(*ms.selector);
      const int64_t maxt = selectorTime(vs, t, start_, end_) - vs.offset_ms;
      for (const auto& s : *data(vs).series) {
        auto points = window(s, maxt - ms.range_ms, maxt);
        if (!points.empty()) {
          out.push_back({SeriesLabels::borrow(s), points});
        }
      }
      return out;
    }
    held = eval(arg, t);
    for (auto& rs : std::get<Matrix>(held)) {
      out.push_back({SeriesLabels(std::move(rs.metric)), rs.points});
    }
    return out;
  }

 private:
  Vector selectInstant(const VectorSelector& vs, int64_t t) {
    const int64_t ref = selectorTime(vs, t, start_, end_) - vs.offset_ms;
    Vector out;
    for (const auto& s : *data(vs).series) {
      const Sample* it = visibleAt(s, ref);
      if (it == nullptr) {
        continue;
      }
      out.push_back({SeriesLabels::borrow(s), t, it->v});
    }
    return out;
  }

  Matrix selectRange(const MatrixSelector& ms, int64_t t) {
    const auto& vs = static_cast<const VectorSelector&>(*ms.selector);
    const int64_t maxt = selectorTime(vs, t, start_, end_) - vs.offset_ms;
    const int64_t mint = maxt - ms.range_ms;
    Matrix out;
    for (const auto& s : *data(vs).series) {
      auto points = window(s, mint, maxt);
      if (!points.empty()) {
        out.push_back({s.labels, {points.begin(), points.end()}});
      }
    }
    return out;
  }

  Matrix subquery(const Subquery& sq, int64_t t) {
    int64_t ref = t;
    if (sq.at == AtKind::kTimestamp) {
      ref = sq.at_ms;
    } else if (sq.at == AtKind::kStart) {
      ref = start_;
    } else if (sq.at == AtKind::kEnd) {
      ref = end_;
    }
    const int64_t step = stepOr(sq);
    const int64_t end = ref - sq.offset_ms;
    int64_t begin = end - sq.range_ms;
    // Steps are aligned to multiples of the step, as Prometheus aligns them.
    int64_t first = step * (begin / step);
    if (first < begin) {
      first += step;
    }
    std::map<std::string, RangeSeries> series;
    for (int64_t ts = first; ts <= end; ts += step) {
      Value v = eval(*sq.expr, ts);
      const Vector* vec = std::get_if<Vector>(&v);
      if (vec == nullptr) {
        continue;
      }
      for (const auto& s : *vec) {
        auto& rs = series[labelsKey(s.metric)];
        if (rs.points.empty()) {
          rs.metric = s.metric;
        }
        rs.points.push_back({ts, s.v});
      }
    }
    Matrix out;
    for (auto& [key, rs] : series) {
      out.push_back(std::move(rs));
    }
    return out;
  }

  Value unary(const UnaryExpr& u, int64_t t) {
    Value v = eval(*u.expr, t);
    if (u.op == UnaryOp::kPlus) {
      return v;
    }
    if (auto* s = std::get_if<Scalar>(&v)) {
      s->v = -s->v;
      return v;
    }
    auto& vec = std::get<Vector>(v);
    for (auto& s : vec) {
      s.v = -s.v;
      s.metric.dropName();
    }
    return v;
  }

  Value binary(const BinaryExpr& b, int64_t t) {
    Value lv = eval(*b.lhs, t);
    Value rv = eval(*b.rhs, t);
    const auto* ls = std::get_if<Scalar>(&lv);
    const auto* rs = std::get_if<Scalar>(&rv);
    if (ls && rs) {
      auto [value, keep] = applyOp(b.op, ls->v, rs->v);
      if (isComparison(b.op)) {
        value = keep ? 1 : 0;  // the parser requires bool here
      }
      return Scalar{t, value};
    }
    if (ls || rs) {
      Vector vec = std::move(std::get<Vector>(ls ? rv : lv));
      const double scalar = ls ? ls->v : rs->v;
      const bool swap = ls != nullptr;
      Vector out;
      out.reserve(vec.size());
      for (auto& s : vec) {
        auto [value, keep] = swap ? applyOp(b.op, scalar, s.v) : applyOp(b.op, s.v, scalar);
        if (isComparison(b.op) && swap) {
          value = s.v;  // a comparison keeps the vector's value even when it is on the right
        }
        if (b.return_bool) {
          value = keep ? 1 : 0;
        } else if (!keep) {
          continue;
        }
        if (isArithmetic(b.op) || b.return_bool) {
          s.metric.dropName();
        }
        s.v = value;
        out.push_back(std::move(s));
      }
      return out;
    }
    return vectorBinary(b, std::get<Vector>(lv), std::get<Vector>(rv), t);
  }

  Vector vectorBinary(const BinaryExpr& b, Vector& lhs, Vector& rhs, int64_t t) {
    const VectorMatching& m = *b.matching;
    auto sig = [&](const SeriesLabels& ls) { return signatureOf(ls, m.labels, m.on); };
    Vector out;
    if (isSetOperator(b.op)) {
      std::unordered_set<uint64_t> rsigs;
      for (const auto& s : rhs) {
        rsigs.insert(sig(s.metric));
      }
      if (b.op == BinaryOp::kAnd || b.op == BinaryOp::kUnless) {
        for (auto& s : lhs) {
          if ((rsigs.count(sig(s.metric)) != 0) == (b.op == BinaryOp::kAnd)) {
            out.push_back(std::move(s));
          }
        }
        return out;
      }
      std::unordered_set<uint64_t> lsigs;
      for (auto& s : lhs) {
        lsigs.insert(sig(s.metric));
        out.push_back(std::move(s));
      }
      for (auto& s : rhs) {
        if (lsigs.count(sig(s.metric)) == 0) {
          out.push_back(std::move(s));
        }
      }
      return out;
    }
    // group_right: the right side is the "many" side; swap and swap back the operands.
    const bool swap = m.card == Cardinality::kOneToMany;
    Vector& many = swap ? rhs : lhs;
    Vector& one = swap ? lhs : rhs;
    std::unordered_map<uint64_t, const InstantSample*> one_side;
    for (const auto& s : one) {
      auto [it, inserted] = one_side.emplace(sig(s.metric), &s);
      if (!inserted) {
        fail(StatusCode::kInvalidArgument,
             "found duplicate series for the match group " + describeSig(s.metric, m) + " on the " +
                 (swap ? "left" : "right") + " hand-side of the operation: [" +
                 describe(it->second->metric) + ", " + describe(s.metric) +
                 "];many-to-many matching not allowed: matching labels must be unique on one side");
      }
    }
    std::unordered_set<uint64_t> matched_one_to_one;
    std::set<std::string> result_keys;
    for (auto& s : many) {
      const uint64_t key = sig(s.metric);
      auto it = one_side.find(key);
      if (it == one_side.end()) {
        continue;
      }
      const InstantSample& o = *it->second;
      if (m.card == Cardinality::kOneToOne) {
        if (!matched_one_to_one.insert(key).second) {
          fail(StatusCode::kInvalidArgument,
               "multiple matches for labels: many-to-one matching must be explicit "
               "(group_left/group_right)");
        }
      }
      const double lv = swap ? o.v : s.v;
      const double rv = swap ? s.v : o.v;
      auto [value, keep] = applyOp(b.op, lv, rv);
      if (b.return_bool) {
        value = keep ? 1 : 0;
      } else if (!keep) {
        continue;
      }
      SeriesLabels metric = std::move(s.metric);  // `many` is not read again
      if (isArithmetic(b.op) || b.return_bool) {
        metric.dropName();
      }
      if (m.card == Cardinality::kOneToOne) {
        if (m.on) {
          LabelSet kept;
          for (const auto& l : metric) {
            if (std::find(m.labels.begin(), m.labels.end(), l.name) != m.labels.end()) {
              kept.push_back(l);
            }
          }
          metric = std::move(kept);
        } else if (!m.labels.empty()) {
          for (const auto& name : m.labels) {
            eraseLabel(metric.mut(), name);
          }
        }
      }
      for (const auto& name : m.include) {
        setLabel(metric.mut(), name, labelValue(o.metric, name));
      }
      if (m.card != Cardinality::kOneToOne && !result_keys.insert(labelsKey(metric)).second) {
        fail(StatusCode::kInvalidArgument,
             "multiple matches for labels: grouping labels must ensure unique matches");
      }
      out.push_back({std::move(metric), t, value});
    }
    return out;
  }

  static std::string describeSig(const LabelSet& ls, const VectorMatching& m) {
    LabelSet sig;
    for (const auto& l : ls) {
      const bool listed = std::find(m.labels.begin(), m.labels.end(), l.name) != m.labels.end();
      if (m.on ? listed : (!listed && l.name != kMetricNameLabel)) {
        sig.push_back(l);
      }
    }
    std::string s = labelsToString(sig);
    return s;
  }

  Value aggregate(const AggregateExpr& a, int64_t t) {
    Value inner = eval(*a.expr, t);
    Vector& vec = std::get<Vector>(inner);
    double param = 0;
    std::string label_param;
    if (a.param) {
      Value p = eval(*a.param, t);
      if (auto* s = std::get_if<Scalar>(&p)) {
        param = s->v;
      } else {
        label_param = std::get<String>(p).v;
        if (!isValidLabelName(label_param)) {
          fail(StatusCode::kInvalidArgument, "invalid label name \"" + label_param + "\"");
        }
      }
    }
    return aggregateVector(a, vec, param, label_param, t);
  }

  Vector aggregateVector(const AggregateExpr& a, Vector& vec, double param,
                         const std::string& label_param, int64_t t);

  Value call(const Call& c, int64_t t);

  const Store& store_;
  const EngineOptions& options_;
  int64_t start_;
  int64_t end_;
  int64_t step_;
  SelectCache* cache_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  uint64_t evaluations_ = 0;
  std::unordered_map<const VectorSelector*, SelectorData> fetched_;
  std::size_t total_samples_ = 0;
};

struct Group {
  LabelSet metric;
  double value = 0;
  double mean = 0;
  double count = 0;
  std::vector<double> values;
  std::vector<InstantSample> top;
};

Vector Evaluator::aggregateVector(const AggregateExpr& a, Vector& vec, double param,
                                  const std::string& label_param, int64_t t) {
  auto groupMetric = [&](const LabelSet& ls) {
    LabelSet out;
    for (const auto& l : ls) {
      const bool listed =
          std::find(a.grouping.begin(), a.grouping.end(), l.name) != a.grouping.end();
      if (a.without ? (!listed && l.name != kMetricNameLabel) : listed) {
        out.push_back(l);
      }
    }
    return out;
  };
  // Groups in order of first appearance, found by the hash of their labels; count_values
  // groups also by the value, so they hash their whole label set.
  std::vector<Group> groups;
  std::unordered_map<uint64_t, std::size_t> group_index;
  if ((a.op == AggregateOp::kTopk || a.op == AggregateOp::kBottomk) && param < 1) {
    return {};
  }
  const auto k = static_cast<std::size_t>(std::min<double>(param, 1e9));
  for (auto& s : vec) {
    LabelSet metric;
    uint64_t key = 0;
    if (a.op == AggregateOp::kCountValues) {
      metric = groupMetric(s.metric);
      setLabel(metric, label_param, formatPlainFloat(s.v));
      key = signatureOf(metric, {}, false);
    } else {
      key = signatureOf(s.metric, a.grouping, !a.without);
    }
    auto [it, inserted] = group_index.try_emplace(key, groups.size());
    if (inserted) {
      Group& g = groups.emplace_back();
      g.metric = a.op == AggregateOp::kCountValues ? std::move(metric) : groupMetric(s.metric);
      g.value = s.v;
      g.mean = s.v;
      g.count = 1;
      switch (a.op) {
        case AggregateOp::kStddev:
        case AggregateOp::kStdvar:
          g.value = 0;
          break;
        case AggregateOp::kCount:
        case AggregateOp::kGroup:
        case AggregateOp::kCountValues:
          g.value = 1;
          break;
        case AggregateOp::kQuantile:
          g.values.push_back(s.v);
          break;
        case AggregateOp::kTopk:
        case AggregateOp::kBottomk:
          g.top.push_back(std::move(s));
          break;
        default:
          break;
      }
      continue;
    }
    Group& g = groups[it->second];
    g.count += 1;
    switch (a.op) {
      case AggregateOp::kSum:
        g.value += s.v;
        break;
      case AggregateOp::kAvg:
        if (std::isinf(g.mean)) {
          if (std::isinf(s.v) && (g.mean > 0) == (s.v > 0)) {
            break;
          }
          if (!std::isinf(s.v) && !std::isnan(s.v)) {
            break;
          }
        }
        g.mean += s.v / g.count - g.mean / g.count;
        break;
      case AggregateOp::kCount:
      case AggregateOp::kCountValues:
        g.value += 1;
        break;
      case AggregateOp::kGroup:
        break;
      case AggregateOp::kMax:
        if (g.value < s.v || std::isnan(g.value)) {
          g.value = s.v;
        }
        break;
      case AggregateOp::kMin:
        if (g.value > s.v || std::isnan(g.value)) {
          g.value = s.v;
        }
        break;
      case AggregateOp::kStddev:
      case AggregateOp::kStdvar: {
        const double delta = s.v - g.mean;
        g.mean += delta / g.count;
        g.value += delta * (s.v - g.mean);
        break;
      }
      case AggregateOp::kQuantile:
        g.values.push_back(s.v);
        break;
      case AggregateOp::kTopk:
      case AggregateOp::kBottomk:
        g.top.push_back(std::move(s));
        break;
    }
  }
  Vector out;
  out.reserve(groups.size());
  for (Group& g : groups) {
    switch (a.op) {
      case AggregateOp::kAvg:
        out.push_back({std::move(g.metric), t, g.mean});
        break;
      case AggregateOp::kStddev:
        out.push_back({std::move(g.metric), t, std::sqrt(g.value / g.count)});
        break;
      case AggregateOp::kStdvar:
        out.push_back({std::move(g.metric), t, g.value / g.count});
        break;
      case AggregateOp::kQuantile:
        out.push_back({std::move(g.metric), t, quantile(param, g.values)});
        break;
      case AggregateOp::kTopk:
      case AggregateOp::kBottomk: {
        const bool top = a.op == AggregateOp::kTopk;
        // NaN sorts last either way, as Prometheus's heaps order it.
        std::stable_sort(g.top.begin(), g.top.end(),
                         [top](const InstantSample& x, const InstantSample& y) {
                           if (std::isnan(x.v)) {
                             return false;
                           }
                           if (std::isnan(y.v)) {
                             return true;
                           }
                           return top ? x.v > y.v : x.v < y.v;
                         });
        for (std::size_t i = 0; i < g.top.size() && i < k; ++i) {
          g.top[i].t = t;
          out.push_back(std::move(g.top[i]));
        }
        break;
      }
      default:
        out.push_back({std::move(g.metric), t, g.value});
    }
  }
  return out;
}

}  // namespace

Value Evaluator::call(const Call& c, int64_t t) {
  std::vector<Value> args;
  args.reserve(c.args.size());
  std::vector<RangeView> matrix;
  for (std::size_t i = 0; i < c.args.size(); ++i) {
    const auto& types = c.func->arg_types;
    if (!types.empty() && types[std::min(i, types.size() - 1)] == ValueType::kMatrix) {
      const Expr* arg = c.args[i].get();
      while (arg->kind == ExprKind::kParen) {
        arg = static_cast<const ParenExpr*>(arg)->expr.get();
      }
      matrix = rangeArgument(*arg, t, args.emplace_back());
    } else {
      args.push_back(eval(*c.args[i], t));
    }
  }
  FunctionContext ctx{t, c, args, std::move(matrix), 0, 0, {}};
  if (c.func->name == "absent" || c.func->name == "absent_over_time") {
    ctx.absent_labels = absentLabels(*c.args[0]);
  }
  if (c.func->name == "timestamp") {
    // timestamp() of a plain selector is the sample's own time, not the evaluation time.
    const Expr* arg = c.args[0].get();
    while (arg->kind == ExprKind::kParen) {
      arg = static_cast<const ParenExpr*>(arg)->expr.get();
    }
    if (arg->kind == ExprKind::kVectorSelector) {
      const auto& vs = static_cast<const VectorSelector&>(*arg);
      const int64_t ref = selectorTime(vs, t, start_, end_) - vs.offset_ms;
      Vector out;
      for (const auto& s : *data(vs).series) {
        const Sample* it = visibleAt(s, ref);
        if (it == nullptr) {
          continue;
        }
        SeriesLabels metric = SeriesLabels::borrow(s);
        metric.dropName();
        out.push_back({std::move(metric), t, static_cast<double>(it->t) / 1000});
      }
      return out;
    }
  }
  if (c.func->name == "predict_linear" || c.func->name == "rate" || c.func->name == "increase" ||
      c.func->name == "delta") {
    // Range bounds for extrapolation: the selector's window at this step.
    const Expr* arg = c.args[0].get();
    while (arg->kind == ExprKind::kParen) {
      arg = static_cast<const ParenExpr*>(arg)->expr.get();
    }
    if (arg->kind == ExprKind::kMatrixSelector) {
      const auto& ms = static_cast<const MatrixSelector&>(*arg);
      const auto& vs = static_cast<const VectorSelector&>(*ms.selector);
      ctx.range_end = selectorTime(vs, t, start_, end_) - vs.offset_ms;
      ctx.range_start = ctx.range_end - ms.range_ms;
    } else if (arg->kind == ExprKind::kSubquery) {
      const auto& sq = static_cast<const Subquery&>(*arg);
      ctx.range_end = t - sq.offset_ms;
      ctx.range_start = ctx.range_end - sq.range_ms;
    }
  }
  Result<Value> r = callFunction(ctx);
  if (!r) {
    throw EvalError{r.status()};
  }
  return std::move(r).value();
}

void SeriesLabels::dropName() {
  if (borrowed_ != nullptr) {
    name_dropped_ = true;
  } else {
    eraseLabel(owned_, kMetricNameLabel);
  }
}

uint64_t labelSignature(const LabelSet& labels) { return signatureOf(labels, {}, false); }

SelectCache::SeriesList SelectCache::prepare(std::vector<SeriesSamples> selected) {
  auto out = std::make_shared<std::vector<SelectedSeries>>();
  out->reserve(selected.size());
  for (auto& in : selected) {
    SelectedSeries& s = out->emplace_back();
    s.labels = std::move(in.labels);
    for (const auto& l : s.labels) {
      if (l.name != kMetricNameLabel) {
        s.labels_without_name.push_back(l);
      }
    }
    s.signature = labelSignature(s.labels_without_name);
    const bool has_stale = std::any_of(in.samples.begin(), in.samples.end(),
                                       [](const Sample& p) { return isStaleNaN(p.v); });
    if (!has_stale) {
      s.samples = std::move(in.samples);
      continue;
    }
    s.samples.reserve(in.samples.size());
    for (const auto& p : in.samples) {
      if (isStaleNaN(p.v)) {
        s.stale_at.push_back(p.t);
      } else {
        s.samples.push_back(p);
      }
    }
  }
  return out;
}

SelectCache::SeriesList SelectCache::select(const Store& store,
                                            const std::vector<LabelMatcher>& matchers, int64_t mint,
                                            int64_t maxt) {
  std::string key = std::to_string(mint) + ',' + std::to_string(maxt);
  for (const auto& m : matchers) {
    key += ',';
    key += m.toString();
  }
  auto [it, inserted] = entries_.try_emplace(std::move(key));
  if (inserted) {
    it->second.matchers = matchers;
    it->second.series = prepare(store.select(matchers, mint, maxt));
  }
  return it->second.series;
}

void SelectCache::invalidate(std::string_view metric_name) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const auto& matchers = it->second.matchers;
    const bool may_match = std::all_of(matchers.begin(), matchers.end(), [&](const auto& m) {
      return m.name() != kMetricNameLabel || m.matches(metric_name);
    });
    it = may_match ? entries_.erase(it) : std::next(it);
  }
}

Result<Value> Engine::instant(const Expr& expr, int64_t t_ms, SelectCache* cache) const {
  try {
    Evaluator ev(store_, options_, t_ms, t_ms, 1, cache);
    ev.prefetch(expr, 0);
    Value v = ev.eval(expr, t_ms);
    if (auto* vec = std::get_if<Vector>(&v)) {
      for (auto& s : *vec) {
        s.metric.own();  // the store read it borrows from goes away with the evaluator
      }
    }
    return v;
  } catch (const EvalError& e) {
    return e.status;
  }
}

Result<Matrix> Engine::range(const Expr& expr, int64_t start_ms, int64_t end_ms,
                             int64_t step_ms) const {
  if (step_ms <= 0) {
    return invalidArgument("zero or negative query resolution step widths are not accepted");
  }
  try {
    Evaluator ev(store_, options_, start_ms, end_ms, step_ms);
    ev.prefetch(expr, 0);
    // Series are found by a hash of their labels at every step and copied once; the result is
    // sorted by labels at the end, as Prometheus sorts it.
    std::unordered_map<uint64_t, std::size_t> index;
    Matrix out;
    for (int64_t t = start_ms; t <= end_ms; t += step_ms) {
      Value v = ev.eval(expr, t);
      if (auto* s = std::get_if<Scalar>(&v)) {
        if (out.empty()) {
          out.emplace_back();
        }
        out[0].points.push_back({t, s->v});
      } else if (auto* vec = std::get_if<Vector>(&v)) {
        for (auto& s : *vec) {
          auto [it, inserted] = index.try_emplace(labelsHash(s.metric.get()), out.size());
          if (inserted) {
            out.push_back({s.metric.get(), {}});
          }
          out[it->second].points.push_back({t, s.v});
        }
      } else {
        return invalidArgument("range queries support only scalar and instant vector results");
      }
    }
    std::vector<std::pair<std::string, std::size_t>> order;
    order.reserve(out.size());
    for (std::size_t i = 0; i < out.size(); ++i) {
      order.emplace_back(labelsKey(out[i].metric), i);
    }
    std::sort(order.begin(), order.end());
    Matrix sorted;
    sorted.reserve(out.size());
    for (const auto& [key, i] : order) {
      sorted.push_back(std::move(out[i]));
    }
    return sorted;
  } catch (const EvalError& e) {
    return e.status;
  }
}

}  // namespace vigil::promql
