#include "gorilla.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace vigil::store {

namespace {

// Delta-of-delta buckets: a prefix of 1..5 bits then a signed value of this many bits. The
// last bucket holds any 64-bit value, for timestamps that jump (a resumed collector).
struct Bucket {
  uint64_t prefix;
  unsigned prefix_bits;
  unsigned value_bits;
};
constexpr Bucket kBuckets[] = {
    {0b10, 2, 7}, {0b110, 3, 9}, {0b1110, 4, 12}, {0b11110, 5, 20}, {0b11111, 5, 64}};

bool fitsBits(int64_t v, unsigned nbits) {
  if (nbits >= 64) {
    return true;
  }
  const int64_t lo = -(int64_t{1} << (nbits - 1));
  const int64_t hi = (int64_t{1} << (nbits - 1)) - 1;
  return v >= lo && v <= hi;
}

// Scaled integer deltas-of-deltas: counters of varying rates need wider buckets than timestamps.
constexpr Bucket kIntBuckets[] = {{0b10, 2, 7},     {0b110, 3, 9},     {0b1110, 4, 12},
                                  {0b11110, 5, 20}, {0b111110, 6, 32}, {0b111111, 6, 64}};

constexpr double kPow10[] = {1, 10, 100, 1000, 10000, 100000, 1000000};
constexpr int kMaxDecimals = 6;
constexpr double kMaxExactInt = 9007199254740992.0;  // 2^53

uint64_t toBits(double v) { return std::bit_cast<uint64_t>(v); }

// The scaled integer of `v` at `scale`, if it gives back exactly `v`.
bool toScaled(double v, uint8_t scale, int64_t& out) {
  const double scaled = v * kPow10[scale - 1];
  if (!(std::fabs(scaled) < kMaxExactInt)) {
    return false;  // also NaN and infinities
  }
  const int64_t m = std::llround(scaled);
  if (toBits(static_cast<double>(m) / kPow10[scale - 1]) != toBits(v)) {
    return false;  // not that decimal, or -0.0
  }
  out = m;
  return true;
}
double fromBits(uint64_t b) { return std::bit_cast<double>(b); }

}  // namespace

bool scaledValue(double v, uint8_t scale, int64_t& out) {
  return scale >= 1 && scale <= kMaxDecimals + 1 && toScaled(v, scale, out);
}

uint8_t decimalScale(double v) {
  int64_t m = 0;
  for (int k = 0; k <= kMaxDecimals; ++k) {
    if (toScaled(v, static_cast<uint8_t>(k + 1), m)) {
      return static_cast<uint8_t>(k + 1);
    }
  }
  return 0;
}

bool GorillaEncoder::fits(double v) const {
  // The value before fitted, so the same value does (most node series stay put for minutes).
  if (count == 0 || scale == 0 || toBits(v) == prev_value) {
    return true;
  }
  int64_t m = 0;
  return toScaled(v, scale, m) && (static_cast<uint64_t>(m) & ((uint64_t{1} << shift) - 1)) == 0;
}

void GorillaEncoder::writeBit(bool bit) {
  if (bits % 8 == 0) {
    bytes.push_back(0);
  }
  if (bit) {
    bytes.back() |= static_cast<uint8_t>(0x80u >> (bits % 8));
  }
  ++bits;
}

void GorillaEncoder::writeBits(uint64_t value, unsigned nbits) {
  while (nbits > 0) {
    if (bits % 8 == 0) {
      bytes.push_back(0);
    }
    const unsigned free_bits = 8 - bits % 8;
    const unsigned take = nbits < free_bits ? nbits : free_bits;
    const uint64_t chunk = (value >> (nbits - take)) & ((uint64_t{1} << take) - 1);
    bytes.back() |= static_cast<uint8_t>(chunk << (free_bits - take));
    bits += take;
    nbits -= take;
  }
}

