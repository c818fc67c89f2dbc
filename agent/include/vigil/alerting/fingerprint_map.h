#pragma once
// A map from alert fingerprints to values: the values in one dense vector, found through an
// open-addressed index of 8-byte slots (the entry's position and the fingerprint's high half).
// Made for the alert store, which every received alert looks up: a lookup of a fingerprint it
// does not have reads one slot (a node-based map reads its bucket and often a node), an
// insertion appends to the vector (no node to allocate), and growth rehashes the small index
// from the entries in order instead of visiting nodes scattered over the heap. The index is at
// most half full. Entries leave in batches (eraseIf), which compacts them and rebuilds the
// index; single erasure is not needed by the store and not offered.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace vigil::alerting {

/// Where the probe for `fp` starts in a table of `slots` (a power of two) slots: Fibonacci
/// hashing, since FNV's low bits are not all well mixed and the product's high bits are.
inline std::size_t fingerprintHome(uint64_t fp, std::size_t slots) {
  return static_cast<std::size_t>((fp * 0x9E3779B97F4A7C15ULL) >> (64 - std::countr_zero(slots)));
}

template <class V>
class FingerprintMap {
 public:
  /// The value of `fp`, or nullptr. Pointers stay valid until the next tryEmplace or eraseIf.
  V* find(uint64_t fp) {
    if (slots_.empty()) {
      return nullptr;
    }
    const Slot s = slots_[slotOf(fp)];
    return s.entry == 0 ? nullptr : &entries_[s.entry - 1].value;
  }
  const V* find(uint64_t fp) const { return const_cast<FingerprintMap*>(this)->find(fp); }

  /// The value of `fp`, value-initialised if it is new, and whether it is.
  std::pair<V*, bool> tryEmplace(uint64_t fp) {
    if ((entries_.size() + 1) * 2 > slots_.size()) {
      rebuildIndex(std::max<std::size_t>(kMinSlots, slots_.size() * 2));
    }
    Slot& s = slots_[slotOf(fp)];
    if (s.entry != 0) {
      return {&entries_[s.entry - 1].value, false};
    }
    entries_.push_back({fp, V{}});
    s = {static_cast<uint32_t>(entries_.size()), tagOf(fp)};
    return {&entries_.back().value, true};
  }

  /// Calls fn(fp, value) for every entry, in no particular order.
  template <class Fn>
  void forEach(Fn fn) {
    for (Entry& e : entries_) {
      fn(e.fp, e.value);
    }
  }
  template <class Fn>
  void forEach(Fn fn) const {
    for (const Entry& e : entries_) {
      fn(e.fp, e.value);
    }
  }

  /// Removes the entries for which remove(fp, value) is true; returns how many.
  template <class Predicate>
  std::size_t eraseIf(Predicate remove) {
    const std::size_t removed =
        std::erase_if(entries_, [&](const Entry& e) { return remove(e.fp, e.value); });
    if (removed > 0) {
      if (entries_.capacity() > 2 * entries_.size()) {
        entries_.shrink_to_fit();
      }
      rebuildIndex(entries_.empty() ? 0 : std::max(kMinSlots, std::bit_ceil(entries_.size() * 2)));
    }
    return removed;
  }

  std::size_t size() const { return entries_.size(); }

 private:
  static constexpr std::size_t kMinSlots = 16;
  struct Entry {
    uint64_t fp;
    V value;
  };
  struct Slot {
    uint32_t entry = 0;  // position in entries_ plus one; 0 marks an empty slot
    uint32_t tag = 0;    // the fingerprint's high half: most probes end without reading entries_
  };
  static uint32_t tagOf(uint64_t fp) { return static_cast<uint32_t>(fp >> 32); }

  /// The slot holding `fp`, or the empty slot where it would go (linear probing).
  std::size_t slotOf(uint64_t fp) const {
    const std::size_t mask = slots_.size() - 1;
    const uint32_t tag = tagOf(fp);
    for (std::size_t i = fingerprintHome(fp, slots_.size());; i = (i + 1) & mask) {
      const Slot s = slots_[i];
      if (s.entry == 0 || (s.tag == tag && entries_[s.entry - 1].fp == fp)) {
        return i;
      }
    }
  }

  void rebuildIndex(std::size_t slots) {
    // The fingerprints are distinct, so each goes to the first empty slot of its probe.
    slots_.assign(slots, Slot{});
    for (std::size_t k = 0; k < entries_.size(); ++k) {
      slots_[slotOf(entries_[k].fp)] = {static_cast<uint32_t>(k + 1), tagOf(entries_[k].fp)};
    }
    if (slots == 0) {
      slots_.shrink_to_fit();
    }
  }

  std::vector<Entry> entries_;
  std::vector<Slot> slots_;  // a power of two in size, or empty
};

}  // namespace vigil::alerting
