#pragma once
// Loading NAB's corpus layout: data/<category>/<name>.csv with its windows in windows.json (the
// shared development subset) or labels/combined_windows.json (a clone of the NAB repository).

#include <string>
#include <utility>
#include <vector>

#include "vigil/anomaly/series_csv.h"

namespace vigil::nab {

struct CorpusFile {
  std::string name;  // "<category>/<name>.csv"
  anomaly::SeriesCsv series;
  std::vector<std::pair<std::size_t, std::size_t>> windows;  // inclusive row ranges
};

/// The file in `dir` that lists the corpus' windows: windows.json, else
/// labels/combined_windows.json; empty when there is neither.
std::string windowsFile(const std::string& dir);

/// Every file listed in the windows file of `dir`, in name order; false with `error` when
/// something is missing or malformed.
bool loadCorpus(const std::string& dir, std::vector<CorpusFile>& out, std::string& error);

/// The file names ("<category>/<name>.csv") listed in the windows file of `dir`, without
/// reading the data; false with `error` when there is none or it is malformed.
bool listCorpus(const std::string& dir, std::vector<std::string>& names, std::string& error);

}  // namespace vigil::nab
