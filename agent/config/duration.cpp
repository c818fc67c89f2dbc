#include "vigil/duration.h"

#include <array>
#include <cstdint>
#include <limits>

namespace vigil {
namespace {

struct Unit {
  std::string_view suffix;
  int64_t millis;
};
// Largest first: the order Prometheus requires them in.
constexpr std::array<Unit, 7> kUnits{{{"y", 365LL * 24 * 3600 * 1000},
                                      {"w", 7LL * 24 * 3600 * 1000},
                                      {"d", 24LL * 3600 * 1000},
                                      {"h", 3600LL * 1000},
                                      {"m", 60LL * 1000},
                                      {"s", 1000},
                                      {"ms", 1}}};

Status badDuration(std::string_view text, std::string_view why) {
  return invalidArgument("invalid duration \"" + std::string(text) + "\": " + std::string(why) +
                         " (use Prometheus syntax such as 15s, 5m or 1h30m)");
}

}  // namespace

Result<Duration> parseDuration(std::string_view text) {
  if (text == "0") {
    return Duration{0};
  }
  if (text.empty()) {
    return badDuration(text, "empty");
  }
  int64_t total = 0;
  std::size_t next_unit = 0;  // index into kUnits of the smallest unit still allowed
  std::size_t pos = 0;
  while (pos < text.size()) {
    if (text[pos] < '0' || text[pos] > '9') {
      return badDuration(text, "expected a number");
    }
    int64_t number = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (number > (std::numeric_limits<int64_t>::max() - 9) / 10) {
        return badDuration(text, "too large");
      }
      number = number * 10 + (text[pos] - '0');
      ++pos;
    }
    std::size_t unit_end = pos;
    while (unit_end < text.size() && (text[unit_end] < '0' || text[unit_end] > '9')) {
      ++unit_end;
    }
    std::string_view suffix = text.substr(pos, unit_end - pos);
    if (suffix.empty()) {
      return badDuration(text, "missing unit");
    }
    std::size_t found = kUnits.size();
    for (std::size_t i = 0; i < kUnits.size(); ++i) {
      if (kUnits[i].suffix == suffix) {
        found = i;
        break;
      }
    }
    if (found == kUnits.size()) {
      return badDuration(text, "unknown unit \"" + std::string(suffix) + "\"");
    }
    if (found < next_unit) {
      return badDuration(text, "units must go from largest to smallest, each at most once");
    }
    next_unit = found + 1;
    if (number > std::numeric_limits<int64_t>::max() / kUnits[found].millis ||
        total > std::numeric_limits<int64_t>::max() - number * kUnits[found].millis) {
      return badDuration(text, "too large");
    }
    total += number * kUnits[found].millis;
    pos = unit_end;
  }
  return Duration{total};
}

std::string formatDuration(Duration d) {
  int64_t ms = d.count();
  if (ms == 0) {
    return "0s";
  }
  std::string out;
  if (ms < 0) {
    out = "-";
    ms = -ms;
  }
  for (const Unit& unit : kUnits) {
    if (ms >= unit.millis) {
      out += std::to_string(ms / unit.millis);
      out += unit.suffix;
      ms %= unit.millis;
    }
  }
  return out;
}

}  // namespace vigil
