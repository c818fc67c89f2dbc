// The PromQL evaluator. Each query reads every selector from the store once, for the window
// the whole query needs; evaluation then steps through time over those samples.
#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <memory>
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

// A query's times reach the ends of int64 (an @ timestamp or API time of ±9.2e15 s, an offset
// of centuries), so a time moved by a duration saturates instead of wrapping around.
int64_t timeMinus(int64_t t, int64_t d) {
  int64_t r = 0;
  if (__builtin_sub_overflow(t, d, &r)) {
    return d > 0 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max();
  }
  return r;
}

int64_t timePlus(int64_t t, int64_t d) {
  int64_t r = 0;
  if (__builtin_add_overflow(t, d, &r)) {
    return d > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return r;
}

// Which series belong together in vector matching and aggregation: a hash of the labels listed
// (`on`, `by`) or of all but those listed and __name__ (`ignoring`, `without`). A 64-bit hash
// as Prometheus uses, instead of a string per series: this runs for every series of every rule,
// so each name and value is hashed a word at a time (std::hash), and the two are mixed in
// order into the signature.
constexpr uint64_t kSignatureSeed = 0xcbf29ce484222325ULL;

void hashLabel(uint64_t& h, const Label& l) {
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ULL;
  const std::hash<std::string_view> hash;
  h = (std::rotl(h, 23) ^ hash(l.name)) * kMul;
  h = (std::rotl(h, 23) ^ hash(l.value)) * kMul;
}

// With `drop_name`, as if `labels` had no __name__.
uint64_t signatureOf(const LabelSet& labels, const std::vector<std::string>& names, bool on,
                     bool drop_name = false) {
  uint64_t h = kSignatureSeed;
  for (const Label& l : labels) {
    if (drop_name && l.name == kMetricNameLabel) {
      continue;
    }
    const bool listed = std::find(names.begin(), names.end(), l.name) != names.end();
    if (on ? listed : (!listed && l.name != kMetricNameLabel)) {
      hashLabel(h, l);
    }
  }
  return h;
}

// `names_id`: internLabelList(names), or 0.
uint64_t signatureOf(const SeriesLabels& labels, const std::vector<std::string>& names, bool on,
                     uint32_t names_id) {
  const SelectedSeries* series = labels.borrowedFrom();
  if (series == nullptr) {
    return signatureOf(labels.get(), names, on);
  }
  if (!on && names.empty()) {
    return series->signature();  // all labels but __name__, hashed once per read
  }
  // The same series meets the same grouping at every step of a range query, and in every rule
  // of a group that groups it the same way: the signatures are kept with the series, keyed by
  // the grouping (the list's interned number where it has one, else where the list lives in
  // the expression tree; bit 62 keeps the two apart), `on`, and whether __name__ was dropped.
  const bool dropped = labels.nameDropped();
  const uintptr_t list = names_id != 0 ? (uintptr_t{1} << 62) | (uintptr_t{names_id} << 2)
                                       : reinterpret_cast<uintptr_t>(&names);
  const uintptr_t key = list | (on ? 1 : 0) | (dropped ? 2 : 0);
  // Two kept: rules of a group often alternate between two groupings of the same series.
  if (series->grouping_key[0] == key) {
    return series->grouping_signature[0];
  }
  if (series->grouping_key[1] != key) {
    series->grouping_signature[1] = signatureOf(series->labels(), names, on, dropped);
    series->grouping_key[1] = key;
  }
  // The one just used moves to the front; the other is the next to go.
  std::swap(series->grouping_key[0], series->grouping_key[1]);
  std::swap(series->grouping_signature[0], series->grouping_signature[1]);
  return series->grouping_signature[0];
}

// A set of signatures, or a map from them to positions, used again at every step: open
// addressing over a power-of-two table, with no allocation once it has grown (std::unordered_map
// allocates a node per entry, which made vector matching allocate per sample).
class SignatureTable {
 public:
  // Empties the table for up to `entries` insertions.
  void reset(std::size_t entries) {
    std::size_t capacity = 16;
    while (capacity < entries * 2) {
      capacity <<= 1;
    }
    if (++generation_ == 0 || slots_.size() < capacity) {
      slots_.assign(std::max(capacity, slots_.size()), Slot{});
      generation_ = 1;
    }
    mask_ = slots_.size() - 1;
  }
  // The position stored under `key` and false, or `position` newly stored and true.
  std::pair<uint32_t, bool> tryEmplace(uint64_t key, uint32_t position) {
    for (std::size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      Slot& slot = slots_[i];
      if (slot.generation != generation_) {
        slot = {key, position, generation_};
        return {position, true};
      }
      if (slot.key == key) {
        return {slot.position, false};
      }
    }
  }
  const uint32_t* find(uint64_t key) const {
    for (std::size_t i = mix(key) & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (slot.generation != generation_) {
        return nullptr;
      }
      if (slot.key == key) {
        return &slot.position;
      }
    }
  }
  bool contains(uint64_t key) const { return find(key) != nullptr; }

 private:
  struct Slot {
    uint64_t key = 0;
    uint32_t position = 0;
    uint32_t generation = 0;
  };
  static uint64_t mix(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    return k ^ (k >> 33);
  }
  std::vector<Slot> slots_;
  std::size_t mask_ = 0;
  uint32_t generation_ = 0;
};

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

struct Group {
  SeriesLabels metric;
  double value = 0;
  double mean = 0;
  double count = 0;
  std::vector<double> values;
  std::vector<InstantSample> top;
};

// A group's first sample, as Prometheus starts it (quantile, topk and bottomk keep their
// samples besides).
void startGroup(AggregateOp op, Group& g, double v) {
  g.value = v;
  g.mean = v;
  g.count = 1;
  switch (op) {
    case AggregateOp::kStddev:
    case AggregateOp::kStdvar:
      g.value = 0;
      break;
    case AggregateOp::kCount:
    case AggregateOp::kGroup:
    case AggregateOp::kCountValues:
      g.value = 1;
      break;
    default:
      break;
  }
}

// Each further sample of a group, but for quantile, topk and bottomk.
void addToGroup(AggregateOp op, Group& g, double v) {
  g.count += 1;
  switch (op) {
    case AggregateOp::kSum:
      g.value += v;
      break;
    case AggregateOp::kAvg:
      if (std::isinf(g.mean)) {
        if (std::isinf(v) && (g.mean > 0) == (v > 0)) {
          break;
        }
        if (!std::isinf(v) && !std::isnan(v)) {
          break;
        }
      }
      g.mean += v / g.count - g.mean / g.count;
      break;
    case AggregateOp::kCount:
    case AggregateOp::kCountValues:
      g.value += 1;
      break;
    case AggregateOp::kMax:
      if (g.value < v || std::isnan(g.value)) {
        g.value = v;
      }
      break;
    case AggregateOp::kMin:
      if (g.value > v || std::isnan(g.value)) {
        g.value = v;
      }
      break;
    case AggregateOp::kStddev:
    case AggregateOp::kStdvar: {
      const double delta = v - g.mean;
      g.mean += delta / g.count;
      g.value += delta * (v - g.mean);
      break;
    }
    default:
      break;
  }
}

// A group's value, but for quantile, topk and bottomk.
double groupResult(AggregateOp op, const Group& g) {
  switch (op) {
    case AggregateOp::kAvg:
      return g.mean;
    case AggregateOp::kStddev:
      return std::sqrt(g.value / g.count);
    case AggregateOp::kStdvar:
      return g.value / g.count;
    default:
      return g.value;
  }
}

// The labels of the group `labels` falls in (by or without).
LabelSet groupLabels(const AggregateExpr& a, const LabelSet& labels) {
  LabelSet out;
  for (const auto& l : labels) {
    const bool listed = std::find(a.grouping.begin(), a.grouping.end(), l.name) != a.grouping.end();
    if (a.without ? (!listed && l.name != kMetricNameLabel) : listed) {
      out.push_back(l);
    }
  }
  return out;
}

// The aggregations whose groups need nothing but startGroup and addToGroup.
bool isPlainAggregation(AggregateOp op) {
  return op == AggregateOp::kSum || op == AggregateOp::kAvg || op == AggregateOp::kCount ||
         op == AggregateOp::kGroup || op == AggregateOp::kMax || op == AggregateOp::kMin ||
         op == AggregateOp::kStddev || op == AggregateOp::kStdvar;
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
    if (cache_ != nullptr && evaluatedOnce() && extra_back == 0) {
      if (const SelectCache::SharedValue* sv = cache_->shared(e); sv != nullptr && sv->value) {
        return;  // its value is kept: nothing under it will be read
      }
    }
    switch (e.kind) {
      case ExprKind::kVectorSelector: {
        const auto& vs = static_cast<const VectorSelector&>(e);
        // Evaluated at one time only (an instant query or rule, not under a subquery), an
        // instant selector sees nothing but each series' newest sample in the lookback.
        const bool newest_only = evaluatedOnce() && extra_back == 0 && vs.at != AtKind::kTimestamp;
        fetch(vs, timePlus(extra_back, options_.lookback.count()), newest_only);
        return;
      }
      case ExprKind::kMatrixSelector: {
        const auto& ms = static_cast<const MatrixSelector&>(e);
        fetch(static_cast<const VectorSelector&>(*ms.selector), timePlus(extra_back, ms.range_ms));
        return;
      }
      case ExprKind::kSubquery: {
        const auto& sq = static_cast<const Subquery&>(e);
        prefetch(*sq.expr, timePlus(timePlus(timePlus(extra_back, sq.range_ms), sq.offset_ms),
                                    timePlus(sq.step_ms, stepOr(sq))));
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
    // A subexpression another rule of the group has already evaluated this cycle. (Its value
    // at t does not depend on where it occurs, so also not on being under a subquery.)
    if (cache_ != nullptr && evaluatedOnce() && t == start_) {
      if (SelectCache::SharedValue* sv = cache_->shared(e)) {
        if (sv->value) {
          cache_->countSharedHit();
          return *sv->value;
        }
        Value v = evalNode(e, t);
        sv->value = v;
        for (const auto& [selector, data] : fetched_) {
          sv->reads.push_back(data.series);
        }
        return v;
      }
    }
    return evalNode(e, t);
  }

 private:
  Value evalNode(const Expr& e, int64_t t) {
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

  // An instant query or rule: one evaluation time, so nothing is carried from step to step.
  bool evaluatedOnce() const { return start_ == end_; }

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

  void fetch(const VectorSelector& vs, int64_t back, bool newest_only = false) {
    int64_t lo = start_;
    int64_t hi = end_;
    if (vs.at == AtKind::kTimestamp) {
      lo = std::min(lo, vs.at_ms);
      hi = std::max(hi, vs.at_ms);
    }
    const int64_t mint = timeMinus(timeMinus(lo, vs.offset_ms), back);
    const int64_t maxt = timeMinus(hi, vs.offset_ms);
    auto& data = fetched_[&vs];
    // Series come in creation order, as Prometheus's head returns them to queries: the order
    // of floating-point sums in aggregations depends on it in the last bits.
    if (cache_ != nullptr) {
      data.series = cache_->select(store_, vs.matchers, mint, maxt, newest_only);
    } else {
      data.series = SelectCache::prepare(newest_only ? store_.selectNewest(vs.matchers, mint, maxt)
                                                     : store_.select(vs.matchers, mint, maxt));
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
    return staleAfter(s, it->t, ref) ? nullptr : &*it;
  }

  // Whether a staleness marker of `s` came after its sample at `sample_t`, by `ref`.
  static bool staleAfter(const SelectedSeries& s, int64_t sample_t, int64_t ref) {
    if (s.stale_at.empty()) {
      return false;
    }
    auto st = std::upper_bound(s.stale_at.begin(), s.stale_at.end(), ref);
    return st != s.stale_at.begin() && *std::prev(st) > sample_t;
  }

  // Where each series' window [mint, maxt] of one matrix selector lies in its samples. A range
  // query moves the window forward one step at a time, so the bounds advance by a sample or
  // two instead of being searched again for every series at every step.
  struct WindowCursor {
    const std::vector<SelectedSeries>* series = nullptr;
    int64_t mint = std::numeric_limits<int64_t>::max();
    int64_t maxt = std::numeric_limits<int64_t>::max();
    std::vector<std::pair<std::size_t, std::size_t>> bounds;  // [lo, hi) into samples

    void moveTo(const std::vector<SelectedSeries>& list, int64_t new_mint, int64_t new_maxt) {
      const bool forward =
          series == &list && new_mint >= mint && new_maxt >= maxt && bounds.size() == list.size();
      series = &list;
      mint = new_mint;
      maxt = new_maxt;
      if (!forward) {
        bounds.resize(list.size());
        for (std::size_t i = 0; i < list.size(); ++i) {
          const auto w = window(list[i], mint, maxt);
          const Sample* base = list[i].samples.data();
          bounds[i] = {static_cast<std::size_t>(w.data() - base),
                       static_cast<std::size_t>(w.data() - base) + w.size()};
        }
        return;
      }
      // The window edges of the series are scattered in memory: fetched a few series ahead,
      // their cache misses overlap instead of coming one after another.
      constexpr std::size_t kAhead = 8;
      for (std::size_t i = 0; i < list.size(); ++i) {
        if (i + kAhead < list.size()) {
          const auto& ahead = list[i + kAhead].samples;
          const std::size_t at = bounds[i + kAhead].second;
          if (at < ahead.size()) {
            __builtin_prefetch(ahead.data() + at);
          }
          __builtin_prefetch(ahead.data() + bounds[i + kAhead].first);
        }
        advanceWindow(list[i].samples, bounds[i].first, bounds[i].second, mint, maxt);
      }
    }
  };

  // Moves [lo, hi) forward to the samples within [mint, maxt], both bounds no earlier than
  // before: a sample or two per step, where a search would start over.
  static void advanceWindow(const std::vector<Sample>& samples, std::size_t& lo, std::size_t& hi,
                            int64_t mint, int64_t maxt) {
    while (hi < samples.size() && samples[hi].t <= maxt) {
      ++hi;
    }
    while (lo < hi && samples[lo].t < mint) {
      ++lo;
    }
  }

  // The samples of `s` in [mint, maxt], staleness markers left out as Prometheus leaves them
  // out of range vectors.
  static std::span<const Sample> window(const SelectedSeries& s, int64_t mint, int64_t maxt) {
    if (s.samples.empty() || (s.samples.front().t >= mint && s.samples.back().t <= maxt)) {
      return s.samples;  // read for this very window, as rules' selectors are
    }
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
    std::vector<RangeView> out = pool_.takeViews(0);
    if (arg.kind == ExprKind::kMatrixSelector) {
      const auto& ms = static_cast<const MatrixSelector&>(arg);
      const auto& vs = static_cast<const VectorSelector&>(*ms.selector);
      const int64_t maxt = timeMinus(selectorTime(vs, t, start_, end_), vs.offset_ms);
      const auto& series = *data(vs).series;
      out.reserve(series.size());
      if (evaluatedOnce()) {  // nothing to carry to a next step
        for (const auto& s : series) {
          auto points = window(s, timeMinus(maxt, ms.range_ms), maxt);
          if (!points.empty()) {
            out.push_back({SeriesLabels::borrow(s), points});
          }
        }
        return out;
      }
      WindowCursor& cursor = cursors_[&ms];
      cursor.moveTo(series, timeMinus(maxt, ms.range_ms), maxt);
      for (std::size_t i = 0; i < series.size(); ++i) {
        const auto [lo, hi] = cursor.bounds[i];
        if (lo < hi) {
          out.push_back({SeriesLabels::borrow(series[i]),
                         std::span<const Sample>(series[i].samples.data() + lo, hi - lo)});
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
    const int64_t ref = timeMinus(selectorTime(vs, t, start_, end_), vs.offset_ms);
    const auto& series = *data(vs).series;
    Vector out = pool_.take(series.size());
    if (evaluatedOnce()) {
      for (const auto& s : series) {
        const Sample* it = visibleAt(s, ref);
        if (it == nullptr) {
          continue;
        }
        out.push_back({SeriesLabels::borrow(s), t, it->v});
      }
      return out;
    }
    // A range query: the lookback window moves forward step by step, as a matrix selector's.
    WindowCursor& cursor = cursors_[&vs];
    cursor.moveTo(series, timeMinus(ref, options_.lookback.count()), ref);
    for (std::size_t i = 0; i < series.size(); ++i) {
      const auto [lo, hi] = cursor.bounds[i];
      if (lo == hi) {
        continue;
      }
      const Sample& newest = series[i].samples[hi - 1];
      if (!staleAfter(series[i], newest.t, ref)) {
        out.push_back({SeriesLabels::borrow(series[i]), t, newest.v});
      }
    }
    return out;
  }

  Matrix selectRange(const MatrixSelector& ms, int64_t t) {
    const auto& vs = static_cast<const VectorSelector&>(*ms.selector);
    const int64_t maxt = timeMinus(selectorTime(vs, t, start_, end_), vs.offset_ms);
    const int64_t mint = timeMinus(maxt, ms.range_ms);
    Matrix out;
    for (const auto& s : *data(vs).series) {
      auto points = window(s, mint, maxt);
      if (!points.empty()) {
        out.push_back({s.labels(), {points.begin(), points.end()}});
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
    const int64_t end = timeMinus(ref, sq.offset_ms);
    const int64_t begin = timeMinus(end, sq.range_ms);
    // Steps are aligned to multiples of the step, as Prometheus aligns them.
    int64_t first = step * (begin / step);
    if (first < begin) {
      first = timePlus(first, step);
    }
    std::map<std::string, RangeSeries> series;
    for (int64_t ts = first; ts <= end;) {
      Value v = eval(*sq.expr, ts);
      if (const Vector* vec = std::get_if<Vector>(&v)) {
        for (const auto& s : *vec) {
          auto& rs = series[labelsKey(s.metric)];
          if (rs.points.empty()) {
            rs.metric = s.metric;
          }
          rs.points.push_back({ts, s.v});
        }
      }
      if (__builtin_add_overflow(ts, step, &ts)) {
        break;  // the last step before the end of time
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
      // Filtered in place: the operand is not read again.
      Vector vec = std::move(std::get<Vector>(ls ? rv : lv));
      const double scalar = ls ? ls->v : rs->v;
      const bool swap = ls != nullptr;
      std::size_t kept = 0;
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
        if (&vec[kept] != &s) {
          vec[kept] = std::move(s);
        }
        ++kept;
      }
      vec.erase(vec.begin() + static_cast<std::ptrdiff_t>(kept), vec.end());
      return vec;
    }
    Vector out = vectorBinary(b, std::get<Vector>(lv), std::get<Vector>(rv), t);
    pool_.giveValue(lv);
    pool_.giveValue(rv);
    return out;
  }

  Vector vectorBinary(const BinaryExpr& b, Vector& lhs, Vector& rhs, int64_t t) {
    const VectorMatching& m = *b.matching;
    auto sig = [&](const SeriesLabels& ls) { return signatureOf(ls, m.labels, m.on, m.labels_id); };
    Vector out = pool_.take(std::max(lhs.size(), rhs.size()));
    if (isSetOperator(b.op)) {
      SignatureTable& rsigs = table_a_;
      rsigs.reset(rhs.size());
      for (const auto& s : rhs) {
        rsigs.tryEmplace(sig(s.metric), 0);
      }
      if (b.op == BinaryOp::kAnd || b.op == BinaryOp::kUnless) {
        for (auto& s : lhs) {
          if (rsigs.contains(sig(s.metric)) == (b.op == BinaryOp::kAnd)) {
            out.push_back(std::move(s));
          }
        }
        return out;
      }
      SignatureTable& lsigs = table_b_;
      lsigs.reset(lhs.size());
      for (auto& s : lhs) {
        lsigs.tryEmplace(sig(s.metric), 0);
        out.push_back(std::move(s));
      }
      for (auto& s : rhs) {
        if (!lsigs.contains(sig(s.metric))) {
          out.push_back(std::move(s));
        }
      }
      return out;
    }
    // group_right: the right side is the "many" side; swap and swap back the operands.
    const bool swap = m.card == Cardinality::kOneToMany;
    Vector& many = swap ? rhs : lhs;
    Vector& one = swap ? lhs : rhs;
    SignatureTable& one_side = table_a_;
    one_side.reset(one.size());
    for (std::size_t i = 0; i < one.size(); ++i) {
      const auto& s = one[i];
      auto [first, inserted] = one_side.tryEmplace(sig(s.metric), static_cast<uint32_t>(i));
      if (!inserted) {
        fail(StatusCode::kInvalidArgument,
             "found duplicate series for the match group " + describeSig(s.metric, m) + " on the " +
                 (swap ? "left" : "right") + " hand-side of the operation: [" +
                 describe(one[first].metric) + ", " + describe(s.metric) +
                 "];many-to-many matching not allowed: matching labels must be unique on one side");
      }
    }
    SignatureTable& matched_one_to_one = table_b_;
    matched_one_to_one.reset(many.size());
    SignatureTable& result_keys = table_c_;  // by the hash of the whole label set
    result_keys.reset(many.size());
    for (auto& s : many) {
      const uint64_t key = sig(s.metric);
      const uint32_t* at = one_side.find(key);
      if (at == nullptr) {
        continue;
      }
      const InstantSample& o = one[*at];
      if (m.card == Cardinality::kOneToOne) {
        if (!matched_one_to_one.tryEmplace(key, 0).second) {
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
        // The result's labels depend only on the matching labels (`on`) or on the series
        // (`ignoring`): kept for the query rather than built at every step.
        if (m.on) {
          metric = derivedLabels(&b, key, [&] {
            LabelSet kept;
            for (const auto& l : metric) {
              if (std::find(m.labels.begin(), m.labels.end(), l.name) != m.labels.end()) {
                kept.push_back(l);
              }
            }
            return kept;
          });
        } else if (!m.labels.empty() && metric.borrowedFrom() != nullptr) {
          const uint64_t source =
              reinterpret_cast<uintptr_t>(metric.borrowedFrom()) | (metric.nameDropped() ? 1 : 0);
          metric = derivedLabels(&b, source, [&] {
            LabelSet left = metric.get();
            for (const auto& name : m.labels) {
              eraseLabel(left, name);
            }
            return left;
          });
        } else if (!m.labels.empty()) {
          for (const auto& name : m.labels) {
            eraseLabel(metric.mut(), name);
          }
        }
      }
      for (const auto& name : m.include) {
        setLabel(metric.mut(), name, labelValue(o.metric, name));
      }
      if (m.card != Cardinality::kOneToOne &&
          !result_keys.tryEmplace(labelsHash(metric), 0).second) {
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
    if (!a.param && isPlainAggregation(a.op)) {
      const Expr* inner = a.expr.get();
      while (inner->kind == ExprKind::kParen) {
        inner = static_cast<const ParenExpr*>(inner)->expr.get();
      }
      if (inner->kind == ExprKind::kCall) {
        if (StepTable* table = stepTable(static_cast<const Call&>(*inner), t)) {
          return aggregateStepColumn(a, *table, t);
        }
      }
    }
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
    Vector out = aggregateVector(a, vec, param, label_param, t);
    pool_.give(std::move(vec));
    return out;
  }

 public:
  // Takes back the vectors of a step's value that has been read.
  void recycle(Value& v) { pool_.giveValue(v); }

 private:
  Vector aggregateVector(const AggregateExpr& a, Vector& vec, double param,
                         const std::string& label_param, int64_t t);

  // The labels an operation derives (an aggregation's group, the result of `on`): in a range
  // query kept for the whole query as a series under the operation's node and `key`, so that
  // the results of every step borrow them; evaluated once, simply built.
  template <typename MakeLabels>
  SeriesLabels derivedLabels(const Expr* node, uint64_t key, MakeLabels&& make_labels) {
    if (evaluatedOnce()) {
      return SeriesLabels(make_labels());
    }
    return SeriesLabels::borrow(derivedSeries(node, key, std::forward<MakeLabels>(make_labels)));
  }
  template <typename MakeLabels>
  const SelectedSeries& derivedSeries(const Expr* node, uint64_t key, MakeLabels&& make_labels) {
    auto& slot = derived_series_[node][key];
    if (!slot) {
      slot = std::make_unique<SelectedSeries>();
      slot->label_set = std::make_shared<const LabelSet>(make_labels());
    }
    return *slot;
  }

  Value call(const Call& c, int64_t t);

  // A range query's call of a window function (rate, max_over_time, ...) on a matrix
  // selector, computed for every step at once, series by series: each series' samples are
  // read in order while they are in cache, instead of every series being visited at every
  // step. Steps then read their column. values and present are indexed [step * series + i].
  struct StepTable {
    const std::vector<SelectedSeries>* series = nullptr;
    std::vector<double> values;
    std::vector<uint8_t> present;
    // An aggregation of the call: each series' group, found once for the query.
    struct Grouping {
      std::vector<uint32_t> group_of;                   // by series
      std::vector<const SelectedSeries*> group_series;  // by group, in order of appearance
      std::vector<Group> accumulators;
      std::vector<uint8_t> seen;
    };
    std::unordered_map<const AggregateExpr*, Grouping> groupings;
  };
  // Beyond this many series × steps (9 bytes each) a call is evaluated step by step instead.
  static constexpr std::size_t kMaxStepTableEntries = 4'000'000;

  StepTable* stepTable(const Call& c, int64_t t) {
    if (evaluatedOnce() || t < start_ || t > end_ || (t - start_) % step_ != 0) {
      return nullptr;  // an instant query, or a subquery's step off the query's grid
    }
    auto [it, inserted] = step_tables_.try_emplace(&c);
    if (inserted) {
      it->second = buildStepTable(c);  // stays empty for calls it does not apply to
    }
    return it->second.get();
  }

  std::unique_ptr<StepTable> buildStepTable(const Call& c) {
    const MatrixSelector* ms = nullptr;
    std::vector<double> scalars;
    const auto& types = c.func->arg_types;
    for (std::size_t i = 0; i < c.args.size(); ++i) {
      const Expr* arg = c.args[i].get();
      while (arg->kind == ExprKind::kParen) {
        arg = static_cast<const ParenExpr*>(arg)->expr.get();
      }
      if (!types.empty() && types[std::min(i, types.size() - 1)] == ValueType::kMatrix) {
        if (arg->kind != ExprKind::kMatrixSelector) {
          return nullptr;
        }
        ms = static_cast<const MatrixSelector*>(arg);
      } else if (isConstant(*arg)) {
        scalars.push_back(std::get<Scalar>(eval(*arg, start_)).v);
      } else {
        return nullptr;  // an argument that may change from step to step
      }
    }
    const WindowFunction f = ms != nullptr ? windowFunction(c.func->name, scalars) : nullptr;
    if (!f) {
      return nullptr;
    }
    const auto& vs = static_cast<const VectorSelector&>(*ms->selector);
    const auto& series = *data(vs).series;
    const auto steps = static_cast<std::size_t>((end_ - start_) / step_ + 1);
    if (series.size() * steps > kMaxStepTableEntries) {
      return nullptr;
    }
    auto table = std::make_unique<StepTable>();
    table->series = &series;
    table->values.assign(series.size() * steps, 0);
    table->present.assign(series.size() * steps, 0);
    for (std::size_t i = 0; i < series.size(); ++i) {
      if (deadline_ && std::chrono::steady_clock::now() > *deadline_) {
        fail(StatusCode::kDeadlineExceeded, "query timed out in expression evaluation");
      }
      const auto& samples = series[i].samples;
      std::size_t lo = 0;
      std::size_t hi = 0;
      for (std::size_t k = 0; k < steps; ++k) {
        const int64_t t = start_ + static_cast<int64_t>(k) * step_;
        const int64_t maxt = timeMinus(selectorTime(vs, t, start_, end_), vs.offset_ms);
        const int64_t mint = timeMinus(maxt, ms->range_ms);
        advanceWindow(samples, lo, hi, mint, maxt);
        if (lo == hi) {
          continue;
        }
        const std::optional<double> v = f(std::span<const Sample>(samples.data() + lo, hi - lo),
                                          mint, maxt, t, series[i].has_resets);
        if (v) {
          table->values[k * series.size() + i] = *v;
          table->present[k * series.size() + i] = 1;
        }
      }
    }
    return table;
  }

  // Arithmetic on number literals only (`4 * 3600`): the same at every step.
  static bool isConstant(const Expr& e) {
    switch (e.kind) {
      case ExprKind::kNumber:
        return true;
      case ExprKind::kParen:
        return isConstant(*static_cast<const ParenExpr&>(e).expr);
      case ExprKind::kUnary:
        return isConstant(*static_cast<const UnaryExpr&>(e).expr);
      case ExprKind::kBinary: {
        const auto& b = static_cast<const BinaryExpr&>(e);
        return isConstant(*b.lhs) && isConstant(*b.rhs);
      }
      default:
        return false;
    }
  }

  // A plain aggregation (sum, avg, ...) of a step table's column, summed in the same order as
  // over the column's vector (so to the same bits), without building that vector.
  Vector aggregateStepColumn(const AggregateExpr& a, StepTable& table, int64_t t) {
    const auto& series = *table.series;
    auto [it, inserted] = table.groupings.try_emplace(&a);
    StepTable::Grouping& grouping = it->second;
    if (inserted) {
      std::unordered_map<uint64_t, uint32_t> index;
      grouping.group_of.reserve(series.size());
      for (const auto& s : series) {
        SeriesLabels metric = SeriesLabels::borrow(s);
        metric.dropName();
        const uint64_t key = signatureOf(metric, a.grouping, !a.without, a.grouping_id);
        auto [at, added] = index.try_emplace(key, static_cast<uint32_t>(index.size()));
        if (added) {
          grouping.group_series.push_back(
              &derivedSeries(&a, key, [&] { return groupLabels(a, metric); }));
        }
        grouping.group_of.push_back(at->second);
      }
      grouping.accumulators.resize(grouping.group_series.size());
      grouping.seen.resize(grouping.group_series.size());
    }
    std::fill(grouping.seen.begin(), grouping.seen.end(), 0);
    const std::size_t base = static_cast<std::size_t>((t - start_) / step_) * series.size();
    for (std::size_t i = 0; i < series.size(); ++i) {
      if (table.present[base + i] == 0) {
        continue;
      }
      const uint32_t g = grouping.group_of[i];
      if (grouping.seen[g] == 0) {
        grouping.seen[g] = 1;
        startGroup(a.op, grouping.accumulators[g], table.values[base + i]);
      } else {
        addToGroup(a.op, grouping.accumulators[g], table.values[base + i]);
      }
    }
    Vector out = pool_.take(grouping.group_series.size());
    for (std::size_t g = 0; g < grouping.group_series.size(); ++g) {
      if (grouping.seen[g] != 0) {
        out.push_back({SeriesLabels::borrow(*grouping.group_series[g]), t,
                       groupResult(a.op, grouping.accumulators[g])});
      }
    }
    return out;
  }

  Vector stepColumn(const StepTable& table, int64_t t) {
    const auto& series = *table.series;
    const std::size_t base = static_cast<std::size_t>((t - start_) / step_) * series.size();
    Vector out = pool_.take(series.size());
    for (std::size_t i = 0; i < series.size(); ++i) {
      if (table.present[base + i] != 0) {
        SeriesLabels metric = SeriesLabels::borrow(series[i]);
        metric.dropName();  // every window function drops it
        out.push_back({std::move(metric), t, table.values[base + i]});
      }
    }
    return out;
  }

  const Store& store_;
  const EngineOptions& options_;
  int64_t start_;
  int64_t end_;
  int64_t step_;
  SelectCache* cache_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  uint64_t evaluations_ = 0;
  std::unordered_map<const VectorSelector*, SelectorData> fetched_;
  std::unordered_map<const Expr*, WindowCursor> cursors_;  // by selector, for range queries
  std::unordered_map<const Call*, std::unique_ptr<StepTable>> step_tables_;
  // The output series of each aggregation (by group signature) and vector matching, kept for
  // the whole query: a range query meets the same ones at every step, and building their label
  // sets (then hashing them to collect the steps) at every step was most of their cost.
  std::unordered_map<const Expr*, std::unordered_map<uint64_t, std::unique_ptr<SelectedSeries>>>
      derived_series_;
  VectorPool pool_;
  SignatureTable table_a_;  // vectorBinary's and aggregateVector's, used again every step
  SignatureTable table_b_;
  SignatureTable table_c_;
  std::size_t total_samples_ = 0;
};

Vector Evaluator::aggregateVector(const AggregateExpr& a, Vector& vec, double param,
                                  const std::string& label_param, int64_t t) {
  auto groupMetric = [&](const LabelSet& ls) { return groupLabels(a, ls); };
  // Groups in order of first appearance, found by the hash of their labels; count_values
  // groups also by the value, so they hash their whole label set.
  std::vector<Group> groups;
  SignatureTable& group_index = table_a_;
  group_index.reset(vec.size());
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
      key = signatureOf(s.metric, a.grouping, !a.without, a.grouping_id);
    }
    auto [at, inserted] = group_index.tryEmplace(key, static_cast<uint32_t>(groups.size()));
    if (inserted) {
      Group& g = groups.emplace_back();
      if (a.op == AggregateOp::kCountValues) {
        g.metric = std::move(metric);
      } else {
        g.metric = derivedLabels(&a, key, [&] { return groupMetric(s.metric); });
      }
      startGroup(a.op, g, s.v);
      switch (a.op) {
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
    Group& g = groups[at];
    switch (a.op) {
      case AggregateOp::kQuantile:
        g.count += 1;
        g.values.push_back(s.v);
        break;
      case AggregateOp::kTopk:
      case AggregateOp::kBottomk:
        g.count += 1;
        g.top.push_back(std::move(s));
        break;
      default:
        addToGroup(a.op, g, s.v);
    }
  }
  Vector out = pool_.take(groups.size());
  for (Group& g : groups) {
    switch (a.op) {
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
        out.push_back({std::move(g.metric), t, groupResult(a.op, g)});
    }
  }
  return out;
}

}  // namespace

Value Evaluator::call(const Call& c, int64_t t) {
  if (const StepTable* table = stepTable(c, t)) {
    return stepColumn(*table, t);
  }
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
  FunctionContext ctx{t, c, args, std::move(matrix), 0, 0, {}, &pool_};
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
      const int64_t ref = timeMinus(selectorTime(vs, t, start_, end_), vs.offset_ms);
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
      ctx.range_end = timeMinus(selectorTime(vs, t, start_, end_), vs.offset_ms);
      ctx.range_start = timeMinus(ctx.range_end, ms.range_ms);
    } else if (arg->kind == ExprKind::kSubquery) {
      const auto& sq = static_cast<const Subquery&>(*arg);
      ctx.range_end = timeMinus(t, sq.offset_ms);
      ctx.range_start = timeMinus(ctx.range_end, sq.range_ms);
    }
  }
  Result<Value> r = callFunction(ctx);
  if (!r) {
    throw EvalError{r.status()};
  }
  pool_.giveViews(std::move(ctx.matrix));
  for (auto& arg : args) {
    pool_.giveValue(arg);
  }
  return std::move(r).value();
}

void SeriesLabels::dropName() {
  if (borrowed_ != nullptr) {
    name_dropped_ = true;
  } else if (owned_) {
    eraseLabel(*owned_, kMetricNameLabel);
  }
}

uint64_t labelSignature(const LabelSet& labels) { return signatureOf(labels, {}, false); }

SelectCache::SeriesList SelectCache::prepare(std::vector<SeriesSamples> selected) {
  auto out = std::make_shared<std::vector<SelectedSeries>>();
  out->reserve(selected.size());
  for (auto& in : selected) {
    SelectedSeries& s = out->emplace_back();
    s.label_set = std::move(in.labels);
    const bool has_stale = std::any_of(in.samples.begin(), in.samples.end(),
                                       [](const Sample& p) { return isStaleNaN(p.v); });
    // Over the samples as functions see them, staleness markers taken out.
    auto findResets = [](const std::vector<Sample>& samples) {
      for (std::size_t i = 1; i < samples.size(); ++i) {
        if (samples[i].v < samples[i - 1].v) {
          return true;
        }
      }
      return false;
    };
    if (!has_stale) {
      s.samples = std::move(in.samples);
      s.has_resets = findResets(s.samples);
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
    s.has_resets = findResets(s.samples);
  }
  return out;
}

SelectCache::SeriesList SelectCache::select(const Store& store,
                                            const std::vector<LabelMatcher>& matchers, int64_t mint,
                                            int64_t maxt, bool newest_only) {
  std::string key = std::to_string(mint) + ',' + std::to_string(maxt) + (newest_only ? "n" : "");
  for (const auto& m : matchers) {
    key += ',';
    key += m.toString();
  }
  auto [it, inserted] = entries_.try_emplace(std::move(key));
  if (inserted) {
    it->second.matchers = matchers;
    it->second.series = prepare(newest_only ? store.selectNewest(matchers, mint, maxt)
                                            : store.select(matchers, mint, maxt));
  }
  return it->second.series;
}

namespace {

// Whether a selector with `matchers` could select a series called `metric_name`.
bool mayRead(const std::vector<LabelMatcher>& matchers, std::string_view metric_name) {
  return std::all_of(matchers.begin(), matchers.end(), [&](const auto& m) {
    return m.name() != kMetricNameLabel || m.matches(metric_name);
  });
}

std::vector<const Expr*> childrenOf(const Expr& e) {
  switch (e.kind) {
    case ExprKind::kMatrixSelector:
      return {static_cast<const MatrixSelector&>(e).selector.get()};
    case ExprKind::kSubquery:
      return {static_cast<const Subquery&>(e).expr.get()};
    case ExprKind::kUnary:
      return {static_cast<const UnaryExpr&>(e).expr.get()};
    case ExprKind::kParen:
      return {static_cast<const ParenExpr&>(e).expr.get()};
    case ExprKind::kBinary:
      return {static_cast<const BinaryExpr&>(e).lhs.get(),
              static_cast<const BinaryExpr&>(e).rhs.get()};
    case ExprKind::kAggregate: {
      const auto& a = static_cast<const AggregateExpr&>(e);
      if (a.param) {
        return {a.param.get(), a.expr.get()};
      }
      return {a.expr.get()};
    }
    case ExprKind::kCall: {
      std::vector<const Expr*> out;
      for (const auto& arg : static_cast<const Call&>(e).args) {
        out.push_back(arg.get());
      }
      return out;
    }
    default:
      return {};
  }
}

// A node worth keeping the value of: one that computes something from series. Selectors are
// already shared as store reads, literals cost nothing, and parentheses are their content.
struct SubexpressionInfo {
  std::string key;  // as Prometheus prints it
  std::vector<const std::vector<LabelMatcher>*> selectors;
};

void describeSubexpressions(const Expr& e, std::unordered_map<const Expr*, SubexpressionInfo>& info,
                            std::vector<const std::vector<LabelMatcher>*>& selectors) {
  if (e.kind == ExprKind::kVectorSelector) {
    selectors.push_back(&static_cast<const VectorSelector&>(e).matchers);
    return;
  }
  std::vector<const std::vector<LabelMatcher>*> below;
  for (const Expr* child : childrenOf(e)) {
    describeSubexpressions(*child, info, below);
  }
  const bool computes = e.kind == ExprKind::kCall || e.kind == ExprKind::kAggregate ||
                        e.kind == ExprKind::kBinary || e.kind == ExprKind::kUnary ||
                        e.kind == ExprKind::kSubquery;
  if (computes && !below.empty()) {
    info[&e] = {toString(e), below};
  }
  selectors.insert(selectors.end(), below.begin(), below.end());
}

}  // namespace

std::size_t SelectCache::shareSubexpressions(const std::vector<const Expr*>& exprs) {
  shared_index_.clear();
  shared_.clear();
  std::unordered_map<const Expr*, SubexpressionInfo> info;
  for (const Expr* e : exprs) {
    std::vector<const std::vector<LabelMatcher>*> selectors;
    describeSubexpressions(*e, info, selectors);
  }
  std::unordered_map<std::string, std::size_t> occurrences;
  for (const auto& [node, about] : info) {
    ++occurrences[about.key];
  }
  // Top down, so that a part of a shared subexpression is kept too only where it also occurs
  // outside it: keeping it would otherwise cost a copy that nothing ever reads.
  std::unordered_map<std::string, std::size_t> slot_of;
  auto mark = [&](auto& self, const Expr& e, std::size_t enclosing) -> void {
    auto it = info.find(&e);
    if (it != info.end()) {
      const std::size_t n = occurrences[it->second.key];
      if (n >= 2 && n > enclosing) {
        auto [slot, inserted] = slot_of.try_emplace(it->second.key, shared_.size());
        if (inserted) {
          shared_.push_back({it->second.selectors, std::nullopt, {}});
        }
        shared_index_[&e] = slot->second;
        enclosing = n;
      }
    }
    for (const Expr* child : childrenOf(e)) {
      self(self, *child, enclosing);
    }
  };
  for (const Expr* e : exprs) {
    mark(mark, *e, 0);
  }
  return shared_.size();
}

void SelectCache::invalidate(std::string_view metric_name) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = mayRead(it->second.matchers, metric_name) ? entries_.erase(it) : std::next(it);
  }
  for (auto& sv : shared_) {
    if (sv.value && std::any_of(sv.reads_matchers.begin(), sv.reads_matchers.end(),
                                [&](const auto* m) { return mayRead(*m, metric_name); })) {
      sv.value.reset();
      sv.reads.clear();
    }
  }
}

void SelectCache::clear() {
  entries_.clear();
  for (auto& sv : shared_) {
    sv.value.reset();
    sv.reads.clear();
  }
  shared_hits_ = 0;
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
  int64_t span = 0;
  if (end_ms < start_ms || __builtin_sub_overflow(end_ms, start_ms, &span)) {
    return invalidArgument(
        "end timestamp must not be before start time, nor the range longer "
        "than 292 million years");
  }
  try {
    Evaluator ev(store_, options_, start_ms, end_ms, step_ms);
    ev.prefetch(expr, 0);
    // Series are found by a hash of their labels at every step and copied once; the result is
    // sorted by labels at the end, as Prometheus sorts it.
    std::unordered_map<uint64_t, std::size_t> index;
    // Labels still borrowed from a series read (or an aggregation's group) are found through
    // their series, which notes where its points go, without hashing them at every step.
    static std::atomic<uint64_t> queries{0};
    const uint64_t query = ++queries;
    constexpr uint32_t kNoSlot = std::numeric_limits<uint32_t>::max();
    const auto steps = static_cast<std::size_t>(span / step_ms + 1);
    Matrix out;
    for (int64_t t = start_ms; t <= end_ms;) {
      Value v = ev.eval(expr, t);
      if (auto* s = std::get_if<Scalar>(&v)) {
        if (out.empty()) {
          out.emplace_back();
          out[0].points.reserve(steps);
        }
        out[0].points.push_back({t, s->v});
      } else if (auto* vec = std::get_if<Vector>(&v)) {
        for (auto& s : *vec) {
          const SelectedSeries* from = s.metric.borrowedFrom();
          uint32_t* slot = nullptr;
          if (from != nullptr) {
            if (from->result_query != query) {
              from->result_query = query;
              from->result_slot[0] = from->result_slot[1] = kNoSlot;
            }
            slot = &from->result_slot[s.metric.nameDropped() ? 1 : 0];
          }
          std::size_t at = 0;
          if (slot != nullptr && *slot != kNoSlot) {
            at = *slot;
          } else {
            auto [it, inserted] = index.try_emplace(labelsHash(s.metric.get()), out.size());
            if (inserted) {
              out.push_back({s.metric.get(), {}});
              if (t == start_ms) {
                out.back().points.reserve(steps);  // there from the start: likely at every step
              }
            }
            at = it->second;
            if (slot != nullptr) {
              *slot = static_cast<uint32_t>(at);
            }
          }
          out[at].points.push_back({t, s.v});
        }
        ev.recycle(v);
      } else {
        return invalidArgument("range queries support only scalar and instant vector results");
      }
      if (__builtin_add_overflow(t, step_ms, &t)) {
        break;  // the last step before the end of time
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
