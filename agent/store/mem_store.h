#pragma once
// MemStore: the in-memory implementation of Store. Internal header: the checkpoint code and
// tests use it; everything else goes through vigil/store.h.

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "chunk_arena.h"
#include "gorilla.h"
#include "vigil/store.h"

namespace vigil::store {

/// A full chunk: immutable, its bytes trimmed to size.
struct ClosedChunk {
  int64_t mint = 0;
  int64_t maxt = 0;
  ChunkBytes data;  // in the store's ChunkArena
  uint32_t bits = 0;
  uint16_t count = 0;
};

/// Memory a closed chunk holds: header and data (packed in arena segments, no per-chunk overhead).
inline std::size_t closedChunkBytes(const ClosedChunk& c) {
  return sizeof(ClosedChunk) + (c.bits + 7) / 8;
}

using InternedLabel = std::pair<const std::string*, const std::string*>;

struct Series {
  uint32_t id = 0;
  uint64_t hash = 0;
  std::vector<InternedLabel> labels;  // sorted by name, with __name__
  std::atomic<int32_t> pins{0};       // sources holding it in their last batch, and lookups

  std::mutex mu;  // guards everything below
  std::vector<ClosedChunk> closed;
  GorillaEncoder head;
  int64_t head_mint = 0;
  uint8_t scale_hint = 0;  // the largest decimal scale this series' values have needed
  int64_t last_t = INT64_MIN;
  // The sample before the newest; INT64_MAX when not known (after a checkpoint load), which
  // keeps readers on the decoding path.
  int64_t prev_t = INT64_MIN;
  uint64_t last_value_bits = 0;
  std::size_t closed_bytes = 0;  // closed chunks' data and headers
  std::size_t chunk_bytes = 0;   // what this series last added to StoreStats::chunk_bytes

  // Where the last window read started in its chunk (the decoder's state just before its
  // first sample): a rule or query reading the same window again a cycle later resumes there
  // instead of decoding the chunk from its start. Set by readers, under `mu`; only moves
  // forward in time.
  struct ReadHint {
    int64_t chunk_mint = 0;
    bool in_head = false;  // a closed chunk may have the head's mint but another encoding
    GorillaDecoder::Position position;
  };
  mutable std::unique_ptr<ReadHint> read_hint;
  // The label set handed to readers, made on the first read and shared by all later ones.
  mutable std::shared_ptr<const LabelSet> shared_labels;

  bool empty() const { return closed.empty() && head.count == 0; }
  LabelSet labelSet() const;
  /// The shared label set; `made_bytes` grows by what making it cost, if it had to be made.
  /// Under `mu`.
  const std::shared_ptr<const LabelSet>& sharedLabelSet(std::atomic<std::size_t>& made_bytes) const;
};

class MemStore final : public Store {
 public:
  explicit MemStore(StoreOptions options);
  ~MemStore() override;

  SourceId registerSource(std::string_view name) override;
  void retireSource(SourceId source, int64_t t) override;
  void appendBatch(SourceId source, int64_t t, const MetricBatch& batch) override;
  Status append(const LabelSet& labels, int64_t t, double v) override;
  std::vector<SeriesSamples> select(const std::vector<LabelMatcher>& matchers, int64_t mint,
                                    int64_t maxt) const override;
  std::vector<SeriesSamples> selectNewest(const std::vector<LabelMatcher>& matchers, int64_t mint,
                                          int64_t maxt) const override;
  void scan(int64_t mint, int64_t maxt, const ScanCursor& cursor,
            const ScanVisitor& visit) const override;
  std::vector<LabelSet> series(const std::vector<LabelMatcher>& matchers) const override;
  std::vector<std::string> labelNames() const override;
  std::vector<std::string> labelValues(const std::string& name) const override;
  void setLimits(std::chrono::milliseconds retention, std::size_t memory_budget_bytes) override;
  void enforceRetention(int64_t now_ms) override;
  StoreStats stats() const override;
  std::size_t clockSteppedBack(int64_t from_ms, int64_t to_ms) override;
  Status saveCheckpoint(const std::string& path) const override;
  Status loadCheckpoint(const std::string& path) override;

