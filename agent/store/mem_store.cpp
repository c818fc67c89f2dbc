#include "mem_store.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <optional>
#include <unordered_set>

#include "vigil/clock.h"

namespace vigil {

std::unique_ptr<Store> makeMemStore(StoreOptions options) {
  return std::make_unique<store::MemStore>(std::move(options));
}

namespace store {

namespace {

// Rough per-object overheads for the index accounting: allocator and hash-node bookkeeping
// that the containers do not report.
constexpr std::size_t kHashNodeBytes = 32;

std::size_t closedBytes(const ClosedChunk& c) { return closedChunkBytes(c); }

// Whether `s` has exactly the labels of a batch sample: family name (+suffix) as __name__ and
// `labels`, compared in sorted order without building a label set.
// Whether `s` is the series of `labels` under name+suffix. Labels with empty values do not
// count: in Prometheus an empty label is an absent one, so they are not stored.
bool sameLabels(const Series& s, const std::string& name, const std::string& suffix,
                const LabelSet& labels) {
  auto it = s.labels.begin();
  const auto end = s.labels.end();
  bool name_seen = false;
  auto nameMatches = [&] {
    if (it == end || *it->first != kMetricNameLabel ||
        it->second->size() != name.size() + suffix.size() ||
        it->second->compare(0, name.size(), name) != 0 ||
        it->second->compare(name.size(), suffix.size(), suffix) != 0) {
      return false;
    }
    ++it;
    name_seen = true;
    return true;
  };
  for (const Label& l : labels) {
    if (l.value.empty()) {
      continue;
    }
    if (!name_seen && kMetricNameLabel < l.name && !nameMatches()) {
      return false;
    }
    if (it == end || *it->first != l.name || *it->second != l.value) {
      return false;
    }
    ++it;
  }
  return (name_seen || nameMatches()) && it == end;
}

// The stored label set: __name__ added, empty labels left out.
LabelSet withName(const std::string& name, const std::string& suffix, const LabelSet& labels) {
  LabelSet out;
  out.reserve(labels.size() + 1);
  bool inserted = false;
  for (const Label& l : labels) {
    if (!inserted && kMetricNameLabel < l.name) {
      out.push_back({std::string(kMetricNameLabel), name + suffix});
      inserted = true;
    }
    if (!l.value.empty()) {
      out.push_back(l);
    }
  }
  if (!inserted) {
    out.push_back({std::string(kMetricNameLabel), name + suffix});
  }
  return out;
}

bool isSorted(const LabelSet& labels) {
  for (std::size_t i = 1; i < labels.size(); ++i) {
    if (!(labels[i - 1].name < labels[i].name)) {
      return false;
    }
  }
  return true;
}

// The samples of [mint, maxt] from where `dec` stands; with `before_window`, where it stood
// after the last sample before mint (if it read one: returns whether it did).
bool decodeWith(GorillaDecoder& dec, int64_t mint, int64_t maxt, std::vector<Sample>& out,
                GorillaDecoder::Position* before_window = nullptr) {
  bool skipped = false;
  while (dec.advance()) {
    const int64_t t = dec.time();
    if (t > maxt) {
      break;
    }
    if (t >= mint) {
      out.push_back({t, dec.value()});
    } else if (before_window != nullptr) {
      *before_window = dec.position();
      skipped = true;
    }
  }
  return skipped;
}

void decodeRange(const uint8_t* data, uint32_t bits, uint16_t count, int64_t mint, int64_t maxt,
                 std::vector<Sample>& out) {
  GorillaDecoder dec(data, bits, count);
  decodeWith(dec, mint, maxt, out);
}

}  // namespace

LabelSet Series::labelSet() const {
  LabelSet out;
  out.reserve(labels.size());
  for (const auto& [n, v] : labels) {
    out.push_back({*n, *v});
  }
  return out;
}

namespace {
// Memory a label set handed to readers holds: its control block, vector and the strings too
// long to sit inside their std::string.
std::size_t sharedLabelBytes(const LabelSet& labels) {
  std::size_t bytes = 32 + sizeof(LabelSet) + labels.capacity() * sizeof(Label);
  for (const auto& l : labels) {
    for (const std::string* str : {&l.name, &l.value}) {
      bytes += str->capacity() > 15 ? str->capacity() + 1 : 0;
    }
  }
  return bytes;
}
}  // namespace

const std::shared_ptr<const LabelSet>& Series::sharedLabelSet(
    std::atomic<std::size_t>& made_bytes) const {
  if (!shared_labels) {
    shared_labels = std::make_shared<const LabelSet>(labelSet());
    made_bytes.fetch_add(sharedLabelBytes(*shared_labels), std::memory_order_relaxed);
  }
  return shared_labels;
}

MemStore::MemStore(StoreOptions options) : options_(std::move(options)) {
  if (options_.max_samples_per_chunk < 2) {
    options_.max_samples_per_chunk = 2;
  }
  if (!options_.wall_clock_ms) {
    options_.wall_clock_ms = unixNowMs;
  }
}

MemStore::~MemStore() = default;

Store::SourceId MemStore::registerSource(std::string_view name) {
  std::lock_guard lock(sources_mu_);
  for (std::size_t i = 0; i < sources_.size(); ++i) {
    if (sources_[i]->name == name) {
      return static_cast<SourceId>(i);
    }
  }
  auto src = std::make_unique<Source>();
  src->name = std::string(name);
  sources_.push_back(std::move(src));
  return static_cast<SourceId>(sources_.size() - 1);
}

const std::string* MemStore::intern(const std::string& s) {
  auto [it, inserted] = symbols_.try_emplace(s);
  if (inserted) {
    index_bytes_ += it->first.capacity() + sizeof(std::string) + sizeof(Symbol) + kHashNodeBytes;
  }
  ++it->second.refs;
  return &it->first;
}

void MemStore::release(const std::string* s) {
  auto it = symbols_.find(*s);
  if (it != symbols_.end() && --it->second.refs == 0) {
    index_bytes_ -= it->first.capacity() + sizeof(std::string) + sizeof(Symbol) + kHashNodeBytes;
    symbols_.erase(it);
  }
}

Series* MemStore::getOrCreatePinned(const LabelSet& labels, uint64_t hash) {
  Shard& shard = shards_[hash % shards_.size()];
  std::lock_guard shard_lock(shard.mu);
  auto [begin, end] = shard.by_hash.equal_range(hash);
  for (auto it = begin; it != end; ++it) {
    Series* s = it->second;
    if (s->labels.size() == labels.size() &&
        std::equal(labels.begin(), labels.end(), s->labels.begin(),
                   [](const Label& l, const InternedLabel& il) {
                     return l.name == *il.first && l.value == *il.second;
                   })) {
      s->pins.fetch_add(1);
      return s;
    }
  }
  std::unique_lock index_lock(index_mu_);
  auto series = std::make_unique<Series>();
  Series* s = series.get();
  s->hash = hash;
  s->labels.reserve(labels.size());
  for (const Label& l : labels) {
    s->labels.emplace_back(intern(l.name), intern(l.value));
  }
  if (!free_ids_.empty()) {
    s->id = free_ids_.back();
    free_ids_.pop_back();
    by_id_[s->id] = std::move(series);
  } else {
    s->id = static_cast<uint32_t>(by_id_.size());
    by_id_.push_back(std::move(series));
  }
  for (const auto& [n, v] : s->labels) {
    auto& by_value = postings_[n];
    auto [pit, new_value] = by_value.try_emplace(v);
    if (new_value) {
      index_bytes_ += sizeof(Postings) + kHashNodeBytes;
    }
    Postings& p = pit->second;
    p.insert(std::upper_bound(p.begin(), p.end(), s->id), s->id);
  }
  index_bytes_ += sizeof(Series) + s->labels.capacity() * sizeof(InternedLabel) +
                  s->labels.size() * sizeof(uint32_t) + kHashNodeBytes + sizeof(void*);
  shard.by_hash.emplace(hash, s);
  s->pins.fetch_add(1);
  series_count_.fetch_add(1);
  return s;
}

namespace {

// Which encoding suits a series is only clear once a chunk is full: a random-walk gauge costs
// more as scaled-integer deltas than as XOR of doubles, a decimal counter far less. A closing
// chunk is therefore re-encoded the other way, and the smaller of the two is kept. That costs
// one decode and encode per chunk, not per sample.
GorillaEncoder smallerEncoding(GorillaEncoder head) {
  if (head.values_minimal) {
    return head;  // most chunks of a node: one value throughout
  }
  std::vector<std::pair<int64_t, double>> samples;
  samples.reserve(head.count);
  {
    GorillaDecoder dec(head.bytes.data(), head.bits, head.count);
    int64_t t = 0;
    double v = 0;
    while (dec.next(t, v)) {
      samples.emplace_back(t, v);
    }
  }
  if (samples.size() != head.count) {
    return head;
  }
  const std::size_t head_bytes = head.bytes.size();
  auto encode = [&](GorillaEncoder e) -> std::optional<GorillaEncoder> {
    e.bytes.reserve(HeadPool::slotSize(head_bytes));  // one buffer, not a doubling series
    for (const auto& [t, v] : samples) {
      if (!e.fits(v)) {
        return std::nullopt;
      }
      e.append(t, v);
    }
    return e;
  };
  GorillaEncoder best = std::move(head);
  auto consider = [&](std::optional<GorillaEncoder> candidate) {
    if (candidate && candidate->bits < best.bits) {
      best = std::move(*candidate);
    }
  };
  // XOR of doubles.
  GorillaEncoder as_xor;
  as_xor.allow_scaled = false;
  consider(encode(std::move(as_xor)));
  // Scaled integers, if every value is a short decimal, with the largest common power of two
  // taken out.
  uint8_t scale = 0;
  for (const auto& [t, v] : samples) {
    const uint8_t needed = decimalScale(v);
    if (needed == 0) {
      return best;
    }
    scale = std::max(scale, needed);
  }
  unsigned shift = 62;
  for (const auto& [t, v] : samples) {
    int64_t m = 0;
    if (!scaledValue(v, scale, m)) {
      return best;
    }
    if (m != 0) {
      shift = std::min<unsigned>(shift,
                                 static_cast<unsigned>(std::countr_zero(static_cast<uint64_t>(m))));
    }
  }
  GorillaEncoder scaled;
  scaled.min_scale = scale;
  scaled.shift = static_cast<uint8_t>(shift == 62 ? 0 : shift);
  consider(encode(std::move(scaled)));
  return best;
}

}  // namespace

void MemStore::closeHead(Series& s) {
  s.head = smallerEncoding(std::move(s.head));
  ClosedChunk c;
  c.mint = s.head_mint;
  c.maxt = s.last_t;
  c.bits = s.head.bits;
  c.count = s.head.count;
  const std::size_t nbytes = (s.head.bits + 7) / 8;
  c.data = arena_.copy(s.head.bytes.data(), nbytes);
  s.closed_bytes += closedBytes(c);
  s.closed.push_back(std::move(c));
  s.head = GorillaEncoder{};
  account(s);
}

void MemStore::account(Series& s) {
  const std::size_t head = s.head.count > 0 ? sizeof(ClosedChunk) + s.head.bytes.capacity() : 0;
  const std::size_t now = s.closed_bytes + head;
  if (now >= s.chunk_bytes) {
    chunk_bytes_.fetch_add(now - s.chunk_bytes, std::memory_order_relaxed);
  } else {
    chunk_bytes_.fetch_sub(s.chunk_bytes - now, std::memory_order_relaxed);
  }
  s.chunk_bytes = now;
}

namespace {
// The most one appended sample adds to a chunk (the first: header, timestamp and value).
constexpr std::size_t kMaxSampleBytes = 20;
constexpr std::size_t kHeadGrowthBytes = 28;

// How many series ahead appendBatch fetches: enough to cover a miss's latency with the work of
// the appends in between (some tens of nanoseconds each when cached).
constexpr std::size_t kPrefetchAhead = 6;

// Asks for the cache lines an append writes (its lock, the head chunk's state, the last
// sample); addresses only, nothing is read.
void prefetchForAppend(const Series& s) {
  __builtin_prefetch(&s.mu, 1);
  __builtin_prefetch(&s.head, 1);
  __builtin_prefetch(&s.head.prev_int, 1);
  __builtin_prefetch(&s.last_t, 1);
}
}  // namespace

MemStore::AppendResult MemStore::appendToSeries(Series& s, int64_t t, double v) {
  std::lock_guard lock(s.mu);
  return appendLocked(s, t, v);
}

MemStore::AppendResult MemStore::appendLocked(Series& s, int64_t t, double v) {
  if (t < s.last_t) {
    return AppendResult::kOutOfOrder;
  }
  if (t == s.last_t) {
    return AppendResult::kDuplicate;
  }
  // A value the head chunk's scaled-integer encoding cannot hold exactly starts a new chunk,
  // which then uses a scale that fits it (and the series' earlier values).
  if (!s.head.fits(v)) {
    s.scale_hint = std::max(s.scale_hint, store::decimalScale(v));
    closeHead(s);
  } else if (s.head.count >= options_.max_samples_per_chunk) {
    closeHead(s);
  }
  const bool new_head = s.head.count == 0;
  if (new_head) {
    s.head_mint = t;
    s.head.min_scale = s.scale_hint;
  }
  // The head grows by one 64-byte size class at a time rather than doubling: a chunk holds
  // ~100-200 bytes, and the slack of a doubled buffer would cost a quarter of that on every
  // series.
  if (s.head.bytes.capacity() - s.head.bytes.size() < kMaxSampleBytes) {
    s.head.bytes.reserve(
        HeadPool::slotSize(s.head.bytes.size() + kMaxSampleBytes + kHeadGrowthBytes));
  }
  const std::size_t cap_before = s.head.bytes.capacity();
  s.head.append(t, v);
  if (new_head || s.head.bytes.capacity() != cap_before) {
    account(s);
  }
  s.prev_t = s.last_t;
  s.last_t = t;
  s.last_value_bits = std::bit_cast<uint64_t>(v);
  return AppendResult::kOk;  // counted by the caller, once for a batch (countResults)
}

void MemStore::countResults(const std::size_t (&results)[3]) {
  if (results[0] != 0) {
    appended_.fetch_add(results[0], std::memory_order_relaxed);
    sample_count_.fetch_add(results[0], std::memory_order_relaxed);
  }
  if (results[1] != 0) {
    rejected_out_of_order_.fetch_add(results[1], std::memory_order_relaxed);
  }
  if (results[2] != 0) {
    rejected_duplicate_.fetch_add(results[2], std::memory_order_relaxed);
  }
}

bool MemStore::stampedBeforeStep(int64_t t) {
  int64_t until = step_guard_until_ms_.load(std::memory_order_relaxed);
  if (until == 0) {
    return false;
  }
  const int64_t now = options_.wall_clock_ms();
  if (now >= until) {
    step_guard_until_ms_.compare_exchange_strong(until, 0, std::memory_order_relaxed);
    return false;
  }
  return t > now + kClockStepTolerance.count();
}

void MemStore::countResult(AppendResult r) {
  std::size_t results[3] = {};
  ++results[static_cast<int>(r)];
  countResults(results);
}

MemStore::Source* MemStore::source(SourceId id) {
  std::lock_guard lock(sources_mu_);
  return id < sources_.size() ? sources_[id].get() : nullptr;
}

bool MemStore::Source::hasLayout(uint64_t layout) const {
  return layout != 0 &&
         std::find(last_layouts.begin(), last_layouts.end(), layout) != last_layouts.end();
}

void MemStore::Source::rememberLayout(uint64_t layout) {
  if (layout != 0 && !hasLayout(layout)) {
    std::rotate(last_layouts.rbegin(), last_layouts.rbegin() + 1, last_layouts.rend());
    last_layouts[0] = layout;
  }
}

void MemStore::appendBatch(SourceId source_id, int64_t t, const MetricBatch& batch) {
  Source* src = source(source_id);
  if (src == nullptr) {
    return;
  }
  // The guard is looked at under the source's lock: see clockSteppedBack.
  std::lock_guard source_lock(src->mu);
  if (stampedBeforeStep(t)) {
    // The source's last series stay as they were: the next batch is compared with them.
    rejected_clock_step_.fetch_add(batch.seriesCount(), std::memory_order_relaxed);
    return;
  }
  if (src->hasLayout(batch.layout()) && batch.seriesCount() == src->last.size()) {
    // The same series as last time, in the same order: no labels to look at, and `last`
    // (with its pins) stays as it is.
    // Each series is a heap object last touched a cycle ago, cold in the cache: its lines are
    // fetched a few series ahead, so that the misses overlap instead of coming one by one (a
    // third of the store's time on a node's batches).
    const std::vector<Series*>& last = src->last;
    const std::size_t n = last.size();
    for (std::size_t k = 0; k < std::min(n, kPrefetchAhead); ++k) {
      prefetchForAppend(*last[k]);
    }
    std::size_t i = 0;
    std::size_t results[3] = {};
    for (const MetricFamily& family : batch.families()) {
      for (const MetricSample& sample : family.samples) {
        if (i + kPrefetchAhead < n) {
          prefetchForAppend(*last[i + kPrefetchAhead]);
        }
        ++results[static_cast<int>(appendToSeries(*last[i], t, sample.value))];
        ++i;
      }
    }
    countResults(results);
    return;
  }
  std::vector<Series*> current;
  current.reserve(src->last.size());
  std::size_t i = 0;
  for (const MetricFamily& family : batch.families()) {
    for (const MetricSample& sample : family.samples) {
      Series* s = nullptr;
      // Collectors emit the same series in the same order every cycle: try last cycle's
      // series at this position before hashing the labels.
      if (i < src->last.size() &&
          sameLabels(*src->last[i], family.name, sample.suffix, sample.labels)) {
        s = src->last[i];
        s->pins.fetch_add(1, std::memory_order_relaxed);
      } else {
        LabelSet full = withName(family.name, sample.suffix, sample.labels);
        s = getOrCreatePinned(full, labelsHash(full));
      }
      countResult(appendToSeries(*s, t, sample.value));
      current.push_back(s);
      ++i;
    }
  }
  if (current != src->last) {
    src->last_layouts = {};
  }
  src->rememberLayout(batch.layout());
  replaceLast(*src, std::move(current), t);
}

void MemStore::retireSource(SourceId source_id, int64_t t) {
  Source* src = source(source_id);
  if (src == nullptr) {
    return;
  }
  std::lock_guard source_lock(src->mu);
  if (stampedBeforeStep(t)) {
    t = options_.wall_clock_ms();  // its series still end, at the time it is now
  }
  replaceLast(*src, {}, t);
  src->last_layouts = {};
}

void MemStore::replaceLast(Source& src, std::vector<Series*> current, int64_t t) {
  // Series that were in the previous batch and are not in this one went away: mark them
  // stale now, as Prometheus does, so queries stop returning them at once.
  if (current != src.last) {
    std::unordered_set<Series*> present(current.begin(), current.end());
    for (Series* s : src.last) {
      if (present.count(s) == 0) {
        bool already_stale = false;
        {
          std::lock_guard lock(s->mu);
          already_stale = s->last_value_bits == kStaleNaNBits;
        }
        if (!already_stale) {
          countResult(appendToSeries(*s, t, staleNaN()));
        }
      }
    }
  }
  for (Series* s : src.last) {
    s->pins.fetch_sub(1, std::memory_order_relaxed);
  }
  src.last = std::move(current);
}

Status MemStore::append(const LabelSet& labels, int64_t t, double v) {
  if (!isSorted(labels)) {
    return invalidArgument("labels of " + labelsToString(labels) +
                           " are not sorted by name or have a duplicate name");
  }
  if (stampedBeforeStep(t)) {
    rejected_clock_step_.fetch_add(1, std::memory_order_relaxed);
    return invalidArgument("sample for " + labelsToString(labels) + " at " + std::to_string(t) +
                           " is stamped ahead of the wall clock, which stepped back lately");
  }
  Series* s = nullptr;
  if (std::any_of(labels.begin(), labels.end(), [](const Label& l) { return l.value.empty(); })) {
    LabelSet present = labels;  // an empty label is an absent one
    std::erase_if(present, [](const Label& l) { return l.value.empty(); });
    s = getOrCreatePinned(present, labelsHash(present));
  } else {
    s = getOrCreatePinned(labels, labelsHash(labels));
  }
  AppendResult r = appendToSeries(*s, t, v);
  s->pins.fetch_sub(1);
  countResult(r);
  switch (r) {
    case AppendResult::kOk:
      return Status::ok();
    case AppendResult::kOutOfOrder:
      return invalidArgument("out-of-order sample for " + labelsToString(labels) + " at " +
                             std::to_string(t));
    case AppendResult::kDuplicate:
      return invalidArgument("duplicate sample for " + labelsToString(labels) + " at " +
                             std::to_string(t));
  }
  return Status::ok();
}

std::vector<uint32_t> MemStore::matchingIds(const std::vector<LabelMatcher>& matchers) const {
  std::vector<uint32_t> all;
  auto allIds = [&]() -> const std::vector<uint32_t>& {
    if (all.empty()) {
      for (const auto& s : by_id_) {
        if (s) {
          all.push_back(s->id);
        }
      }
    }
    return all;
  };
  // Keeps in `a` what is also in `b` (both sorted), without allocating.
  auto intersect = [](std::vector<uint32_t>& a, const std::vector<uint32_t>& b) {
    auto out = a.begin();
    auto bi = b.begin();
    for (uint32_t id : a) {
      bi = std::lower_bound(bi, b.end(), id);
      if (bi == b.end()) {
        break;
      }
      if (*bi == id) {
        *out++ = id;
      }
    }
    a.erase(out, a.end());
  };

  std::optional<std::vector<uint32_t>> result;
  using ByValue = std::unordered_map<const std::string*, Postings>;
  // The postings of label `name` by value, or nullptr when no series has the label.
  auto byValueOf = [&](const std::string& name) -> const ByValue* {
    auto symbol = symbols_.find(name);
    if (symbol == symbols_.end()) {
      return nullptr;
    }
    auto pit = postings_.find(&symbol->first);
    return pit == postings_.end() ? nullptr : &pit->second;
  };
  // An equality matcher's postings (nullptr: no series matches), found once here and used
  // without a copy below.
  auto equalityPostings = [&](const LabelMatcher& m) -> const Postings* {
    const ByValue* by_value = byValueOf(m.name());
    auto value = symbols_.find(m.value());
    if (by_value == nullptr || value == symbols_.end()) {
      return nullptr;
    }
    auto it = by_value->find(&value->first);
    return it == by_value->end() ? nullptr : &it->second;
  };
  struct Step {
    std::size_t size;  // how many series an equality matches; the largest for other matchers
    const LabelMatcher* m;
    const Postings* equal;
  };
  // Cheap, selective matchers first: equality on a present value narrows the most, the one
  // with the fewest series first (its postings are the ones copied).
  std::vector<Step> ordered;
  for (const auto& m : matchers) {
    if (m.type() == MatchType::kEqual && !m.value().empty()) {
      const Postings* equal = equalityPostings(m);
      ordered.push_back({equal != nullptr ? equal->size() : 0, &m, equal});
    } else {
      ordered.push_back({std::numeric_limits<std::size_t>::max(), &m, nullptr});
    }
  }
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const Step& a, const Step& b) { return a.size < b.size; });
  for (const auto& [size, m, equal] : ordered) {
    std::vector<uint32_t> ids;
    const ByValue* by_value = byValueOf(m->name());
    if (m->matches("")) {
      // Matches series without the label too: everything except those whose value fails.
      std::vector<uint32_t> excluded;
      if (by_value != nullptr) {
        for (const auto& [value, postings] : *by_value) {
          if (!m->matches(*value)) {
            excluded.insert(excluded.end(), postings.begin(), postings.end());
          }
        }
      }
      std::sort(excluded.begin(), excluded.end());
      const auto& everything = allIds();
      std::set_difference(everything.begin(), everything.end(), excluded.begin(), excluded.end(),
                          std::back_inserter(ids));
    } else if (by_value != nullptr && m->type() != MatchType::kEqual) {
      // (An equality's postings were found when ordering the matchers.)
      for (const auto& [value, postings] : *by_value) {
        if (m->matches(*value)) {
          ids.insert(ids.end(), postings.begin(), postings.end());
        }
      }
      std::sort(ids.begin(), ids.end());
    }
    const std::vector<uint32_t>& matching = equal != nullptr ? *equal : ids;
    if (!result) {
      result = equal != nullptr ? *equal : std::move(ids);
    } else {
      intersect(*result, matching);
    }
    if (result->empty()) {
      break;
    }
  }
  if (!result) {
    return allIds();
  }
  return std::move(*result);
}

