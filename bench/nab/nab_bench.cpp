// NAB on vigil's detectors: every file of the corpus run online through a fresh model (the
// detector code the agent runs), scored with NAB's rules, plus throughput and memory.
//
//   nab_bench [--data DIR] [--detector NAME]... [--per-file] [--threshold T]
//
// DIR holds NAB's layout (data/<category>/<name>.csv, windows.json); by default the shared
// development subset next to the project. The files are split by name into a tuning half (even
// positions) and a check half (odd positions): the threshold is tuned on the first and the
// score quoted on the second, so the number is not flattered by its own tuning; the two-fold
// cross-validation column does that both ways (tuned on each half, checked on the other) and
// averages the two checks, which depends less on which files fell in which half. --threshold
// adds each profile's scores at a fixed threshold (a shipped rule's, rounded), which can differ
// from the tuned one. Skips with a message (exit 0) when the corpus is absent.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>
#include <vector>

#include "nab_corpus.h"
#include "nab_scorer.h"
#include "vigil/anomaly/detector.h"

using namespace vigil;

namespace {

double cpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Run {
  std::vector<nab::ScoredFile> all, tune, check;
  double seconds = 0;
  std::size_t points = 0;
  std::size_t model_bytes = 0;
};

Run run(const std::string& detector, const std::vector<nab::CorpusFile>& corpus) {
  Run r;
  for (std::size_t k = 0; k < corpus.size(); ++k) {
    const auto& f = corpus[k];
    auto model = anomaly::makeDetector(detector);
    r.model_bytes = model->memoryBytes();
    nab::ScoredFile scored{f.name, {}, f.windows};
    scored.scores.resize(f.series.values.size());
    const double start = cpuSeconds();
    for (std::size_t i = 0; i < f.series.values.size(); ++i) {
      scored.scores[i] = model->update(f.series.timestamp_ms[i], f.series.values[i]);
    }
    r.seconds += cpuSeconds() - start;
    r.points += f.series.values.size();
    (k % 2 == 0 ? r.tune : r.check).push_back(scored);
    r.all.push_back(std::move(scored));
  }
  return r;
}

// Where a detector wins and loses: each file's raw score under one profile at one threshold,
// against what a perfect detector and the null detector would get on it.
void printPerFile(const std::vector<nab::ScoredFile>& files, const nab::Profile& p,
                  double threshold) {
  std::printf(
      "\n%s at %.5f, per file: raw score (perfect, null), windows, rows detected in and "
      "outside windows\n",
      p.name, threshold);
  for (const auto& f : files) {
    const nab::Outcome o = nab::scoreAt({f}, p, threshold);
    std::printf("  %-48s %7.2f (%5.2f, %6.2f)  %zu windows  %4zu in  %4zu out\n", f.name.c_str(),
                o.raw, o.perfect, -p.a_fn * static_cast<double>(f.windows.size()), f.windows.size(),
                o.tp, o.fp);
    // A window missed by a little or by a lot: the highest score in it, and where (NAB's
    // relative position: -1 at the window's start, 0 at its end; the label sits at -0.5).
    for (const auto& [first, last] : f.windows) {
      double best = 0;
      std::size_t at = first;
      for (std::size_t i = first; i <= last && i < f.scores.size(); ++i) {
        if (f.scores[i] > best) {
          best = f.scores[i];
          at = i;
        }
      }
      std::printf("      window rows %zu-%zu: highest score %.3f at %+.2f\n", first, last, best,
                  (static_cast<double>(at) - static_cast<double>(last)) /
                      static_cast<double>(last - first + 1));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = VIGIL_NAB_DEFAULT_DIR;
  std::vector<std::string> detectors;
  bool per_file = false;
  double fixed_threshold = -1;  // --threshold: scored there too
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--data" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg == "--detector" && i + 1 < argc) {
      detectors.push_back(argv[++i]);
    } else if (arg == "--per-file") {
      per_file = true;
    } else if (arg == "--threshold" && i + 1 < argc) {
      char* end = nullptr;
      fixed_threshold = std::strtod(argv[++i], &end);
      if (*end != '\0' || !(fixed_threshold >= 0 && fixed_threshold <= 1)) {
        std::fprintf(stderr, "nab_bench: --threshold takes a number from 0 to 1, not %s\n",
                     argv[i]);
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: nab_bench [--data DIR] [--detector NAME]... [--per-file] "
                   "[--threshold T]\n");
      return 2;
    }
  }
  if (detectors.empty()) {
    detectors = anomaly::detectorNames();
  }
  if (!std::filesystem::exists(dir + "/windows.json")) {
    std::printf("NAB corpus not found in %s: skipped\n", dir.c_str());
    return 0;
  }
  std::vector<nab::CorpusFile> corpus;
  std::string error;
  if (!nab::loadCorpus(dir, corpus, error)) {
    std::fprintf(stderr, "nab_bench: %s\n", error.c_str());
    return 1;
  }
  std::size_t windows = 0;
  for (const auto& f : corpus) {
    windows += f.windows.size();
  }
  std::printf("corpus: %zu files, %zu windows (tuning half: even positions by name)\n\n",
              corpus.size(), windows);
  std::printf("%-12s %-20s %9s %9s %9s %9s %9s  %12s %8s\n", "detector", "profile", "threshold",
              "tune", "check", "2-fold", "all*", "points/s", "bytes");
  for (const auto& name : detectors) {
    if (!anomaly::makeDetector(name)) {
      std::fprintf(stderr, "nab_bench: unknown detector %s\n", name.c_str());
      return 2;
    }
    const Run r = run(name, corpus);
    double standard_threshold = 0;  // the standard profile's, for --per-file
    for (const auto& p : nab::profiles()) {
      const nab::Outcome tuned = nab::optimize(r.tune, p);
      if (&p == &nab::profiles()[0]) {
        standard_threshold = tuned.threshold;
      }
      const nab::Outcome checked = nab::scoreAt(r.check, p, tuned.threshold);
      // The other way round: tuned on the check half, checked on the tuning half.
      const nab::Outcome reverse = nab::scoreAt(r.tune, p, nab::optimize(r.check, p).threshold);
      const double two_fold = (checked.normalized + reverse.normalized) / 2;
      const nab::Outcome all = nab::optimize(r.all, p);
      std::printf("%-12s %-20s %9.5f %9.2f %9.2f %9.2f %9.2f  %12.0f %8zu\n", name.c_str(), p.name,
                  tuned.threshold, tuned.normalized, checked.normalized, two_fold, all.normalized,
                  static_cast<double>(r.points) / r.seconds, r.model_bytes);
      if (fixed_threshold >= 0) {
        std::printf("%-12s %-20s %9.5f %9.2f %9.2f %9s %9.2f\n", "", "  at --threshold",
                    fixed_threshold, nab::scoreAt(r.tune, p, fixed_threshold).normalized,
                    nab::scoreAt(r.check, p, fixed_threshold).normalized, "",
                    nab::scoreAt(r.all, p, fixed_threshold).normalized);
      }
    }
    if (per_file) {
      printPerFile(r.all, nab::profiles()[0], standard_threshold);
    }
  }
  std::printf(
      "\ntune: score on the tuning half at its own best threshold; check: the other half "
      "at that threshold;\n2-fold: the mean of check and of the tuning half scored at the check "
      "half's best threshold;\nall*: the whole set at its own best threshold (flattering). "
      "points/s: one core, updates only.\n");
  return 0;
}
