#pragma once
// Evaluating PromQL over the store, with Prometheus 2.42's semantics: 5 m lookback, staleness
// markers, rate extrapolation, __name__ dropped where Prometheus drops it.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "vigil/rules/promql_ast.h"
#include "vigil/store.h"

namespace vigil::promql {

/// Hash of a label set for vector matching and grouping (labels in order, __name__ left out).
uint64_t labelSignature(const LabelSet& labels);

/// One series as a query reads it from the store.
struct SelectedSeries {
  std::shared_ptr<const LabelSet> label_set;  // with __name__, shared with the store
  std::vector<Sample> samples;                // ascending, staleness markers taken out
  std::vector<int64_t> stale_at;              // when the series had staleness markers
  bool has_resets = false;                    // whether a sample is lower than the one before it

  /// What functions and arithmetic leave of the labels; copied on first use, since most series
  /// a rule reads are filtered out before anything asks.
  const LabelSet& labels() const { return *label_set; }
  const LabelSet& labelsWithoutName() const {
    if (!without_name_ready_) {
      for (const auto& l : labels()) {
        if (l.name != kMetricNameLabel) {
          labels_without_name_.push_back(l);
        }
      }
      without_name_ready_ = true;
    }
    return labels_without_name_;
  }
  /// labelSignature(labels()), which leaves __name__ out, hashed on first use: most series a
  /// rule reads are filtered or aggregated without it.
  uint64_t signature() const {
    if (!signature_ready_) {
      signature_ = labelSignature(labels());
      signature_ready_ = true;
    }
    return signature_;
  }
  // The signatures last computed for two groupings (by, on, ...) with their keys, the latest
  // first, kept for the next step or rule. A series list is read by one evaluation at a time.
  mutable uintptr_t grouping_key[2] = {0, 0};
  mutable uint64_t grouping_signature[2] = {0, 0};
  // Where a range query collects this series' points (with and without __name__), tagged by
  // the query, so that no step looks it up again.
  mutable uint64_t result_query = 0;
  mutable uint32_t result_slot[2] = {0, 0};

 private:
  mutable LabelSet labels_without_name_;
  mutable bool without_name_ready_ = false;
  mutable bool signature_ready_ = false;
  mutable uint64_t signature_ = 0;
};

/// The labels of a sample. Inside the engine they are borrowed from the store read the query
/// holds and copied only when an operation changes them: most series a rule selects are
/// filtered out by a comparison untouched, and copying every label set up front was most of
/// the cost of a rule. Results leave the engine owning their labels.
class SeriesLabels {
 public:
  SeriesLabels() = default;
  SeriesLabels(LabelSet labels)  // NOLINT: implicit on purpose
      : owned_(labels.empty() ? nullptr : std::make_unique<LabelSet>(std::move(labels))) {}
  SeriesLabels(const SeriesLabels& o)
      : borrowed_(o.borrowed_),
        name_dropped_(o.name_dropped_),
        owned_(o.owned_ ? std::make_unique<LabelSet>(*o.owned_) : nullptr) {}
  SeriesLabels& operator=(const SeriesLabels& o) {
    if (this != &o) {
      borrowed_ = o.borrowed_;
      name_dropped_ = o.name_dropped_;
      owned_ = o.owned_ ? std::make_unique<LabelSet>(*o.owned_) : nullptr;
    }
    return *this;
  }
  SeriesLabels(SeriesLabels&&) noexcept = default;
  SeriesLabels& operator=(SeriesLabels&&) noexcept = default;
  ~SeriesLabels() = default;

  /// Borrows the labels of `series`, which must outlive this object or its own() call.
  static SeriesLabels borrow(const SelectedSeries& series) {
    SeriesLabels l;
    l.borrowed_ = &series;
    return l;
  }

  const LabelSet& get() const {
    if (borrowed_ == nullptr) {
      return owned_ ? *owned_ : kNoLabels;
    }
    return name_dropped_ ? borrowed_->labelsWithoutName() : borrowed_->labels();
  }
  /// The series these labels are still borrowed unchanged from (but maybe for __name__), or
  /// nullptr: its precomputed signature saves hashing.
  const SelectedSeries* borrowedFrom() const { return borrowed_; }
  /// Whether these are a borrowed series' labels without its __name__ (known without making
  /// that label set).
  bool nameDropped() const { return borrowed_ != nullptr && name_dropped_; }
  operator const LabelSet&() const { return get(); }  // NOLINT: reads see a plain LabelSet
  /// For changing the labels: copies borrowed ones first.
  LabelSet& mut() {
    if (borrowed_ != nullptr) {
      owned_ = std::make_unique<LabelSet>(get());
      borrowed_ = nullptr;
    } else if (!owned_) {
      owned_ = std::make_unique<LabelSet>();
    }
    return *owned_;
  }
  void own() { (void)mut(); }
  void dropName();

