// NAB on vigil's detectors: every file of the corpus run online through a fresh model (the
// detector code the agent runs), scored with NAB's rules, plus throughput and memory.
//
//   nab_bench [--data DIR] [--tune-on DIR] [--detector NAME]... [--per-file] [--threshold T]
//             [--set NAME=VALUE]... [--search ROUNDS [--seed N]] [--published PATH]
//
// DIR holds NAB's layout (data/<category>/<name>.csv, and windows.json or, in a clone of the
// NAB repository, labels/combined_windows.json); by default the shared development subset next
// to the project. The files are split by name into a tuning half (even positions) and a check
// half (odd positions), or with --tune-on into the files the other corpus lists (the
// development subset, say, with --data the whole of NAB) and the rest, which the detectors were
// never tuned on: the threshold is tuned on the first and the
// score quoted on the second, so the number is not flattered by its own tuning; the two-fold
// cross-validation column does that both ways (tuned on each half, checked on the other) and
// averages the two checks, which depends less on which files fell in which half. --threshold
// adds each profile's scores at a fixed threshold (a shipped rule's, rounded), which can differ
// from the tuned one. --set runs the ensemble with one of its parameters (EnsembleParams' field
// names) changed. --search tries ROUNDS random changes of one to four of the ensemble's
// parameters at a time, from the defaults (or the --set ones), each kept when it raises the
// standard score on the tuning half; the check half's score is printed beside it and never
// used to choose, so it shows whether a gain carries over to files it was not tuned on.
// --published puts other detectors' scores on the same files beside vigil's: PATH is the
// results directory of a clone of the NAB repository (or one of its *_scores.csv files), whose
// per-file raw scores, at the threshold NAB tuned for each detector on the whole corpus, are
// summed over the tuning set, the check set and all of it, and normalised against those files;
// with --per-file, each file's published raw score is printed beside vigil's.
// Skips with a message (exit 0) when the corpus is absent.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "anomaly/detectors/ensemble_detector.h"
#include "nab_corpus.h"
#include "nab_published.h"
#include "nab_scorer.h"
#include "vigil/anomaly/detector.h"

using namespace vigil;

