#include "anomaly_command.h"

#include <charconv>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "vigil/anomaly/detector.h"
#include "vigil/anomaly/series_csv.h"

namespace vigil {

namespace {

constexpr const char* kAnomalyUsage = R"(Usage: vigil anomaly score [--detector NAME] FILE.csv

Reads a `timestamp,value` CSV (a header line, timestamps as "YYYY-MM-DD HH:MM:SS" or Unix
seconds; "-" reads standard input) and writes `timestamp,value,anomaly_score` to standard
output, scoring each row online: a row's score uses only that row and the rows before it.
Detectors: )";

std::string usage() {
  std::string out = kAnomalyUsage;
  const auto names = anomaly::detectorNames();
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += (i ? ", " : "") + names[i];
  }
  return out + " (default: " + names.front() + ").\n";
}

int fail(const std::string& message) {
  std::cerr << "vigil anomaly: " << message << "\n\n" << usage();
  return 2;
}

}  // namespace

int anomalyCommand(const std::vector<std::string>& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << usage();
    return args.empty() ? 2 : 0;
  }
  if (args[0] != "score") {
    return fail("unknown subcommand " + args[0]);
  }
  std::string detector = anomaly::detectorNames().front();
  std::string file;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--detector" && i + 1 < args.size()) {
      detector = args[++i];
    } else if (args[i].rfind("--detector=", 0) == 0) {
      detector = args[i].substr(11);
    } else if (file.empty() && (args[i] == "-" || args[i].rfind("--", 0) != 0)) {
      file = args[i];
    } else {
      return fail("unexpected argument " + args[i]);
    }
  }
  if (file.empty()) {
    return fail("a CSV file is required");
  }
  auto model = anomaly::makeDetector(detector);
  if (!model) {
    return fail("unknown detector " + detector);
  }
  std::stringstream text;
  if (file == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
      std::cerr << "vigil anomaly: cannot read " << file << "\n";
      return 1;
    }
    text << in.rdbuf();
  }
  anomaly::SeriesCsv series;
  std::string error;
  if (!anomaly::parseSeriesCsv(text.str(), series, error)) {
    std::cerr << "vigil anomaly: " << file << ": " << error << "\n";
    return 1;
  }
  std::string out = "timestamp,value,anomaly_score\n";
  char buf[32];
  auto append = [&](double v) {
    // Shortest text that reads back as the same double.
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
    out += ',';
    out.append(buf, end);
  };
  for (std::size_t i = 0; i < series.values.size(); ++i) {
    const double score = model->update(series.timestamp_ms[i], series.values[i]);
    out += series.timestamp_text[i];
    append(series.values[i]);
    append(score);
    out += '\n';
  }
  std::cout << out;
  return 0;
}

}  // namespace vigil
