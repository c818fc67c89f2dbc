#pragma once
// Other detectors' published NAB results, to put beside vigil's on the same files. A clone of
// the NAB repository keeps, for each detector on its scoreboard, each file's raw score per
// profile in results/<detector>/<detector>_<profile>_scores.csv, at the threshold NAB tuned for
// that detector over the whole corpus. Summed over some of the files and normalised against
// those files alone, they give that detector's score on exactly the files vigil was scored on
// (the development subset, or its tuning or check half).

#include <map>
#include <string>
#include <vector>

#include "nab_scorer.h"

namespace vigil::nab {

struct PublishedScores {
  std::string path;
  std::string detector;
  std::string profile;
  double threshold = 0;
  std::map<std::string, double> raw_by_file;  // "<category>/<name>.csv" -> raw score
};

/// One results/<detector>/<detector>_<profile>_scores.csv; false with `error` naming the file
/// and line when it is not one.
bool loadPublishedScores(const std::string& path, PublishedScores& out, std::string& error);

/// The *_scores.csv files under `path` (a results directory: one subdirectory per detector),
/// in name order; `path` itself when it is a file.
std::vector<std::string> findPublishedScores(const std::string& path);

/// The published detector's normalised score on `files` (only their names, lengths and
/// windows are used, not their scores), as nab::Outcome::normalized is for a detector run
/// here; false with `error` naming a file that the published results do not cover.
bool publishedScore(const PublishedScores& published, const std::vector<ScoredFile>& files,
                    const Profile& profile, double& normalized, std::string& error);

}  // namespace vigil::nab
