#pragma once
// Loading NAB's corpus layout: data/<category>/<name>.csv and windows.json.

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

/// Every file listed in DIR/windows.json, in name order; false with `error` when something is
/// missing or malformed.
bool loadCorpus(const std::string& dir, std::vector<CorpusFile>& out, std::string& error);

}  // namespace vigil::nab
