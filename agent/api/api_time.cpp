// API time formats.
#include "api_time.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>

#include "vigil/duration.h"
#include "vigil/rules/promql_ast.h"

namespace vigil {

std::string formatRfc3339(int64_t ms) {
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[80];
  std::snprintf(out, sizeof out, "%s.%03lldZ", buf, static_cast<long long>(ms % 1000));
  return out;
}

namespace {

// Float seconds in milliseconds; nullopt when `text` is no number.
std::optional<Result<int64_t>> floatSecondsToMs(const std::string& text, const char* what) {
  char* end = nullptr;
  const double secs = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size()) {
    return std::nullopt;
  }
  if (!std::isfinite(secs) || std::fabs(secs) > promql::kMaxTimeSeconds) {
    return invalidArgument("cannot parse \"" + text + "\" to a valid " + what + ": out of range");
  }
  return static_cast<int64_t>(std::llround(secs * 1000));
}

}  // namespace

Result<int64_t> parseApiTime(const std::string& text) {
  if (auto ms = floatSecondsToMs(text, "timestamp")) {
    return *ms;
  }
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest != nullptr) {
    int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
    if (*rest == '.') {
      ++rest;
      int64_t frac = 0;
      int digits = 0;
      while (*rest >= '0' && *rest <= '9') {
        if (digits < 3) {
          frac = frac * 10 + (*rest - '0');
          ++digits;
        }
        ++rest;
      }
      while (digits++ < 3) {
        frac *= 10;
      }
      ms += frac;
    }
    if (*rest == 'Z' && rest[1] == '\0') {
      return ms;
    }
    if ((*rest == '+' || *rest == '-') && std::strlen(rest) == 6 && rest[3] == ':') {
      const int sign = *rest == '+' ? 1 : -1;
      const int hours = std::atoi(std::string(rest + 1, 2).c_str());
      const int minutes = std::atoi(std::string(rest + 4, 2).c_str());
      return ms - sign * (hours * 3600 + minutes * 60) * 1000LL;
    }
  }
  return invalidArgument("cannot parse \"" + text + "\" to a valid timestamp");
}

Result<int64_t> parseApiDuration(const std::string& text) {
  if (auto ms = floatSecondsToMs(text, "duration")) {
    return *ms;
  }
  auto d = parseDuration(text);
  if (!d) {
    return invalidArgument("cannot parse \"" + text + "\" to a valid duration");
  }
  return d->count();
}

}  // namespace vigil
