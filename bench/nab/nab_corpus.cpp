#include "nab_corpus.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

namespace vigil::nab {

bool loadCorpus(const std::string& dir, std::vector<CorpusFile>& out, std::string& error) {
  std::ifstream wf(dir + "/windows.json");
  if (!wf) {
    error = "cannot read " + dir + "/windows.json";
    return false;
  }
  const auto windows = nlohmann::json::parse(wf, nullptr, false);
  if (windows.is_discarded() || !windows.is_object()) {
    error = dir + "/windows.json: not a JSON object";
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
    for (const auto& w : it.value()) {
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
