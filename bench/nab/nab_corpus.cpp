#include "nab_corpus.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace vigil::nab {

std::string windowsFile(const std::string& dir) {
  for (const char* name : {"windows.json", "labels/combined_windows.json"}) {
    const std::string path = dir + "/" + name;
    if (std::filesystem::exists(path)) {
      return path;
    }
  }
  return {};
}

namespace {

// The windows file of `dir`, parsed: an object from file name to a list of [start, end].
bool readWindows(const std::string& dir, nlohmann::json& windows, std::string& error) {
  const std::string path = windowsFile(dir);
  if (path.empty()) {
    error = "no windows.json or labels/combined_windows.json in " + dir;
    return false;
  }
  std::ifstream wf(path);
  if (!wf) {
    error = "cannot read " + path;
    return false;
  }
  windows = nlohmann::json::parse(wf, nullptr, false);
  if (windows.is_discarded() || !windows.is_object()) {
    error = path + ": not a JSON object";
    return false;
  }
  return true;
}

}  // namespace

bool listCorpus(const std::string& dir, std::vector<std::string>& names, std::string& error) {
  nlohmann::json windows;
  if (!readWindows(dir, windows, error)) {
    return false;
  }
  for (auto it = windows.begin(); it != windows.end(); ++it) {
    names.push_back(it.key());
  }
  return true;
}

bool loadCorpus(const std::string& dir, std::vector<CorpusFile>& out, std::string& error) {
  nlohmann::json windows;
  if (!readWindows(dir, windows, error)) {
    return false;
  }
  for (auto it = windows.begin(); it != windows.end(); ++it) {
    CorpusFile f;
    f.name = it.key();
    std::ifstream in(dir + "/data/" + f.name);
    if (!in) {
      error = "cannot read " + dir + "/data/" + f.name;
      return false;
    }
    std::stringstream text;
    text << in.rdbuf();
    if (!anomaly::parseSeriesCsv(text.str(), f.series, error)) {
      error = f.name + ": " + error;
      return false;
    }
    std::map<std::string, std::size_t> row_of;
    for (std::size_t i = 0; i < f.series.timestamp_text.size(); ++i) {
      row_of[f.series.timestamp_text[i]] = i;
    }
    if (!it.value().is_array()) {
      error = f.name + ": its windows are not a list";
      return false;
    }
    for (const auto& w : it.value()) {
      if (!w.is_array() || w.size() != 2 || !w[0].is_string() || !w[1].is_string()) {
        error = f.name + ": window " + w.dump() + " is not a pair of timestamps";
        return false;
      }
      // Window bounds carry a ".ffffff" fraction the CSV rows do not.
      auto row = [&](const std::string& t) -> long {
        auto found = row_of.find(t.substr(0, t.find('.')));
        return found == row_of.end() ? -1 : static_cast<long>(found->second);
      };
      const long a = row(w.at(0).get<std::string>());
      const long b = row(w.at(1).get<std::string>());
      if (a < 0 || b < a) {
        error = f.name + ": window " + w.dump() + " does not match the data's timestamps";
        return false;
      }
      f.windows.emplace_back(static_cast<std::size_t>(a), static_cast<std::size_t>(b));
    }
    out.push_back(std::move(f));
  }
  return true;
}

}  // namespace vigil::nab
