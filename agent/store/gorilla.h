#pragma once
// Gorilla compression of (timestamp, value) samples, after Pelkonen et al., "Gorilla: A Fast,
// Scalable, In-Memory Time Series Database" (VLDB 2015): timestamps as delta-of-deltas in
// variable-width buckets, values as the XOR with the previous value, storing only the
// meaningful bits. Pure computation; no locking.

#include <cstdint>
#include <vector>

namespace vigil::store {

/// Appends samples to a growing bit stream. The encoder's state travels with the chunk so that
/// appends go on in place after a restart from a checkpoint.
struct GorillaEncoder {
  std::vector<uint8_t> bytes;
  uint32_t bits = 0;  // bits used in `bytes`
  uint16_t count = 0;
  int64_t prev_t = 0;
  int64_t prev_delta = 0;
  uint64_t prev_value = 0;  // bit pattern of the previous value
  uint8_t leading = 0xff;   // 0xff: no XOR window yet
  uint8_t trailing = 0;

  void append(int64_t t, double v);

 private:
  void writeBits(uint64_t value, unsigned nbits);
  void writeBit(bool bit);
};

/// Reads back what a GorillaEncoder wrote, one sample at a time.
class GorillaDecoder {
 public:
  GorillaDecoder(const uint8_t* data, uint32_t bits, uint16_t count)
      : data_(data), bits_(bits), count_(count) {}

  /// The next sample, or false at the end (or on a corrupted stream).
  bool next(int64_t& t, double& v);

 private:
  bool readBit(bool& bit);
  bool readBits(unsigned nbits, uint64_t& out);

  const uint8_t* data_;
  uint32_t bits_;
  uint16_t count_;
  uint32_t pos_ = 0;
  uint16_t read_ = 0;
  int64_t t_ = 0;
  int64_t delta_ = 0;
  uint64_t value_ = 0;
  uint8_t leading_ = 0;
  uint8_t trailing_ = 0;
};

}  // namespace vigil::store
