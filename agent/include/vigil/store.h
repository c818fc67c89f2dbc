#pragma once
// The in-memory time-series store: every sample vigil produces goes through it. Series are
// identified by their sorted label set including __name__ (labels with empty values left out:
// in Prometheus an empty label is an absent one); samples are Gorilla-compressed in chunks; an
// inverted index answers label matchers.
//
// Thread safety: every method may be called from any thread. Appends to different series do
// not contend; queries do not block appends except while a series' chunks are copied.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/clock.h"
#include "vigil/metric.h"
#include "vigil/status.h"

namespace re2 {
class RE2;
}

namespace vigil {

inline constexpr std::string_view kMetricNameLabel = "__name__";

/// Prometheus's staleness marker: a NaN with this exact bit pattern, written when a series
/// disappears so that queries stop returning it at once instead of after the lookback.
inline constexpr uint64_t kStaleNaNBits = 0x7ff0000000000002ULL;
double staleNaN();
bool isStaleNaN(double v);

struct Sample {
  int64_t t = 0;  // milliseconds since the epoch
  double v = 0;
};

/// Labels with __name__, sorted by name. `metric{a="b"}` style for messages.
std::string labelsToString(const LabelSet& labels);
/// A stable 64-bit hash of a sorted label set (FNV-1a over name\xffvalue\xff...).
uint64_t labelsHash(const LabelSet& labels);

enum class MatchType { kEqual, kNotEqual, kRegexMatch, kRegexNoMatch };

/// One label matcher, with Prometheus semantics: regexes are RE2, fully anchored, and a label
/// that is absent matches as if its value were "".
class LabelMatcher {
 public:
  static Result<LabelMatcher> create(MatchType type, std::string name, std::string value);
  bool matches(std::string_view value) const;
  MatchType type() const { return type_; }
  const std::string& name() const { return name_; }
  const std::string& value() const { return value_; }
  /// `name="value"`, `name=~"value"`, ...
  std::string toString() const;

