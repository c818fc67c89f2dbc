#pragma once
// Gorilla compression of (timestamp, value) samples, after Pelkonen et al., "Gorilla: A Fast,
// Scalable, In-Memory Time Series Database" (VLDB 2015): timestamps as delta-of-deltas in
// variable-width buckets, values as the XOR with the previous value, storing only the
// meaningful bits.
//
// One addition: most node metrics are decimals with few digits (CPU seconds in hundredths,
// byte counters, load averages). A chunk whose first value is such a decimal stores its values
// as integers scaled by 10^k, delta-of-delta encoded like the timestamps, which is far smaller
// than XOR of the doubles; a value that does not fit the chunk's scale exactly makes the store
// start a new chunk. Decoding gives back the identical bits. Pure computation; the encoder's
// buffer comes from HeadPool (head_pool.h).

#include <bit>
#include <cstdint>
#include <cstring>
#include <vector>

#include "head_pool.h"

namespace vigil::store {

/// Appends samples to a growing bit stream. The encoder's state travels with the chunk so that
/// appends go on in place after a restart from a checkpoint.
struct GorillaEncoder {
  std::vector<uint8_t, HeadAllocator<uint8_t>> bytes;  // see head_pool.h
  uint32_t bits = 0;                                   // bits used in `bytes`
  uint16_t count = 0;
  int64_t prev_t = 0;
  int64_t prev_delta = 0;
  uint64_t prev_value = 0;  // bit pattern of the previous value
  uint8_t leading = 0xff;   // 0xff: no XOR window yet
  uint8_t trailing = 0;
  uint8_t scale = 0;  // 0: XOR of doubles; k + 1: integers scaled by 10^k
  /// Set before the first append: the smallest scale to use if the first value fits it. The
  /// store passes the largest scale the series needed so far, so that a counter whose first
  /// value happens to have fewer decimals does not cut every chunk short.
  uint8_t min_scale = 0;
  /// Set before the first append to false to store doubles as XOR whatever they are.
  bool allow_scaled = true;
  /// Scaled integer mode: every value is a multiple of 2^shift and stored divided by it (memory
  /// sizes in KiB multiples lose ten zero bits per delta). Set before the first append.
  uint8_t shift = 0;
  int64_t prev_int = 0;  // scaled integer mode: the previous value and delta
  int64_t prev_int_delta = 0;
  /// Every value after the first took a single bit (the same value, or in scaled mode the
  /// same step, as before), so no other encoding of this chunk's values is smaller. Not kept
  /// in checkpoints: a head read back from one starts with false.
  bool values_minimal = true;

  /// Whether `v` can be appended to this chunk (always, while it is empty or in XOR mode).
  bool fits(double v) const;
  /// Appends a sample; `fits(v)` must hold and `t` must be later than the previous sample.
  void append(int64_t t, double v);

 private:
  void writeBits(uint64_t value, unsigned nbits);
  void writeBit(bool bit);
};

/// Reads back what a GorillaEncoder wrote, one sample at a time. Bits are taken from a 64-bit
/// buffer refilled a byte at a time, not read one by one: decoding is the hot loop of every
/// range query.
class GorillaDecoder {
 public:
  GorillaDecoder(const uint8_t* data, uint32_t bits, uint16_t count)
      : data_(data), nbytes_((bits + 7) / 8), bits_(bits), bits_left_(bits), count_(count) {}