void GorillaEncoder::append(int64_t t, double v) {
  const uint64_t vbits = toBits(v);
  if (count == 0) {
    scale = allow_scaled ? decimalScale(v) : 0;
    int64_t unused = 0;
    if (scale != 0 && min_scale > scale && toScaled(v, min_scale, unused)) {
      scale = min_scale;
    }
    int64_t first = 0;
    if (scale != 0) {
      toScaled(v, scale, first);
      if ((static_cast<uint64_t>(first) & ((uint64_t{1} << shift) - 1)) != 0) {
        shift = 0;  // the hint does not hold for this value
      }
    } else {
      shift = 0;
    }
    writeBits(scale, 3);
    if (scale != 0) {
      writeBits(shift, 6);
    }
    writeBits(static_cast<uint64_t>(t), 64);
    if (scale != 0) {
      prev_int = first >> shift;
      prev_int_delta = 0;
      writeBits(static_cast<uint64_t>(prev_int), 64);
    } else {
      writeBits(vbits, 64);
    }
  } else {
    const int64_t delta = t - prev_t;
    const int64_t dod = delta - prev_delta;
    if (dod == 0) {
      writeBit(false);
    } else {
      for (const Bucket& b : kBuckets) {
        if (fitsBits(dod, b.value_bits)) {
          writeBits(b.prefix, b.prefix_bits);
          writeBits(static_cast<uint64_t>(dod), b.value_bits);
          break;
        }
      }
    }
    prev_delta = delta;

    if (scale != 0) {
      int64_t m = prev_int;
      if (vbits != prev_value) {
        toScaled(v, scale, m);
        m >>= shift;  // exact: fits() checked the low bits are zero
      }
      // Wrapping arithmetic: the bucket search works on the two's complement bits either way.
      const int64_t d =
          static_cast<int64_t>(static_cast<uint64_t>(m) - static_cast<uint64_t>(prev_int));
      const int64_t idod =
          static_cast<int64_t>(static_cast<uint64_t>(d) - static_cast<uint64_t>(prev_int_delta));
      if (idod == 0) {
        writeBit(false);
      } else {
        values_minimal = false;
        for (const Bucket& b : kIntBuckets) {
          if (fitsBits(idod, b.value_bits)) {
            writeBits(b.prefix, b.prefix_bits);
            writeBits(static_cast<uint64_t>(idod), b.value_bits);
            break;
          }
        }
      }
      prev_int = m;
      prev_int_delta = d;
    } else {
      const uint64_t x = vbits ^ prev_value;
      if (x == 0) {
        writeBit(false);
      } else {
        values_minimal = false;
        writeBit(true);
        unsigned lead = static_cast<unsigned>(std::countl_zero(x));
        unsigned trail = static_cast<unsigned>(std::countr_zero(x));
        if (lead > 31) {
          lead = 31;  // 5 bits hold the count
        }
        if (leading != 0xff && lead >= leading && trail >= trailing) {
          // Fits the previous window: reuse it.
          writeBit(false);
          writeBits(x >> trailing, 64 - leading - trailing);
        } else {
          writeBit(true);
          const unsigned sig = 64 - lead - trail;
          writeBits(lead, 5);
          writeBits(sig == 64 ? 0 : sig, 6);  // 64 does not fit in 6 bits; 0 never occurs
          writeBits(x >> trail, sig);
          leading = static_cast<uint8_t>(lead);
          trailing = static_cast<uint8_t>(trail);
        }
      }
    }
  }
  prev_t = t;
  prev_value = vbits;
  ++count;
}

bool GorillaDecoder::next(int64_t& t, double& v) {
  if (!advance()) {
    return false;
  }
  t = t_;
  v = value();
  return true;
}

double GorillaDecoder::value() const {
  if (scale_ == 0) {
    return fromBits(value_);
  }
  return static_cast<double>(static_cast<int64_t>(static_cast<uint64_t>(int_) << shift_)) /
         kPow10[scale_ - 1];
}

