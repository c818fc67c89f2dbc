#include "nab_published.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace vigil::nab {

namespace {

std::vector<std::string> splitCsvLine(const std::string& line) {
  // NAB's results hold no quoted fields: names are paths, the rest numbers.
  std::vector<std::string> fields;
  std::stringstream in(line);
  std::string field;
  while (std::getline(in, field, ',')) {
    fields.push_back(field);
  }
  if (!line.empty() && line.back() == ',') {
    fields.emplace_back();
  }
  return fields;
}

bool parseNumber(const std::string& text, double& value) {
  char* end = nullptr;
  value = std::strtod(text.c_str(), &end);
  return !text.empty() && *end == '\0' && std::isfinite(value);
}

}  // namespace

bool loadPublishedScores(const std::string& path, PublishedScores& out, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read " + path;
    return false;
  }
  out = PublishedScores{};
  out.path = path;
  std::string line;
  if (!std::getline(in, line)) {
    error = path + ": empty";
    return false;
  }
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  const std::vector<std::string> header = splitCsvLine(line);
  auto column = [&](const char* name) -> long {
    const auto at = std::find(header.begin(), header.end(), name);
    return at == header.end() ? -1 : at - header.begin();
  };
  const long detector = column("Detector"), profile = column("Profile"), file = column("File"),
             threshold = column("Threshold"), score = column("Score");
  if (detector < 0 || profile < 0 || file < 0 || threshold < 0 || score < 0) {
    error = path +
            ":1: not a NAB scores file (its header needs Detector, Profile, File, Threshold and "
            "Score)";
    return false;
  }
  for (std::size_t number = 2; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (line.empty()) {
      continue;
    }
    const std::vector<std::string> fields = splitCsvLine(line);
    const std::string where = path + ":" + std::to_string(number) + ": ";
    if (fields.size() != header.size()) {
      error = where + std::to_string(fields.size()) + " fields where the header has " +
              std::to_string(header.size());
      return false;
    }
    if (fields[static_cast<std::size_t>(detector)] == "Totals") {
      continue;  // the sum NAB appends
    }
    double raw = 0, at = 0;
    if (!parseNumber(fields[static_cast<std::size_t>(score)], raw) ||
        !parseNumber(fields[static_cast<std::size_t>(threshold)], at)) {
      error = where + "Score and Threshold must be numbers";
      return false;
    }
    const std::string& name = fields[static_cast<std::size_t>(file)];
    if (out.raw_by_file.empty()) {
      out.detector = fields[static_cast<std::size_t>(detector)];
      out.profile = fields[static_cast<std::size_t>(profile)];
      out.threshold = at;
    } else if (fields[static_cast<std::size_t>(detector)] != out.detector ||
               fields[static_cast<std::size_t>(profile)] != out.profile) {
      error = where + "another detector or profile than line 2's (" + out.detector + ", " +
              out.profile + ")";
      return false;
    }
    if (!out.raw_by_file.emplace(name, raw).second) {
      error = where + name + " is scored twice";
      return false;
    }
  }
  if (out.raw_by_file.empty()) {
    error = path + ": no scores";
    return false;
  }
  return true;
}

std::vector<std::string> findPublishedScores(const std::string& path) {
  std::vector<std::string> found;
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) {
    return {path};
  }
  for (const auto& entry : std::filesystem::recursive_directory_iterator(path, ec)) {
    const std::string name = entry.path().filename().string();
    const std::string suffix = "_scores.csv";
    if (entry.is_regular_file() && name.size() > suffix.size() &&
        name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      found.push_back(entry.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

bool publishedScore(const PublishedScores& published, const std::vector<ScoredFile>& files,
                    const Profile& profile, double& normalized, std::string& error) {
  double raw = 0;
  for (const auto& f : files) {
    const auto found = published.raw_by_file.find(f.name);
    if (found == published.raw_by_file.end()) {
      error = published.path + " has no score for " + f.name;
      return false;
    }
    raw += found->second;
  }
  // The perfect and null scores depend on the files' windows and lengths alone: those of
  // scoring them with no detection at all.
  const Outcome none = scoreAt(files, profile, 2.0);
  const double span = none.perfect - none.null_score;
  normalized = span == 0 ? 0 : 100.0 * (raw - none.null_score) / span;
  return true;
}

}  // namespace vigil::nab