  /// Where a decoder stands after the sample it read last: enough to resume there later over
  /// the same chunk, which may have grown since if it is a head chunk (an encoder only appends).
  struct Position {
    uint32_t bit = 0;  // bits consumed
    uint16_t read = 0;
    int64_t t = 0;
    int64_t delta = 0;
    uint64_t value = 0;
    int64_t int_value = 0;
    int64_t int_delta = 0;
    uint8_t leading = 0;
    uint8_t trailing = 0;
    uint8_t scale = 0;
    uint8_t shift = 0;
  };
  Position position() const {
    return {bits_ - bits_left_, read_,    t_,        delta_, value_, int_,
            int_delta_,         leading_, trailing_, scale_, shift_};
  }
  /// Resumes at `from`, a position() of a decoder over the first `from.bit` bits of the same
  /// stream; `bits` and `count` are the stream's now. The caller checks `from` fits in them.
  GorillaDecoder(const uint8_t* data, uint32_t bits, uint16_t count, const Position& from)
      : data_(data),
        nbytes_((bits + 7) / 8),
        bits_(bits),
        bits_left_(bits - from.bit / 8 * 8),
        count_(count),
        pos_(from.bit / 8),
        read_(from.read),
        t_(from.t),
        delta_(from.delta),
        value_(from.value),
        leading_(from.leading),
        trailing_(from.trailing),
        scale_(from.scale),
        shift_(from.shift),
        int_(from.int_value),
        int_delta_(from.int_delta) {
    uint64_t skipped = 0;
    if (from.bit % 8 != 0) {
      (void)readBits(from.bit % 8, skipped);
    }
  }

  /// The next sample, or false at the end (or on a corrupted stream).
  bool next(int64_t& t, double& v);
  /// Moves to the next sample without converting its value, which then comes from value():
  /// readers skipping the samples before a window save the conversion (a division for
  /// scaled-integer chunks) on each one they skip.
  bool advance();
  int64_t time() const { return t_; }
  double value() const;

 private:
  void fill() {
    if (avail_ <= 56 && pos_ + 8 <= nbytes_) {
      // Whole bytes from one 8-byte load, first byte most significant.
      uint64_t word = 0;
      std::memcpy(&word, data_ + pos_, sizeof word);
      if constexpr (std::endian::native == std::endian::little) {
        word = __builtin_bswap64(word);
      }
      const unsigned bytes = (64 - avail_) / 8;
      buf_ |= word >> avail_;
      avail_ += bytes * 8;
      pos_ += bytes;
      if (avail_ < 64) {
        buf_ &= ~uint64_t{0} << (64 - avail_);  // the part of a byte not taken yet
      }
      return;
    }
    while (avail_ <= 56 && pos_ < nbytes_) {
      buf_ |= static_cast<uint64_t>(data_[pos_++]) << (56 - avail_);
      avail_ += 8;
    }
  }
  /// Reads 1..56 bits.
  bool readBits(unsigned n, uint64_t& out) {
    if (n > bits_left_) {
      return false;
    }
    if (avail_ < n) {
      fill();
    }
    out = buf_ >> (64 - n);
    buf_ <<= n;
    avail_ -= n;
    bits_left_ -= n;
    return true;
  }
  bool read64(uint64_t& out) {
    uint64_t hi = 0;
    uint64_t lo = 0;
    if (!readBits(32, hi) || !readBits(32, lo)) {
      return false;
    }
    out = (hi << 32) | lo;
    return true;
  }
  bool readWide(unsigned n, uint64_t& out) {
    return n > 56 ? readWideSlow(n, out) : readBits(n, out);
  }
  bool readWideSlow(unsigned n, uint64_t& out) {
    uint64_t hi = 0;
    uint64_t lo = 0;
    if (!readBits(n - 32, hi) || !readBits(32, lo)) {
      return false;
    }
    out = (hi << 32) | lo;
    return true;
  }

  const uint8_t* data_;
  uint32_t nbytes_;
  uint32_t bits_;
  uint32_t bits_left_;
  uint16_t count_;
  uint32_t pos_ = 0;  // next byte to load into buf_
  uint64_t buf_ = 0;  // unread bits, most significant first
  unsigned avail_ = 0;
  uint16_t read_ = 0;
  int64_t t_ = 0;
  int64_t delta_ = 0;
  uint64_t value_ = 0;
  uint8_t leading_ = 0;
  uint8_t trailing_ = 0;
  uint8_t scale_ = 0;
  uint8_t shift_ = 0;
  int64_t int_ = 0;
  int64_t int_delta_ = 0;
};

/// The scale (k + 1, so never 0) of the shortest exact decimal form of `v` with at most 6
/// fractional digits and an integer part below 2^53, or 0 if there is none.
uint8_t decimalScale(double v);
/// `v` as an integer at `scale` (see decimalScale), if that gives back exactly `v`.
bool scaledValue(double v, uint8_t scale, int64_t& out);

}  // namespace vigil::store
