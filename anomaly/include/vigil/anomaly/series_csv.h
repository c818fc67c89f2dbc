#pragma once
// The `timestamp,value` CSV that NAB's corpus and `vigil anomaly score` use: a header line,
// then one row per sample, timestamps as "YYYY-MM-DD HH:MM:SS" (UTC) or Unix seconds.
// Parsing only; the caller reads the file.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::anomaly {

struct SeriesCsv {
  std::vector<std::string> timestamp_text;  // as written
  std::vector<int64_t> timestamp_ms;
  std::vector<double> values;
};

/// Parses the text; on a bad row returns false with `error` naming the line.
bool parseSeriesCsv(std::string_view text, SeriesCsv& out, std::string& error);

}  // namespace vigil::anomaly
