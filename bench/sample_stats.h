#pragma once
// Order statistics over a benchmark's measurements, one definition for every bench.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

namespace vigil::bench {

/// The value at share `q` (0 to 1) of the sorted measurements, without interpolation; NaN when
/// there are none.
inline double percentile(std::vector<double> v, double q) {
  if (v.empty()) {
    return NAN;
  }
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(q * static_cast<double>(v.size() - 1))];
}

/// The middle measurement, or the mean of the two middle ones; NaN when there are none.
inline double median(std::vector<double> v) {
  if (v.empty()) {
    return NAN;
  }
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace vigil::bench
