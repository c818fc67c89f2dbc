#include "vigil/anomaly/series_csv.h"

#include <charconv>
#include <cstdlib>
#include <ctime>

namespace vigil::anomaly {

namespace {

bool parseTimestamp(std::string_view s, int64_t& ms) {
  std::tm tm{};
  const std::string text(s);
  const char* end = strptime(text.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
  if (end != nullptr) {
    ms = static_cast<int64_t>(timegm(&tm)) * 1000;
    if (*end == '.') {  // fractional seconds
      ms += static_cast<int64_t>(std::strtod(end, nullptr) * 1000);
    }
    return true;
  }
  char* num_end = nullptr;
  const double secs = std::strtod(text.c_str(), &num_end);
  if (num_end != text.c_str() && *num_end == '\0') {
    ms = static_cast<int64_t>(secs * 1000);
    return true;
  }
  return false;
}

}  // namespace

bool parseSeriesCsv(std::string_view text, SeriesCsv& out, std::string& error) {
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) {
      eol = text.size();
    }
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') {
      line.remove_suffix(1);
    }
    if (line.empty() || (line_no == 1 && line.starts_with("timestamp"))) {
      continue;
    }
    const std::size_t comma = line.find(',');
    if (comma == std::string_view::npos) {
      error = "line " + std::to_string(line_no) + ": expected timestamp,value";
      return false;
    }
    const std::string_view ts = line.substr(0, comma);
    std::string_view value = line.substr(comma + 1);
    if (auto extra = value.find(','); extra != std::string_view::npos) {
      value = value.substr(0, extra);  // further columns are ignored
    }
    int64_t ms = 0;
    if (!parseTimestamp(ts, ms)) {
      error = "line " + std::to_string(line_no) + ": bad timestamp \"" + std::string(ts) + "\"";
      return false;
    }
    const std::string v(value);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0') {
      error = "line " + std::to_string(line_no) + ": bad value \"" + v + "\"";
      return false;
    }
    out.timestamp_text.emplace_back(ts);
    out.timestamp_ms.push_back(ms);
    out.values.push_back(x);
  }
  return true;
}

}  // namespace vigil::anomaly