namespace {

double cpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// One published results file, with its profile's place in nab::profiles().
struct PublishedRow {
  nab::PublishedScores published;
  std::size_t profile = 0;
};

struct Run {
  std::vector<nab::ScoredFile> all, tune, check;
  double seconds = 0;
  std::size_t points = 0;
  std::size_t model_bytes = 0;
};

using DetectorFactory = std::function<anomaly::DetectorPtr()>;

// `in_tune[k]`: whether corpus[k] is in the tuning set.
Run run(const DetectorFactory& make, const std::vector<nab::CorpusFile>& corpus,
        const std::vector<bool>& in_tune) {
  Run r;
  for (std::size_t k = 0; k < corpus.size(); ++k) {
    const auto& f = corpus[k];
    auto model = make();
    r.model_bytes = model->memoryBytes();
    nab::ScoredFile scored{f.name, {}, f.windows};
    scored.scores.resize(f.series.values.size());
    const double start = cpuSeconds();
    for (std::size_t i = 0; i < f.series.values.size(); ++i) {
      scored.scores[i] = model->update(f.series.timestamp_ms[i], f.series.values[i]);
    }
    r.seconds += cpuSeconds() - start;
    r.points += f.series.values.size();
    (in_tune[k] ? r.tune : r.check).push_back(scored);
    r.all.push_back(std::move(scored));
  }
  return r;
}

// Where a detector wins and loses: each file's raw score under one profile at one threshold,
// against what a perfect detector and the null detector would get on it.
void printPerFile(const std::vector<nab::ScoredFile>& files, const nab::Profile& p,
                  double threshold, const std::vector<PublishedRow>& published) {
  std::printf(
      "\n%s at %.5f, per file: raw score (perfect, null), windows, rows detected in and "
      "outside windows\n",
      p.name, threshold);
  for (const auto& f : files) {
    const nab::Outcome o = nab::scoreAt({f}, p, threshold);
    std::printf("  %-48s %7.2f (%5.2f, %6.2f)  %zu windows  %4zu in  %4zu out\n", f.name.c_str(),
                o.raw, o.perfect, -p.a_fn * static_cast<double>(f.windows.size()), f.windows.size(),
                o.tp, o.fp);
    // --published: the other detectors' raw scores on this file under the same profile.
    for (const auto& row : published) {
      const auto raw = row.published.raw_by_file.find(f.name);
      if (&nab::profiles()[row.profile] == &p && raw != row.published.raw_by_file.end()) {
        std::printf("      %s (published): %.2f\n", row.published.detector.c_str(), raw->second);
      }
    }
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

// The changes from `from` in `to`, as --set arguments.
std::string changedParams(const anomaly::EnsembleParams& from, const anomaly::EnsembleParams& to) {
  const auto before = anomaly::ensembleParamValues(from);
  const auto after = anomaly::ensembleParamValues(to);
  std::string out;
  for (std::size_t i = 0; i < after.size(); ++i) {
    if (after[i].value != before[i].value) {
      char buf[96];
      std::snprintf(buf, sizeof buf, " --set %s=%.6g", after[i].name.c_str(), after[i].value);
      out += buf;
    }
  }
  return out.empty() ? " (unchanged)" : out;
}

// A random local search over the ensemble's parameters, chosen on the tuning set alone.
void search(const anomaly::EnsembleParams& start, const std::vector<nab::CorpusFile>& corpus,
            const std::vector<bool>& in_tune, int rounds, unsigned seed) {
  const nab::Profile& standard = nab::profiles()[0];
  struct Scores {
    double tune = 0, check = 0;
  };
  auto score = [&](const anomaly::EnsembleParams& params) {
    const Run r = run([&] { return anomaly::makeEnsembleDetector(params); }, corpus, in_tune);
    const nab::Outcome tuned = nab::optimize(r.tune, standard);
    return Scores{tuned.normalized, nab::scoreAt(r.check, standard, tuned.threshold).normalized};
  };
  std::mt19937 rng(seed);
  anomaly::EnsembleParams best = start;
  Scores best_scores = score(best);
  std::printf("search: %d rounds, seed %u; standard profile, chosen on the tuning set\n", rounds,
              seed);
  std::printf("%6s %9s %9s  %s\n", "round", "tune", "check", "parameters changed from the start");
  std::printf("%6d %9.2f %9.2f %s\n", 0, best_scores.tune, best_scores.check,
              changedParams(start, best).c_str());
  for (int round = 1; round <= rounds; ++round) {
    anomaly::EnsembleParams candidate = best;
    auto fields = anomaly::ensembleParamValues(candidate);
    std::shuffle(fields.begin(), fields.end(), rng);
    const int changes = std::uniform_int_distribution<int>(1, 4)(rng);
    for (int c = 0; c < changes; ++c) {
      const auto& field = fields[static_cast<std::size_t>(c)];
      double value = field.value;
      if (field.name == "refractory_level") {
        // A level, not a scale: moved by up to 0.08, kept below 1 (a score of 1 is the most).
        value =
            std::clamp(value + std::uniform_real_distribution<double>(-0.08, 0.08)(rng), 0.5, 0.99);
      } else {
        // Zero switches a part off; a factor would leave it off.
        value *=
            std::exp(std::uniform_real_distribution<double>(std::log(0.6), std::log(1.6))(rng));
        if (field.whole) {
          value = std::max(1.0, std::round(value));
        }
      }
      // Always accepted: the value stays finite, not negative, and whole where it must be.
      std::string error;
      if (!anomaly::setEnsembleParam(candidate, field.name, value, error)) {
        std::fprintf(stderr, "nab_bench: search: %s\n", error.c_str());
        std::exit(1);
      }
    }
    const Scores s = score(candidate);
    if (s.tune > best_scores.tune) {
      best = candidate;
      best_scores = s;
      std::printf("%6d %9.2f %9.2f %s\n", round, s.tune, s.check,
                  changedParams(start, best).c_str());
      std::fflush(stdout);
    }
  }
  std::printf("\nbest on the tuning set:%s\n", changedParams(start, best).c_str());
}

// The published results under `path`, each detector's profiles in the table's order; false
// (with a message) when there are none or one is not a NAB scores file.
bool loadPublished(const std::string& path, std::vector<PublishedRow>& rows) {
  const std::vector<std::string> found = nab::findPublishedScores(path);
  if (found.empty()) {
    std::fprintf(stderr, "nab_bench: --published: no *_scores.csv in %s\n", path.c_str());
    return false;
  }
  for (const auto& file : found) {
    PublishedRow row;
    std::string error;
    if (!nab::loadPublishedScores(file, row.published, error)) {
      std::fprintf(stderr, "nab_bench: --published: %s\n", error.c_str());
      return false;
    }
    const auto& all = nab::profiles();
    const auto profile = std::find_if(all.begin(), all.end(), [&](const nab::Profile& p) {
      return row.published.profile == p.name;
    });
    if (profile == all.end()) {
      std::fprintf(stderr, "nab_bench: --published: %s: unknown profile %s\n", file.c_str(),
                   row.published.profile.c_str());
      return false;
    }
    row.profile = static_cast<std::size_t>(profile - all.begin());
    rows.push_back(std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(), [](const PublishedRow& a, const PublishedRow& b) {
    return a.published.detector != b.published.detector
               ? a.published.detector < b.published.detector
               : a.profile < b.profile;
  });
  return true;
}

// Other detectors' published per-file scores on the same tuning, check and whole sets.
bool printPublished(const std::vector<PublishedRow>& rows, const Run& r) {
  std::printf(
      "\npublished: each detector's per-file scores in NAB's results, at the threshold NAB tuned "
      "for it on the\nwhole corpus, summed over the same files and normalised against them\n");
  std::printf("%-20s %-20s %9s %9s %9s %9s\n", "detector", "profile", "threshold", "tune", "check",
              "all");
  for (const auto& row : rows) {
    const nab::Profile& profile = nab::profiles()[row.profile];
    double tune = 0, check = 0, all = 0;
    std::string error;
    if (!nab::publishedScore(row.published, r.tune, profile, tune, error) ||
        !nab::publishedScore(row.published, r.check, profile, check, error) ||
        !nab::publishedScore(row.published, r.all, profile, all, error)) {
      std::fprintf(stderr, "nab_bench: --published: %s\n", error.c_str());
      return false;
    }
    std::printf("%-20s %-20s %9.5f %9.2f %9.2f %9.2f\n", row.published.detector.c_str(),
                profile.name, row.published.threshold, tune, check, all);
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = VIGIL_NAB_DEFAULT_DIR;
  std::string tune_dir;  // --tune-on: its files are the tuning set
  std::vector<std::string> detectors;
  bool per_file = false;
  double fixed_threshold = -1;  // --threshold: scored there too
  anomaly::EnsembleParams ensemble_params;
  bool ensemble_set = false;
  int search_rounds = 0;
  unsigned seed = 1;
  std::string published_path;  // --published: other detectors' results beside vigil's
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--data" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg == "--tune-on" && i + 1 < argc) {
      tune_dir = argv[++i];
    } else if (arg == "--published" && i + 1 < argc) {
      published_path = argv[++i];
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
    } else if (arg == "--set" && i + 1 < argc) {
      const std::string assignment = argv[++i];
      const auto eq = assignment.find('=');
      char* end = nullptr;
      const double value =
          eq == std::string::npos ? 0 : std::strtod(assignment.c_str() + eq + 1, &end);
      std::string error;
      if (eq == std::string::npos || end == assignment.c_str() + eq + 1 || *end != '\0') {
        error = "--set takes NAME=VALUE with a number, not " + assignment;
      } else {
        anomaly::setEnsembleParam(ensemble_params, assignment.substr(0, eq), value, error);
      }
      if (!error.empty()) {
        std::fprintf(stderr, "nab_bench: %s\n", error.c_str());
        return 2;
      }
      ensemble_set = true;
    } else if ((arg == "--search" || arg == "--seed") && i + 1 < argc) {
      char* end = nullptr;
      const long n = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || n < 0 || n > 1000000) {
        std::fprintf(stderr, "nab_bench: %s takes a whole number, not %s\n", arg.c_str(), argv[i]);
        return 2;
      }
      if (arg == "--search") {
        search_rounds = static_cast<int>(n);
      } else {
        seed = static_cast<unsigned>(n);
      }
    } else {
      std::fprintf(
          stderr,
          "usage: nab_bench [--data DIR] [--tune-on DIR] [--detector NAME]... [--per-file] "
          "[--threshold T] [--set NAME=VALUE]... [--search ROUNDS [--seed N]] "
          "[--published PATH]\n");
      return 2;
    }
  }
  if (detectors.empty()) {
    // Parameters are the ensemble's: with --set or --search, it alone.
    detectors = ensemble_set || search_rounds > 0 ? std::vector<std::string>{"ensemble"}
                                                  : anomaly::detectorNames();
  } else if ((ensemble_set || search_rounds > 0) &&
             std::find(detectors.begin(), detectors.end(), "ensemble") == detectors.end()) {
    std::fprintf(stderr, "nab_bench: --set and --search change the ensemble, not run here\n");
    return 2;
  }
  std::vector<PublishedRow> published;
  if (!published_path.empty() && !loadPublished(published_path, published)) {
    return 2;
  }
  if (nab::windowsFile(dir).empty()) {
    std::printf("NAB corpus not found in %s: skipped\n", dir.c_str());
    return 0;
  }
  std::vector<nab::CorpusFile> corpus;
  std::string error;
  if (!nab::loadCorpus(dir, corpus, error)) {
    std::fprintf(stderr, "nab_bench: %s\n", error.c_str());
    return 1;
  }
  std::vector<bool> in_tune(corpus.size());
  std::size_t windows = 0, tuning = 0;
  std::vector<std::string> tune_names;
  if (!tune_dir.empty() && !nab::listCorpus(tune_dir, tune_names, error)) {
    std::fprintf(stderr, "nab_bench: --tune-on: %s\n", error.c_str());
    return 2;
  }
  for (std::size_t k = 0; k < corpus.size(); ++k) {
    windows += corpus[k].windows.size();
    in_tune[k] = tune_dir.empty() ? k % 2 == 0
                                  : std::find(tune_names.begin(), tune_names.end(),
                                              corpus[k].name) != tune_names.end();
    tuning += in_tune[k] ? 1 : 0;
  }
  if (tuning == 0 || tuning == corpus.size()) {
    std::fprintf(stderr, "nab_bench: the tuning set has %zu of the corpus' %zu files: nothing %s\n",
                 tuning, corpus.size(), tuning == 0 ? "to tune on" : "left to check on");
    return 2;
  }
  std::printf("corpus: %zu files, %zu windows (tuning set: %s, %zu files)\n\n", corpus.size(),
              windows, tune_dir.empty() ? "even positions by name" : "those --tune-on lists",
              tuning);
  std::printf("%-12s %-20s %9s %9s %9s %9s %9s  %12s %8s\n", "detector", "profile", "threshold",
              "tune", "check", "2-fold", "all*", "points/s", "bytes");
  for (const auto& name : detectors) {
    if (!anomaly::makeDetector(name)) {
      std::fprintf(stderr, "nab_bench: unknown detector %s\n", name.c_str());
      return 2;
    }
    const Run r = run(
        [&]() -> anomaly::DetectorPtr {
          return name == "ensemble" ? anomaly::makeEnsembleDetector(ensemble_params)
                                    : anomaly::makeDetector(name);
        },
        corpus, in_tune);
    double standard_threshold = 0;  // the standard profile's, for --per-file
    for (const auto& p : nab::profiles()) {
      const nab::Outcome tuned = nab::optimize(r.tune, p);
      if (&p == &nab::profiles()[0]) {
        standard_threshold = tuned.threshold;
      }
      const nab::Outcome checked = nab::scoreAt(r.check, p, tuned.threshold);
      // The other way round: tuned on the check set, checked on the tuning set.
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
      printPerFile(r.all, nab::profiles()[0], standard_threshold, published);
    }
    if (!published.empty() && &name == &detectors.back() && !printPublished(published, r)) {
      return 2;
    }
  }
  std::printf(
      "\ntune: score on the tuning set at its own best threshold; check: the other files "
      "at that threshold;\n2-fold: the mean of check and of the tuning set scored at the check "
      "set's best threshold;\nall*: the whole set at its own best threshold (flattering). "
      "points/s: one core, updates only.\n");
  if (search_rounds > 0) {
    std::printf("\n");
    search(ensemble_params, corpus, in_tune, search_rounds, seed);
  }
  return 0;
}