 private:
  struct Shard {
    std::mutex mu;
    std::unordered_multimap<uint64_t, Series*> by_hash;
  };
  struct Source {
    std::string name;
    std::mutex mu;
    std::vector<Series*> last;  // each holds one pin
    // MetricBatch::layout()s of batches whose series were exactly `last`, in order (0: none).
    // More than one: a collector fills two batches in turn while readers hold the other.
    std::array<uint64_t, 4> last_layouts{};
    bool hasLayout(uint64_t layout) const;
    void rememberLayout(uint64_t layout);
  };
  struct Symbol {
    uint32_t refs = 0;
  };
  using Postings = std::vector<uint32_t>;  // sorted series ids

  enum class AppendResult { kOk = 0, kOutOfOrder = 1, kDuplicate = 2 };

  /// The series with exactly these labels (sorted, with __name__), created if new; returned
  /// with one pin that the caller must release.
  Series* getOrCreatePinned(const LabelSet& labels, uint64_t hash);
  AppendResult appendToSeries(Series& s, int64_t t, double v);
  AppendResult appendLocked(Series& s, int64_t t, double v);  // s.mu held
  void countResult(AppendResult r);
  /// Drops every sample stamped after `t` and returns how many (see clockSteppedBack).
  std::size_t dropAfter(int64_t t);
  /// Whether a sample stamped `t` was stamped before a recent step back of the wall clock (one
  /// atomic load unless a step back is that recent).
  bool stampedBeforeStep(int64_t t);
  /// Counts of each AppendResult, by its value, at once.
  void countResults(const std::size_t (&results)[3]);
  Source* source(SourceId id);
  /// Marks stale what `src` produced last but not in `current`, then makes `current` its last.
  void replaceLast(Source& src, std::vector<Series*> current, int64_t t);
  void closeHead(Series& s);
  /// Brings StoreStats::chunk_bytes up to date with `s` (whose lock is held).
  void account(Series& s);
  void removeIfDead(Series* s);
  /// Ids of series matching all matchers; index_mu_ must be held (shared).
  std::vector<uint32_t> matchingIds(const std::vector<LabelMatcher>& matchers) const;
  std::vector<SeriesSamples> selectSamples(const std::vector<LabelMatcher>& matchers, int64_t mint,
                                           int64_t maxt, bool newest_only) const;
  // Appends the samples of `s` within [mint, maxt]; the caller holds s.mu.
  static void decodeWindow(const Series& s, int64_t mint, int64_t maxt, std::vector<Sample>& out);
  // One chunk of `s` (its head if `in_head`) into `out`, resuming at the series' read hint
  // when it lies in this chunk before `mint`, and moving the hint to the window's start.
  static void decodeChunk(const Series& s, const uint8_t* data, uint32_t bits, uint16_t count,
                          int64_t chunk_mint, bool in_head, int64_t mint, int64_t maxt,
                          std::vector<Sample>& out);
  const std::string* intern(const std::string& s);
  void release(const std::string* s);
  void clearAll();

  StoreOptions options_;
  ChunkArena arena_;      // closed chunks' bytes
  std::mutex limits_mu_;  // guards options_.retention and options_.memory_budget_bytes
  std::array<Shard, 64> shards_;

  mutable std::shared_mutex index_mu_;  // guards symbols_, postings_, by_id_, free_ids_
  std::unordered_map<std::string, Symbol> symbols_;
  std::unordered_map<const std::string*, std::unordered_map<const std::string*, Postings>>
      postings_;
  std::vector<std::unique_ptr<Series>> by_id_;
  std::vector<uint32_t> free_ids_;

  std::mutex sources_mu_;
  std::vector<std::unique_ptr<Source>> sources_;

  std::atomic<std::size_t> series_count_{0};
  std::atomic<std::size_t> sample_count_{0};
  std::atomic<std::size_t> chunk_bytes_{0};
  // Mutable: reads add the label sets they make ready for later readers.
  mutable std::atomic<std::size_t> index_bytes_{0};
  std::atomic<uint64_t> evictions_{0};
  std::atomic<uint64_t> rejected_out_of_order_{0};
  std::atomic<uint64_t> rejected_duplicate_{0};
  std::atomic<uint64_t> rejected_clock_step_{0};
  std::atomic<uint64_t> appended_{0};
  // After a step back of the wall clock: until when (wall-clock ms) samples stamped ahead of it
  // are refused; 0 when no step back is that recent (see clockSteppedBack).
  std::atomic<int64_t> step_guard_until_ms_{0};

  friend class CheckpointIo;
};

}  // namespace vigil::store