  LabelSet::const_iterator begin() const { return get().begin(); }
  LabelSet::const_iterator end() const { return get().end(); }
  std::size_t size() const { return get().size(); }
  bool empty() const { return get().empty(); }
  bool operator==(const SeriesLabels& o) const { return get() == o.get(); }

 private:
  inline static const LabelSet kNoLabels{};

  const SelectedSeries* borrowed_ = nullptr;
  bool name_dropped_ = false;
  // Owned labels live behind a pointer: samples are created and destroyed at every step of a
  // range query, nearly all of them with borrowed labels, and an inline (empty) vector made
  // each one 16 bytes bigger and its destruction a call.
  std::unique_ptr<LabelSet> owned_;
};

struct InstantSample {
  SeriesLabels metric;  // sorted, __name__ included where it survives
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
  /// Longest a query may evaluate; past it it fails with kDeadlineExceeded. 0: no limit.
  std::chrono::milliseconds timeout{0};
};

/// Store reads and subexpression values shared by the queries of one rule-group cycle. Every
/// rule of a group is evaluated at the same time and many select the same series, so each
/// distinct selector window is read from the store (and decompressed) once per cycle instead of
/// once per rule; and rules often differ only in a threshold or a label (`X > 80` warning,
/// `X > 95` critical), so a subexpression two rules have in common is evaluated once per cycle.
/// Not thread-safe: one cache per group evaluation.
class SelectCache {
 public:
  using SeriesList = std::shared_ptr<const std::vector<SelectedSeries>>;
  /// What a query reads of a store's answer.
  static SeriesList prepare(std::vector<SeriesSamples> selected);

  /// The store's select, or with `newest_only` its selectNewest (for instant selectors).
  SeriesList select(const Store& store, const std::vector<LabelMatcher>& matchers, int64_t mint,
                    int64_t maxt, bool newest_only = false);

  /// Finds the subexpressions (calls, aggregations, operations that read series) that occur
  /// more than once in `exprs`, a group's rule expressions, compared as Prometheus prints them:
  /// within a cycle each is evaluated by the first rule that needs it and reused by the others.
  /// The expressions must outlive the cache. Returns how many distinct ones were found.
  std::size_t shareSubexpressions(const std::vector<const Expr*>& exprs);

  /// The value of a shared subexpression, kept until a rule writes a series it could read.
  struct SharedValue {
    std::vector<const std::vector<LabelMatcher>*> reads_matchers;  // of each selector in it
    std::optional<Value> value;
    std::vector<SeriesList> reads;  // the store reads its labels may be borrowed from
  };
  /// The slot of `e` if it is a shared subexpression, else nullptr (for the engine).
  SharedValue* shared(const Expr& e) {
    if (shared_index_.empty()) {
      return nullptr;
    }
    auto it = shared_index_.find(&e);
    return it == shared_index_.end() ? nullptr : &shared_[it->second];
  }
  /// How many times this cycle a shared subexpression's kept value was used.
  std::size_t sharedHits() const { return shared_hits_; }
  void countSharedHit() { ++shared_hits_; }

  /// Forgets every cached read, and every kept value, that a series called `metric_name`
  /// could belong to: a rule has just written samples or staleness markers to such series,
  /// which later rules must see.
  void invalidate(std::string_view metric_name);
  /// Forgets every read and value (between cycles); which subexpressions are shared stays.
  void clear();

 private:
  struct Entry {
    std::vector<LabelMatcher> matchers;
    SeriesList series;
  };
  std::unordered_map<std::string, Entry> entries_;             // by matchers and window
  std::unordered_map<const Expr*, std::size_t> shared_index_;  // into shared_
  std::vector<SharedValue> shared_;
  std::size_t shared_hits_ = 0;
};

class Engine {
 public:
  explicit Engine(const Store& store, EngineOptions options = {})
      : store_(store), options_(options) {}

  /// Evaluates `expr` at `t_ms`. Errors (many-to-many matching, duplicate series, limits) come
  /// back as a Status with Prometheus's wording.
  /// With `cache`, selectors are read through it (see SelectCache).
  Result<Value> instant(const Expr& expr, int64_t t_ms, SelectCache* cache = nullptr) const;

  /// Evaluates `expr` at every step from `start_ms` to `end_ms`; each selector is read from the
  /// store once for the whole range.
  Result<Matrix> range(const Expr& expr, int64_t start_ms, int64_t end_ms, int64_t step_ms) const;

 private:
  const Store& store_;
  EngineOptions options_;
};

}  // namespace vigil::promql
