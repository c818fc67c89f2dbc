// Whether an instant falls in a time interval, as Alertmanager's timeinterval package decides
// it: every part a spec gives must contain the instant, taken in the spec's time zone.
#include <date/tz.h>

#include "vigil/alerting/config.h"

namespace vigil::alerting {

namespace {

struct CivilTime {
  int year = 0;
  int month = 0;    // 1..12
  int day = 0;      // 1..31
  int weekday = 0;  // 0 = Sunday
  int minute_of_day = 0;
  int days_in_month = 0;
};

CivilTime civil(int64_t t_ms, const std::string& location) {
  using std::chrono::milliseconds;
  using std::chrono::minutes;
  const date::sys_time<milliseconds> instant{milliseconds(t_ms)};
  date::local_time<milliseconds> local;
  if (location == "UTC") {
    local = date::local_time<milliseconds>{instant.time_since_epoch()};
  } else {
    const date::time_zone* zone =
        location == "Local" ? date::current_zone() : date::locate_zone(location);
    local = date::make_zoned(zone, instant).get_local_time();
  }
  const auto day = date::floor<date::days>(local);
  const date::year_month_day ymd{day};
  const date::weekday wd{day};
  CivilTime c;
  c.year = static_cast<int>(ymd.year());
  c.month = static_cast<int>(static_cast<unsigned>(ymd.month()));
  c.day = static_cast<int>(static_cast<unsigned>(ymd.day()));
  c.weekday = static_cast<int>(wd.c_encoding());
  c.minute_of_day = static_cast<int>(date::floor<minutes>(local - day).count());
  c.days_in_month = static_cast<int>(static_cast<unsigned>(
      date::year_month_day_last(ymd.year(), date::month_day_last(ymd.month())).day()));
  return c;
}

bool inRanges(const std::vector<TimeSpec::Range>& ranges, int v) {
  return std::any_of(ranges.begin(), ranges.end(),
                     [v](const TimeSpec::Range& r) { return v >= r.begin && v <= r.end; });
}

bool specContains(const TimeSpec& spec, int64_t t_ms) {
  const CivilTime c = civil(t_ms, spec.location);
  if (!spec.times.empty() &&
      std::none_of(spec.times.begin(), spec.times.end(), [&](const TimeSpec::Range& r) {
        return c.minute_of_day >= r.begin && c.minute_of_day < r.end;
      })) {
    return false;
  }
  if (!spec.days_of_month.empty()) {
    bool in = false;
    for (const auto& r : spec.days_of_month) {
      // Negative days count from the end of the month; a range starting after this month's
      // last day does not apply, and ends are clamped to the month.
      int begin = r.begin < 0 ? c.days_in_month + r.begin + 1 : r.begin;
      int end = r.end < 0 ? c.days_in_month + r.end + 1 : r.end;
      if (begin > c.days_in_month) {
        continue;
      }
      begin = std::clamp(begin, -c.days_in_month, c.days_in_month);
      end = std::clamp(end, -c.days_in_month, c.days_in_month);
      if (c.day >= begin && c.day <= end) {
        in = true;
        break;
      }
    }
    if (!in) {
      return false;
    }
  }
  if (!spec.months.empty() && !inRanges(spec.months, c.month)) {
    return false;
  }
  if (!spec.weekdays.empty() && !inRanges(spec.weekdays, c.weekday)) {
    return false;
  }
  if (!spec.years.empty() && !inRanges(spec.years, c.year)) {
    return false;
  }
  return true;
}

}  // namespace

bool TimeInterval::contains(int64_t t_ms) const {
  return std::any_of(specs.begin(), specs.end(),
                     [t_ms](const TimeSpec& s) { return specContains(s, t_ms); });
}

bool knownTimeZone(const std::string& name) {
  if (name == "UTC" || name == "Local") {
    return true;
  }
  try {
    return date::locate_zone(name) != nullptr;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace vigil::alerting
