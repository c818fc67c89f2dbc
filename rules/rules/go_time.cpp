#include "go_time.h"

#include <chrono>
#include <cstdio>

namespace vigil::promql {

namespace {

constexpr int64_t kMsPerDay = 86'400'000;

const char* const kMonths[] = {"January",   "February", "March",    "April",
                               "May",       "June",     "July",     "August",
                               "September", "October",  "November", "December"};
const char* const kWeekdays[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                 "Thursday", "Friday", "Saturday"};

struct Civil {
  int year = 1;
  int month = 1;  // 1-12
  int day = 1;
  int hour = 0;
  int minute = 0;
  int second = 0;
  int millis = 0;
  int weekday = 1;  // 0 = Sunday
  int yday = 1;     // 1-366
};

Civil civilOf(int64_t ms) {
  using namespace std::chrono;
  Civil c;
  sys_days days = sys_days(year{1} / January / 1);  // Go's zero time
  int64_t in_day = 0;
  if (ms != kGoZeroTime) {
    int64_t d = ms / kMsPerDay;
    in_day = ms % kMsPerDay;
    if (in_day < 0) {
      in_day += kMsPerDay;
      --d;
    }
    days = sys_days(std::chrono::days(d));
  }
  const year_month_day ymd(days);
  c.year = static_cast<int>(ymd.year());
  c.month = static_cast<int>(static_cast<unsigned>(ymd.month()));
  c.day = static_cast<int>(static_cast<unsigned>(ymd.day()));
  c.weekday = static_cast<int>(weekday(days).c_encoding());
  c.yday = static_cast<int>((days - sys_days(ymd.year() / January / 1)).count()) + 1;
  c.hour = static_cast<int>(in_day / 3'600'000);
  c.minute = static_cast<int>(in_day / 60'000 % 60);
  c.second = static_cast<int>(in_day / 1000 % 60);
  c.millis = static_cast<int>(in_day % 1000);
  return c;
}

void putNumber(std::string& out, int v, int width, char pad = '0') {
  char buf[16];
  const int n = std::snprintf(buf, sizeof buf, "%d", v < 0 ? -v : v);
  if (v < 0) {
    out += '-';
  }
  for (int i = n; i < width; ++i) {
    out += pad;
  }
  out.append(buf, static_cast<std::size_t>(n));
}

// Fractional seconds with `digits` places: fixed ("0" runs) or with trailing zeros trimmed and
// the separator dropped when nothing is left ("9" runs). Below a millisecond all digits are 0.
void putFraction(std::string& out, char separator, int millis, int digits, bool trim) {
  std::string text;
  putNumber(text, millis, 3);
  text.resize(static_cast<std::size_t>(digits), '0');
  if (trim) {
    while (!text.empty() && text.back() == '0') {
      text.pop_back();
    }
    if (text.empty()) {
      return;
    }
  }
  out += separator;
  out += text;
}

bool startsWith(std::string_view s, std::size_t i, std::string_view what) {
  return s.substr(i, what.size()) == what;
}

// "Jan" and "Mon" followed by a lower-case letter are words ("Janet", "Month"), not elements.
bool lowerAt(std::string_view s, std::size_t i) {
  return i < s.size() && s[i] >= 'a' && s[i] <= 'z';
}

bool isDigit(std::string_view s, std::size_t i) {
  return i < s.size() && s[i] >= '0' && s[i] <= '9';
}

}  // namespace

std::string goTimeFormat(int64_t ms, std::string_view layout) {
  const Civil c = civilOf(ms);
  const int hour12 = c.hour % 12 == 0 ? 12 : c.hour % 12;
  std::string out;
  std::size_t i = 0;
  // Each step either writes one layout element and moves past it, or copies one byte. Longer
  // elements are tried before their prefixes, as Go does ("January" before "Jan").
  auto element = [&](std::string_view name) {
    if (startsWith(layout, i, name)) {
      i += name.size();
      return true;
    }
    return false;
  };
  while (i < layout.size()) {
    const char ch = layout[i];
    if (element("January")) {
      out += kMonths[c.month - 1];
    } else if (startsWith(layout, i, "Jan") && !lowerAt(layout, i + 3)) {
      i += 3;
      out.append(kMonths[c.month - 1], 3);
    } else if (element("Monday")) {
      out += kWeekdays[c.weekday];
    } else if (startsWith(layout, i, "Mon") && !lowerAt(layout, i + 3)) {
      i += 3;
      out.append(kWeekdays[c.weekday], 3);
    } else if (element("MST")) {
      out += "UTC";
    } else if (ch == '0' && i + 1 < layout.size() && layout[i + 1] >= '1' && layout[i + 1] <= '6') {
      const int values[] = {c.month, c.day, hour12, c.minute, c.second, c.year % 100};
      putNumber(out, values[layout[i + 1] - '1'], 2);
      i += 2;
    } else if (element("002")) {
      putNumber(out, c.yday, 3);
    } else if (element("15")) {
      putNumber(out, c.hour, 2);
    } else if (element("1")) {
      putNumber(out, c.month, 0);
    } else if (element("2006")) {
      putNumber(out, c.year, 4);
    } else if (element("2")) {
      putNumber(out, c.day, 0);
    } else if (ch == '_' && startsWith(layout, i, "_2") && !startsWith(layout, i, "_2006")) {
      putNumber(out, c.day, 2, ' ');
      i += 2;
    } else if (element("__2")) {
      putNumber(out, c.yday, 3, ' ');
    } else if (element("3")) {
      putNumber(out, hour12, 0);
    } else if (element("4")) {
      putNumber(out, c.minute, 0);
    } else if (element("5")) {
      putNumber(out, c.second, 0);
    } else if (element("PM")) {
      out += c.hour >= 12 ? "PM" : "AM";
    } else if (element("pm")) {
      out += c.hour >= 12 ? "pm" : "am";
    } else if (element("-070000")) {
      out += "+000000";
    } else if (element("-07:00:00")) {
      out += "+00:00:00";
    } else if (element("-0700")) {
      out += "+0000";
    } else if (element("-07:00")) {
      out += "+00:00";
    } else if (element("-07")) {
      out += "+00";
    } else if (element("Z070000") || element("Z07:00:00") || element("Z0700") ||
               element("Z07:00") || element("Z07")) {
      out += 'Z';  // UTC
    } else if ((ch == '.' || ch == ',') && i + 1 < layout.size() &&
               (layout[i + 1] == '0' || layout[i + 1] == '9')) {
      const char run = layout[i + 1];
      std::size_t j = i + 1;
      while (j < layout.size() && layout[j] == run) {
        ++j;
      }
      if (isDigit(layout, j)) {  // not a fraction: ".09" followed by a digit stays text
        out += ch;
        ++i;
        continue;
      }
      putFraction(out, ch, c.millis, static_cast<int>(j - i - 1), run == '9');
      i = j;
    } else {
      out += ch;
      ++i;
    }
  }
  return out;
}

std::string goTimeString(int64_t ms) {
  return goTimeFormat(ms, "2006-01-02 15:04:05.999999999 -0700 MST");
}

int64_t goTimeUnix(int64_t ms) {
  if (ms == kGoZeroTime) {
    return -62'135'596'800;  // 0001-01-01T00:00:00Z
  }
  return ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
}

}  // namespace vigil::promql