 private:
  MatchType type_ = MatchType::kEqual;
  std::string name_;
  std::string value_;
  std::shared_ptr<const re2::RE2> re_;
};

struct SeriesSamples {
  // With __name__. Shared with the store, which keeps each read series' label set ready rather
  // than copying it for every reader: a rule group reads thousands of series every cycle.
  std::shared_ptr<const LabelSet> labels;
  std::vector<Sample> samples;  // ascending time, within the requested range
};

struct StoreOptions {
  std::chrono::milliseconds retention{2 * 3600 * 1000};
  /// Bytes of compressed samples (chunk data and headers) to keep at most; 0 for no limit.
  std::size_t memory_budget_bytes = 0;
  // Prometheus's choice too: larger chunks compress a little better, but a range query decodes
  // whole chunks, so they cost more per query.
  uint16_t max_samples_per_chunk = 120;
  /// The wall clock in Unix milliseconds, read only for a while after it stepped back (see
  /// Store::clockSteppedBack); tests put a fake one here.
  std::function<int64_t()> wall_clock_ms;
};

struct StoreStats {
  std::size_t series = 0;
  std::size_t samples = 0;
  std::size_t chunk_bytes = 0;  // compressed samples plus chunk headers
  std::size_t index_bytes = 0;  // labels, symbols, postings and per-series bookkeeping
  // Memory mapped for closed chunks: their bytes, plus the place of dropped chunks until the
  // rest of their segment goes too.
  std::size_t chunk_segment_bytes = 0;
  // Memory mapped for open (head) chunks' slabs: their buffers and free slots.
  std::size_t head_slab_bytes = 0;
  uint64_t evictions = 0;  // chunks dropped to stay within the memory budget
  uint64_t rejected_out_of_order = 0;
  uint64_t rejected_duplicate = 0;
  // Stamped before a step back of the wall clock and appended after it (see clockSteppedBack).
  uint64_t rejected_clock_step = 0;
  uint64_t appended = 0;
};

/// How long after a step back of the wall clock samples stamped before the step are refused
/// (see Store::clockSteppedBack).
inline constexpr std::chrono::milliseconds kClockStepGuard{10 * 60'000};

class Store {
 public:
  using SourceId = uint32_t;
  virtual ~Store() = default;

  /// A producer of whole collections (a collector, a scrape target, a rule group). Series it
  /// produced in its previous batch but not in this one get a staleness marker. Registering
  /// the same name again returns the same id.
  virtual SourceId registerSource(std::string_view name) = 0;
  /// The source is gone (a collector disabled by a reload): everything it produced last gets
  /// a staleness marker at `t`.
  virtual void retireSource(SourceId source, int64_t t) = 0;
  /// Appends every sample of `batch` at `t`. Rejected samples (out of order, duplicate) are
  /// counted, not returned: one bad series never stops the rest of the batch.
  virtual void appendBatch(SourceId source, int64_t t, const MetricBatch& batch) = 0;
  /// Appends one sample; kInvalidArgument for out-of-order, duplicate or unsorted labels.
  virtual Status append(const LabelSet& labels, int64_t t, double v) = 0;

  /// Samples of every series matching all `matchers`, within [mint, maxt], stale markers
  /// included (the query engine interprets them). Series with no samples in range are omitted.
  virtual std::vector<SeriesSamples> select(const std::vector<LabelMatcher>& matchers, int64_t mint,
                                            int64_t maxt) const = 0;
  /// Like select, but with only the newest sample of each series within [mint, maxt] (a
  /// staleness marker included): all an instant selector sees. Usually taken without
  /// decoding anything, since the store keeps each series' newest sample at hand.
  virtual std::vector<SeriesSamples> selectNewest(const std::vector<LabelMatcher>& matchers,
                                                  int64_t mint, int64_t maxt) const = 0;
  /// For readers that follow every series (remote write): for each series with samples in
  /// (after, maxt], where `after = cursor(slot, hash)` is what the reader already has of it,
  /// calls `visit(hash, samples, labels)`; `labels()` builds the label set only if the reader
  /// needs it. `mint` bounds how far back anything is read. Cheaper than select: no label
  /// copies, and when only the newest sample is new it is taken without decoding the chunk.
  /// `slot` is a small number dense over the live series (for a vector rather than a hash map
  /// of cursors), visited in ascending order; a slot is reused after its series is dropped,
  /// so readers check the hash.
  using ScanCursor = std::function<int64_t(uint32_t slot, uint64_t hash)>;
  using ScanVisitor = std::function<void(uint64_t hash, std::span<const Sample> samples,
                                         const std::function<LabelSet()>& labels)>;
  virtual void scan(int64_t mint, int64_t maxt, const ScanCursor& cursor,
                    const ScanVisitor& visit) const = 0;
  /// Label sets of the matching series (no samples).
  virtual std::vector<LabelSet> series(const std::vector<LabelMatcher>& matchers) const = 0;
  virtual std::vector<std::string> labelNames() const = 0;
  virtual std::vector<std::string> labelValues(const std::string& name) const = 0;

  /// Changes retention and memory budget (a configuration reload); applied at the next
  /// enforceRetention.
  virtual void setLimits(std::chrono::milliseconds retention, std::size_t memory_budget_bytes) = 0;
  /// Drops what is older than the retention and, over the memory budget, the oldest chunks.
  virtual void enforceRetention(int64_t now_ms) = 0;
  virtual StoreStats stats() const = 0;
  /// The wall clock stepped back from `from_ms` to `to_ms`: drops every sample stamped after
  /// `to_ms` and returns how many (until the clock caught up again, every series would refuse
  /// its new samples as out of order and rules would evaluate on the old ones; staleness
  /// tracking of sources is unaffected). Then, until the wall clock is back at `from_ms` (at
  /// most kClockStepGuard), refuses samples stamped more than kClockStepTolerance ahead of it:
  /// a collection round or a rule evaluation that read the clock before the step and appends
  /// after the drop would otherwise leave each of its series refusing every new sample as out
  /// of order until the clock caught up. (A pushed sample from a client whose clock is ahead
  /// by more than the slack is refused too in that time.)
  virtual std::size_t clockSteppedBack(int64_t from_ms, int64_t to_ms) = 0;

  /// Writes the whole store to `path` atomically (temporary file, fsync, rename).
  virtual Status saveCheckpoint(const std::string& path) const = 0;
  /// Replaces the store's content with a checkpoint; kInvalidArgument if it is corrupt.
  virtual Status loadCheckpoint(const std::string& path) = 0;
};

std::unique_ptr<Store> makeMemStore(StoreOptions options = {});

}  // namespace vigil