std::vector<SeriesSamples> MemStore::select(const std::vector<LabelMatcher>& matchers, int64_t mint,
                                            int64_t maxt) const {
  return selectSamples(matchers, mint, maxt, false);
}

std::vector<SeriesSamples> MemStore::selectNewest(const std::vector<LabelMatcher>& matchers,
                                                  int64_t mint, int64_t maxt) const {
  return selectSamples(matchers, mint, maxt, true);
}

std::vector<SeriesSamples> MemStore::selectSamples(const std::vector<LabelMatcher>& matchers,
                                                   int64_t mint, int64_t maxt,
                                                   bool newest_only) const {
  std::shared_lock index_lock(index_mu_);
  std::vector<SeriesSamples> out;
  const std::vector<uint32_t> ids = matchingIds(matchers);
  out.reserve(ids.size());
  for (uint32_t id : ids) {
    Series& s = *by_id_[id];
    SeriesSamples ss;
    {
      std::lock_guard lock(s.mu);
      if (newest_only && s.head.count + s.closed.size() > 0 && s.last_t <= maxt) {
        // The newest sample is at hand; it is the one wanted if it is in the window.
        if (s.last_t >= mint) {
          ss.samples.push_back({s.last_t, std::bit_cast<double>(s.last_value_bits)});
        }
      } else {
        decodeWindow(s, mint, maxt, ss.samples);
        if (newest_only && ss.samples.size() > 1) {
          ss.samples.erase(ss.samples.begin(), ss.samples.end() - 1);
        }
      }
      if (!ss.samples.empty()) {
        ss.labels = s.sharedLabelSet(index_bytes_);
      }
    }
    if (!ss.samples.empty()) {
      out.push_back(std::move(ss));
    }
  }
  return out;
}

