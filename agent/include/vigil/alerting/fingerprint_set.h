#pragma once
// A set of alert fingerprints, open-addressed with linear probing: a lookup reads one slot
// array (one cache miss for a large group) instead of hopping through a node-based set's
// bucket and nodes (two or three), and an entry costs 16 to 32 bytes (8-byte slots, a quarter
// to half full) instead of a 32-byte node plus its bucket. Written here because the flat hash
// containers of Boost (1.81) are newer than the Boost the project builds with.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vigil::alerting {

class FingerprintSet {
 public:
  /// Adds `fp`; returns whether it was new.
  bool insert(uint64_t fp);
  bool contains(uint64_t fp) const;
  std::size_t size() const { return used_ + (has_zero_ ? 1 : 0); }
  bool empty() const { return size() == 0; }
  /// Removes every fingerprint `remove` returns true for; returns how many. Rebuilds the
  /// table (it is called once per flush, and shrinks the table when the set shrank).
  template <class Predicate>
  std::size_t eraseIf(Predicate remove) {
    std::vector<uint64_t> kept;
    kept.reserve(size());
    std::size_t removed = 0;
    forEach([&](uint64_t fp) {
      if (remove(fp)) {
        ++removed;
      } else {
        kept.push_back(fp);
      }
    });
    if (removed > 0) {
      rebuild(kept);
    }
    return removed;
  }
  /// The fingerprints in ascending order.
  std::vector<uint64_t> sorted() const;

 private:
  template <class Fn>
  void forEach(Fn fn) const {
    if (has_zero_) {
      fn(0);
    }
    for (const uint64_t fp : slots_) {
      if (fp != 0) {
        fn(fp);
      }
    }
  }
  std::size_t slotOf(uint64_t fp) const;
  void rebuild(const std::vector<uint64_t>& fingerprints);

  std::vector<uint64_t> slots_;  // 0 marks an empty slot; the size is a power of two
  std::size_t used_ = 0;         // slots in use
  bool has_zero_ = false;        // fingerprint 0 is kept here, since 0 marks empty slots
};

}  // namespace vigil::alerting
