#pragma once
// The Numenta Anomaly Benchmark's scoring rules (numenta/NAB, described in the shared
// SCORING.md): probation, the scaled sigmoid that rewards early detection inside a window and
// forgives false positives just after one, the three application profiles, the threshold sweep
// over a whole corpus and the normalisation between the null and the perfect detector.
// Pure computation; the corpus loader is separate.

#include <array>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

namespace vigil::nab {

struct Profile {
  const char* name;
  double a_tp;
  double a_fn;
  double a_fp;
};

/// standard, reward_low_FP_rate, reward_low_FN_rate.
const std::array<Profile, 3>& profiles();

/// The scaled sigmoid: 2·sig(−5y) − 1, and −1 beyond y = 3.
double scaledSigmoid(double y);

/// One scored file: the detector's score per row, and the anomaly windows as inclusive row
/// ranges (sorted, disjoint).
struct ScoredFile {
  std::string name;
  std::vector<double> scores;
  std::vector<std::pair<std::size_t, std::size_t>> windows;
};

/// Rows before this index are not scored: min(floor(0.15 n), 750).
std::size_t probationRows(std::size_t n);

struct Outcome {
  double threshold = 1.1;  // detections are rows with score >= threshold
  double raw = 0;          // the profile's score at the threshold
  double null_score = 0;   // the null detector's best raw score on the same files
  double perfect = 0;      // A_TP per window
  double normalized = 0;   // 100 (raw - null) / (perfect - null)
  std::size_t tp = 0, fp = 0, fn = 0, tn = 0;  // rows, informational
};

/// The raw score at a fixed threshold, normalised against these files.
Outcome scoreAt(const std::vector<ScoredFile>& files, const Profile& p, double threshold);
/// The threshold with the best raw score over all files together (ties: the higher one).
Outcome optimize(const std::vector<ScoredFile>& files, const Profile& p);

}  // namespace vigil::nab