void MemStore::decodeWindow(const Series& s, int64_t mint, int64_t maxt, std::vector<Sample>& out) {
  std::size_t upper_bound = s.head.count;
  for (const ClosedChunk& c : s.closed) {
    if (c.maxt >= mint && c.mint <= maxt) {
      upper_bound += c.count;
    }
  }
  out.reserve(upper_bound);
  // Only the chunks that overlap the range are decoded.
  for (const ClosedChunk& c : s.closed) {
    if (c.maxt >= mint && c.mint <= maxt) {
      decodeChunk(s, c.data.get(), c.bits, c.count, c.mint, false, mint, maxt, out);
    }
  }
  if (s.head.count > 0 && s.last_t >= mint && s.head_mint <= maxt) {
    decodeChunk(s, s.head.bytes.data(), s.head.bits, s.head.count, s.head_mint, true, mint, maxt,
                out);
  }
}

void MemStore::decodeChunk(const Series& s, const uint8_t* data, uint32_t bits, uint16_t count,
                           int64_t chunk_mint, bool in_head, int64_t mint, int64_t maxt,
                           std::vector<Sample>& out) {
  const Series::ReadHint* hint = s.read_hint.get();
  const bool resume = hint != nullptr && hint->chunk_mint == chunk_mint &&
                      hint->in_head == in_head && hint->position.t < mint &&
                      hint->position.bit <= bits && hint->position.read <= count;
  GorillaDecoder dec = resume ? GorillaDecoder(data, bits, count, hint->position)
                              : GorillaDecoder(data, bits, count);
  GorillaDecoder::Position before_window;
  const bool skipped = decodeWith(dec, mint, maxt, out, &before_window);
  if (skipped && (hint == nullptr || before_window.t > hint->position.t)) {
    if (!s.read_hint) {
      s.read_hint = std::make_unique<Series::ReadHint>();
    }
    *s.read_hint = {chunk_mint, in_head, before_window};
  }
}

