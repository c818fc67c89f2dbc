#include "nab_scorer.h"

#include <algorithm>
#include <cmath>

namespace vigil::nab {

namespace {

// Per scorable row: whether it lies in a window (and which), and what a detection there is
// worth under the profile (the window's reward, or the false positive's cost).
struct RowValue {
  int window = -1;  // index into the file's windows, -1 outside
  double value = 0;
};

std::vector<RowValue> rowValues(const ScoredFile& f, const Profile& p) {
  const std::size_t n = f.scores.size();
  std::vector<RowValue> out(n);
  const double s_first = scaledSigmoid(-1.0);
  std::size_t w = 0;       // the next window not yet passed
  int last_finished = -1;  // the most recently finished window
  for (std::size_t i = 0; i < n; ++i) {
    while (w < f.windows.size() && i > f.windows[w].second) {
      last_finished = static_cast<int>(w);
      ++w;
    }
    if (w < f.windows.size() && i >= f.windows[w].first && i <= f.windows[w].second) {
      const auto [a, b] = f.windows[w];
      const double width = static_cast<double>(b - a + 1);
      const double y = -static_cast<double>(b - i + 1) / width;
      out[i] = {static_cast<int>(w), p.a_tp * scaledSigmoid(y) / s_first};
    } else if (last_finished < 0) {
      out[i] = {-1, -p.a_fp};
    } else {
      const auto [a, b] = f.windows[static_cast<std::size_t>(last_finished)];
      const double width = static_cast<double>(b - a + 1);
      const double y = static_cast<double>(i - b) / (width - 1);
      out[i] = {-1, p.a_fp * scaledSigmoid(y)};
    }
  }
  return out;
}

std::size_t windowCount(const std::vector<ScoredFile>& files) {
  std::size_t n = 0;
  for (const auto& f : files) {
    n += f.windows.size();
  }
  return n;
}

// The score with the rows `detected` (a predicate on score) detected.
template <typename Detected>
Outcome evaluate(const std::vector<ScoredFile>& files, const Profile& p, Detected detected) {
  Outcome o;
  for (const auto& f : files) {
    const auto values = rowValues(f, p);
    std::vector<double> best(f.windows.size(), -1e300);
    const std::size_t start = probationRows(f.scores.size());
    for (std::size_t i = start; i < f.scores.size(); ++i) {
      const bool hit = detected(f.scores[i]);
      if (values[i].window >= 0) {
        (hit ? o.tp : o.fn) += 1;
        if (hit) {
          best[static_cast<std::size_t>(values[i].window)] =
              std::max(best[static_cast<std::size_t>(values[i].window)], values[i].value);
        }
      } else {
        (hit ? o.fp : o.tn) += 1;
        if (hit) {
          o.raw += values[i].value;
        }
      }
    }
    for (double b : best) {
      o.raw += b > -1e299 ? b : -p.a_fn;
    }
  }
  return o;
}

void normalize(const std::vector<ScoredFile>& files, const Profile& p, Outcome& o) {
  const double windows = static_cast<double>(windowCount(files));
  o.perfect = p.a_tp * windows;
  // The null detector (0.5 everywhere) either detects nothing or everything; it takes the
  // better of the two, as NAB's optimiser would.
  const double nothing = -p.a_fn * windows;
  const double everything = evaluate(files, p, [](double) { return true; }).raw;
  o.null_score = std::max(nothing, everything);
  const double span = o.perfect - o.null_score;
  o.normalized = span == 0 ? 0 : 100.0 * (o.raw - o.null_score) / span;
}

}  // namespace

const std::array<Profile, 3>& profiles() {
  static const std::array<Profile, 3> all = {{{"standard", 1.0, 1.0, 0.11},
                                              {"reward_low_FP_rate", 1.0, 1.0, 0.22},
                                              {"reward_low_FN_rate", 1.0, 2.0, 0.11}}};
  return all;
}

double scaledSigmoid(double y) {
  if (y > 3) {
    return -1.0;
  }
  return 2.0 / (1.0 + std::exp(5.0 * y)) - 1.0;
}

std::size_t probationRows(std::size_t n) {
  return std::min<std::size_t>(static_cast<std::size_t>(std::floor(0.15 * static_cast<double>(n))),
                               750);
}

Outcome scoreAt(const std::vector<ScoredFile>& files, const Profile& p, double threshold) {
  Outcome o = evaluate(files, p, [&](double s) { return s >= threshold; });
  o.threshold = threshold;
  normalize(files, p, o);
  return o;
}

Outcome optimize(const std::vector<ScoredFile>& files, const Profile& p) {
  // Every scorable row of every file, by score descending; detections are added one row at a
  // time and the running score recorded whenever the threshold changes.
  struct Row {
    double score;
    double value;
    std::size_t window;  // global window index, or SIZE_MAX outside
  };
  std::vector<Row> rows;
  std::size_t window_base = 0;
  for (const auto& f : files) {
    const auto values = rowValues(f, p);
    for (std::size_t i = probationRows(f.scores.size()); i < f.scores.size(); ++i) {
      rows.push_back({f.scores[i], values[i].value,
                      values[i].window >= 0
                          ? window_base + static_cast<std::size_t>(values[i].window)
                          : SIZE_MAX});
    }
    window_base += f.windows.size();
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return a.score > b.score; });
  std::vector<double> best(window_base, -1e300);
  double total = -p.a_fn * static_cast<double>(window_base);
  double threshold = 1.1;
  double best_total = total;
  double best_threshold = threshold;
  auto record = [&] {
    if (total > best_total) {  // ties keep the higher threshold, recorded first
      best_total = total;
      best_threshold = threshold;
    }
  };
  for (const Row& r : rows) {
    if (r.score != threshold) {
      record();
      threshold = r.score;
    }
    if (r.window == SIZE_MAX) {
      total += r.value;
    } else if (r.value > best[r.window]) {
      total += r.value - (best[r.window] > -1e299 ? best[r.window] : -p.a_fn);
      best[r.window] = r.value;
    }
  }
  record();
  return scoreAt(files, p, best_threshold);
}

}  // namespace vigil::nab
