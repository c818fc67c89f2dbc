#include "vigil/alerting/fingerprint_set.h"

#include "vigil/alerting/fingerprint_map.h"

#include <algorithm>
#include <bit>

namespace vigil::alerting {

namespace {

constexpr std::size_t kMinSlots = 8;

}  // namespace

std::size_t FingerprintSet::slotOf(uint64_t fp) const { return fingerprintHome(fp, slots_.size()); }

bool FingerprintSet::contains(uint64_t fp) const {
  if (fp == 0) {
    return has_zero_;
  }
  if (slots_.empty()) {
    return false;
  }
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = slotOf(fp);; i = (i + 1) & mask) {
    if (slots_[i] == fp) {
      return true;
    }
    if (slots_[i] == 0) {
      return false;
    }
  }
}

bool FingerprintSet::insert(uint64_t fp) {
  if (fp == 0) {
    const bool fresh = !has_zero_;
    has_zero_ = true;
    return fresh;
  }
  // At most half full, so that probe sequences stay short.
  if ((used_ + 1) * 2 > slots_.size()) {
    std::vector<uint64_t> old(std::max(kMinSlots, slots_.size() * 2), 0);
    old.swap(slots_);
    used_ = 0;
    for (const uint64_t s : old) {
      if (s != 0) {
        insert(s);
      }
    }
  }
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = slotOf(fp);; i = (i + 1) & mask) {
    if (slots_[i] == fp) {
      return false;
    }
    if (slots_[i] == 0) {
      slots_[i] = fp;
      ++used_;
      return true;
    }
  }
}

void FingerprintSet::rebuild(const std::vector<uint64_t>& fingerprints) {
  has_zero_ = false;
  used_ = 0;
  slots_.clear();
  if (!fingerprints.empty()) {
    slots_.assign(std::max(kMinSlots, std::bit_ceil(fingerprints.size() * 2)), 0);
  }
  for (const uint64_t fp : fingerprints) {
    insert(fp);
  }
  slots_.shrink_to_fit();
}

std::vector<uint64_t> FingerprintSet::sorted() const {
  std::vector<uint64_t> out;
  out.reserve(size());
  forEach([&](uint64_t fp) { out.push_back(fp); });
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace vigil::alerting