bool GorillaDecoder::advance() {
  if (read_ >= count_) {
    return false;
  }
  if (read_ == 0) {
    uint64_t header = 0;
    uint64_t shift = 0;
    uint64_t tb = 0;
    if (!readBits(3, header)) {
      return false;
    }
    scale_ = static_cast<uint8_t>(header);
    if (scale_ > kMaxDecimals + 1 || (scale_ != 0 && !readBits(6, shift)) || !read64(tb) ||
        !read64(value_)) {
      return false;
    }
    shift_ = static_cast<uint8_t>(shift);
    t_ = static_cast<int64_t>(tb);
    if (scale_ != 0) {
      int_ = static_cast<int64_t>(value_);
      int_delta_ = 0;
    }
  } else {
    // Timestamp: the prefix is up to five 1-bits ended by a 0 (or five 1s). Counted straight
    // off the bit buffer rather than bit by bit.
    if (avail_ < 8) {
      fill();
    }
    unsigned ones = static_cast<unsigned>(std::countl_one(buf_));
    if (ones > 5) {
      ones = 5;
    }
    uint64_t bit = 0;
    if (!readBits(ones < 5 ? ones + 1 : 5, bit)) {
      return false;
    }
    int64_t dod = 0;
    if (ones > 0) {
      const unsigned nbits = kBuckets[ones - 1].value_bits;
      uint64_t raw = 0;
      if (!(nbits == 64 ? read64(raw) : readBits(nbits, raw))) {
        return false;
      }
      if (nbits < 64 && (raw >> (nbits - 1)) != 0) {
        raw |= ~uint64_t{0} << nbits;  // sign-extend
      }
      dod = static_cast<int64_t>(raw);
    }
    delta_ += dod;
    t_ += delta_;

    if (scale_ != 0) {
      // Scaled integer: a delta-of-delta with the integer buckets' prefix of up to six 1-bits.
      if (avail_ < 8) {
        fill();
      }
      unsigned ones = static_cast<unsigned>(std::countl_one(buf_));
      if (ones > 6) {
        ones = 6;
      }
      if (!readBits(ones < 6 ? ones + 1 : 6, bit)) {
        return false;
      }
      int64_t idod = 0;
      if (ones > 0) {
        const unsigned nbits = kIntBuckets[ones - 1].value_bits;
        uint64_t raw = 0;
        if (!(nbits == 64 ? read64(raw) : readBits(nbits, raw))) {
          return false;
        }
        if (nbits < 64 && (raw >> (nbits - 1)) != 0) {
          raw |= ~uint64_t{0} << nbits;  // sign-extend
        }
        idod = static_cast<int64_t>(raw);
      }
      int_delta_ =
          static_cast<int64_t>(static_cast<uint64_t>(int_delta_) + static_cast<uint64_t>(idod));
      int_ = static_cast<int64_t>(static_cast<uint64_t>(int_) + static_cast<uint64_t>(int_delta_));
    } else {
      if (!readBits(1, bit)) {
        return false;
      }
      if (bit != 0) {
        uint64_t new_window = 0;
        if (!readBits(1, new_window)) {
          return false;
        }
        if (new_window != 0) {
          uint64_t header = 0;  // 5 bits of leading zeros, 6 of significant bits
          if (!readBits(11, header)) {
            return false;
          }
          const uint64_t lead = header >> 6;
          uint64_t sig = header & 0x3f;
          if (sig == 0) {
            sig = 64;
          }
          if (lead + sig > 64) {
            return false;
          }
          leading_ = static_cast<uint8_t>(lead);
          trailing_ = static_cast<uint8_t>(64 - lead - sig);
        }
        const unsigned sig = 64u - leading_ - trailing_;
        uint64_t x = 0;
        if (!readWide(sig, x)) {
          return false;
        }
        value_ ^= x << trailing_;
      }
    }
  }
  ++read_;
  return true;
}

}  // namespace vigil::store
