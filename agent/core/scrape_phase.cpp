#include "scrape_phase.h"

#include <algorithm>

namespace vigil {

namespace {

using std::chrono::nanoseconds;

constexpr nanoseconds kMinPeriod = std::chrono::milliseconds(100);
constexpr nanoseconds kJitterFloor = std::chrono::milliseconds(20);
// Two requests this close together are one scrape (a retry, or a client that asks twice).
constexpr nanoseconds kSameScrape = std::chrono::milliseconds(50);
// A scraper not seen for this long, before it has shown an interval, is given up.
constexpr nanoseconds kUnknownPeriodGone = std::chrono::minutes(1);

// The interval of `arrivals` (their span over their gaps) if every gap is within the tolerance
// of it. The mean, not the median gap: a scraper that comes alternately early and late has
// gaps alternately short and long, and its interval in between.
std::optional<nanoseconds> steadyPeriod(const std::vector<ScrapePhase::Clock::time_point>& a) {
  if (a.size() < ScrapePhase::kArrivals) {
    return std::nullopt;
  }
  const nanoseconds period = (a.back() - a.front()) / static_cast<int64_t>(a.size() - 1);
  if (period < kMinPeriod) {
    return std::nullopt;
  }
  const nanoseconds tolerance = std::max(period / 20, kJitterFloor);
  for (std::size_t i = 1; i < a.size(); ++i) {
    if (std::chrono::abs(a[i] - a[i - 1] - period) > tolerance) {
      return std::nullopt;
    }
  }
  return period;
}

}  // namespace

bool ScrapePhase::observe(std::string_view client, Clock::time_point at) {
  std::lock_guard lock(mu_);
  if (client != client_) {
    const auto period = steadyPeriod(arrivals_);
    const nanoseconds gone = period ? 3 * *period : kUnknownPeriodGone;
    if (!arrivals_.empty() && at - arrivals_.back() < gone) {
      return false;  // another scraper's, while the followed one still comes
    }
    client_.assign(client);
    arrivals_.clear();
  }
  if (!arrivals_.empty() && at - arrivals_.back() < kSameScrape) {
    return false;
  }
  if (!arrivals_.empty() && at < arrivals_.back()) {
    arrivals_.clear();  // out of order: start again rather than learn a negative gap
  }
  if (arrivals_.size() == kArrivals) {
    arrivals_.erase(arrivals_.begin());
  }
  arrivals_.push_back(at);
  return true;
}

std::optional<ScrapePhase::Estimate> ScrapePhase::estimate(Clock::time_point now) const {
  std::lock_guard lock(mu_);
  const auto period = steadyPeriod(arrivals_);
  if (!period) {
    return std::nullopt;
  }
  const nanoseconds p = *period;
  const Clock::time_point last = arrivals_.back();
  if (now - last > 3 * p) {
    return std::nullopt;  // it stopped coming
  }
  // Each arrival's phase against the last one's, in (-p/2, p/2]: the earliest is the
  // smallest.
  nanoseconds earliest{0};
  for (const auto& a : arrivals_) {
    nanoseconds offset = (a - last) % p;  // in (-p, 0]
    if (offset <= -p / 2) {
      offset += p;
    }
    earliest = std::min(earliest, offset);
  }
  Clock::time_point next = last + earliest;
  if (next <= now) {
    next += ((now - next) / p + 1) * p;
  }
  return Estimate{p, next};
}

}  // namespace vigil