void MemStore::scan(int64_t mint, int64_t maxt, const ScanCursor& cursor,
                    const ScanVisitor& visit) const {
  std::shared_lock index_lock(index_mu_);
  std::vector<Sample> buffer;
  for (const auto& sp : by_id_) {
    if (!sp) {
      continue;
    }
    Series& s = *sp;
    buffer.clear();
    {
      std::lock_guard lock(s.mu);
      if (s.last_t < mint || s.head.count + s.closed.size() == 0) {
        continue;
      }
      const int64_t after = std::max(cursor(s.id, s.hash), mint - 1);
      if (s.last_t <= after) {
        continue;
      }
      if (s.prev_t <= after && s.last_t <= maxt) {
        // Only the newest sample is new: it is at hand without decoding.
        buffer.push_back({s.last_t, std::bit_cast<double>(s.last_value_bits)});
      } else {
        for (const ClosedChunk& c : s.closed) {
          if (c.maxt > after && c.mint <= maxt) {
            decodeRange(c.data.get(), c.bits, c.count, after + 1, maxt, buffer);
          }
        }
        if (s.head.count > 0 && s.head_mint <= maxt) {
          decodeRange(s.head.bytes.data(), s.head.bits, s.head.count, after + 1, maxt, buffer);
        }
      }
    }
    if (!buffer.empty()) {
      visit(s.hash, buffer, [&s] { return s.labelSet(); });
    }
  }
}

std::vector<LabelSet> MemStore::series(const std::vector<LabelMatcher>& matchers) const {
  std::shared_lock index_lock(index_mu_);
  std::vector<LabelSet> out;
  for (uint32_t id : matchingIds(matchers)) {
    out.push_back(by_id_[id]->labelSet());
  }
  return out;
}

std::vector<std::string> MemStore::labelNames() const {
  std::shared_lock index_lock(index_mu_);
  std::vector<std::string> out;
  for (const auto& [name, values] : postings_) {
    if (!values.empty()) {
      out.push_back(*name);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> MemStore::labelValues(const std::string& name) const {
  std::shared_lock index_lock(index_mu_);
  std::vector<std::string> out;
  auto symbol = symbols_.find(name);
  if (symbol == symbols_.end()) {
    return out;
  }
  auto it = postings_.find(&symbol->first);
  if (it == postings_.end()) {
    return out;
  }
  for (const auto& [value, postings] : it->second) {
    if (!postings.empty()) {
      out.push_back(*value);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void MemStore::setLimits(std::chrono::milliseconds retention, std::size_t memory_budget_bytes) {
  std::lock_guard lock(limits_mu_);
  options_.retention = retention;
  options_.memory_budget_bytes = memory_budget_bytes;
}

void MemStore::enforceRetention(int64_t now_ms) {
  int64_t cutoff = 0;
  std::size_t budget = 0;
  {
    std::lock_guard lock(limits_mu_);
    cutoff = now_ms - options_.retention.count();
    budget = options_.memory_budget_bytes;
  }
  std::vector<Series*> maybe_dead;
  {
    std::shared_lock index_lock(index_mu_);
    auto dropClosedFront = [&](Series& s) {
      const ClosedChunk& c = s.closed.front();
      s.closed_bytes -= closedBytes(c);
      sample_count_ -= c.count;
      s.closed.erase(s.closed.begin());
      account(s);
    };
    for (const auto& owned : by_id_) {
      if (!owned) {
        continue;
      }
      Series& s = *owned;
      std::lock_guard lock(s.mu);
      while (!s.closed.empty() && s.closed.front().maxt < cutoff) {
        dropClosedFront(s);
      }
      if (s.closed.empty() && s.head.count > 0 && s.last_t < cutoff) {
        sample_count_ -= s.head.count;
        s.head = GorillaEncoder{};
        account(s);
      }
      if (s.empty()) {
        maybe_dead.push_back(&s);
      }
    }
    if (budget > 0 && chunk_bytes_.load() > budget) {
      // Over budget: the oldest closed chunks go first, whichever series they belong to.
      std::vector<std::pair<int64_t, Series*>> oldest;
      for (const auto& owned : by_id_) {
        if (owned) {
          std::lock_guard lock(owned->mu);
          for (const ClosedChunk& c : owned->closed) {
            oldest.emplace_back(c.maxt, owned.get());
          }
        }
      }
      std::sort(oldest.begin(), oldest.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      for (const auto& [maxt, s] : oldest) {
        if (chunk_bytes_.load() <= budget) {
          break;
        }
        std::lock_guard lock(s->mu);
        if (!s->closed.empty() && s->closed.front().maxt == maxt) {
          dropClosedFront(*s);
          evictions_.fetch_add(1);
        }
      }
    }
  }
  for (Series* s : maybe_dead) {
    removeIfDead(s);
  }
}

void MemStore::removeIfDead(Series* s) {
  Shard& shard = shards_[s->hash % shards_.size()];
  std::lock_guard shard_lock(shard.mu);
  std::unique_lock index_lock(index_mu_);
  {
    std::lock_guard lock(s->mu);
    if (!s->empty() || s->pins.load() != 0) {
      return;
    }
  }
  auto [begin, end] = shard.by_hash.equal_range(s->hash);
  for (auto it = begin; it != end; ++it) {
    if (it->second == s) {
      shard.by_hash.erase(it);
      break;
    }
  }
  for (const auto& [n, v] : s->labels) {
    auto pit = postings_.find(n);
    if (pit != postings_.end()) {
      auto vit = pit->second.find(v);
      if (vit != pit->second.end()) {
        Postings& p = vit->second;
        p.erase(std::lower_bound(p.begin(), p.end(), s->id));
        if (p.empty()) {
          pit->second.erase(vit);
          index_bytes_ -= sizeof(Postings) + kHashNodeBytes;
        }
      }
      if (pit->second.empty()) {
        postings_.erase(pit);
      }
    }
  }
  index_bytes_ -= sizeof(Series) + s->labels.capacity() * sizeof(InternedLabel) +
                  s->labels.size() * sizeof(uint32_t) + kHashNodeBytes + sizeof(void*);
  if (s->shared_labels) {
    index_bytes_ -= sharedLabelBytes(*s->shared_labels);
  }
  for (const auto& [n, v] : s->labels) {
    release(n);
    release(v);
  }
  chunk_bytes_ -= s->chunk_bytes;
  const uint32_t id = s->id;
  by_id_[id].reset();
  free_ids_.push_back(id);
  series_count_.fetch_sub(1);
}

std::size_t MemStore::dropAfter(int64_t t) {
  std::size_t dropped = 0;
  std::vector<Series*> maybe_dead;
  {
    std::shared_lock index_lock(index_mu_);
    std::vector<Sample> kept;
    for (const auto& owned : by_id_) {
      if (!owned) {
        continue;
      }
      Series& s = *owned;
      std::lock_guard lock(s.mu);
      if (s.last_t <= t) {
        continue;
      }
      // Rare (a clock step), so the simple way: decode what stays and encode it again.
      kept.clear();
      std::size_t before = s.head.count;
      for (const ClosedChunk& c : s.closed) {
        before += c.count;
        if (c.mint <= t) {
          decodeRange(c.data.get(), c.bits, c.count, INT64_MIN, t, kept);
        }
      }
      if (s.head.count > 0 && s.head_mint <= t) {
        decodeRange(s.head.bytes.data(), s.head.bits, s.head.count, INT64_MIN, t, kept);
      }
      s.closed.clear();
      s.closed_bytes = 0;
      s.head = GorillaEncoder{};
      s.read_hint.reset();  // the chunks are encoded anew
      s.last_t = INT64_MIN;
      s.prev_t = INT64_MIN;
      s.last_value_bits = 0;
      std::size_t readded = 0;
      for (const Sample& k : kept) {
        readded += appendLocked(s, k.t, k.v) == AppendResult::kOk ? 1 : 0;
      }
      sample_count_ -= before - readded;
      account(s);
      dropped += before - kept.size();
      if (s.empty()) {
        maybe_dead.push_back(&s);
      }
    }
  }
  for (Series* s : maybe_dead) {
    removeIfDead(s);
  }
  return dropped;
}

std::size_t MemStore::clockSteppedBack(int64_t from_ms, int64_t to_ms) {
  step_guard_until_ms_.store(std::min(from_ms, to_ms + kClockStepGuard.count()),
                             std::memory_order_relaxed);
  // A batch holds its source's lock from its look at the guard to its last sample: once each
  // source's lock has been taken in turn, the batches under way have ended, and every later one
  // sees the guard. Nothing stamped before the step then comes in behind the drop.
  std::vector<Source*> all;
  {
    std::lock_guard lock(sources_mu_);
    for (const auto& src : sources_) {
      all.push_back(src.get());
    }
  }
  for (Source* src : all) {
    std::lock_guard wait_for_batch(src->mu);
  }
  return dropAfter(to_ms);
}

StoreStats MemStore::stats() const {
  StoreStats st;
  st.series = series_count_.load();
  st.samples = sample_count_.load();
  st.chunk_bytes = chunk_bytes_.load();
  st.index_bytes = index_bytes_.load();
  st.chunk_segment_bytes = ChunkArena::mappedBytes();  // one store per process
  st.head_slab_bytes = HeadPool::mappedBytes();
  st.evictions = evictions_.load();
  st.rejected_out_of_order = rejected_out_of_order_.load();
  st.rejected_duplicate = rejected_duplicate_.load();
  st.rejected_clock_step = rejected_clock_step_.load();
  st.appended = appended_.load();
  return st;
}

void MemStore::clearAll() {
  {
    std::lock_guard lock(sources_mu_);
    for (auto& src : sources_) {
      std::lock_guard source_lock(src->mu);
      src->last.clear();  // their series are about to go
      src->last_layouts = {};
    }
  }
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mu);
    shard.by_hash.clear();
  }
  std::unique_lock index_lock(index_mu_);
  postings_.clear();
  symbols_.clear();
  by_id_.clear();
  free_ids_.clear();
  series_count_ = 0;
  sample_count_ = 0;
  chunk_bytes_ = 0;
  index_bytes_ = 0;
}

}  // namespace store
}  // namespace vigil
