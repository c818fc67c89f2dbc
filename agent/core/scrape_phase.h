#pragma once
// When the next scrape of /metrics is due, learned from when the last ones came, so that the
// collectors' rounds can fall on it (see CollectorScheduler::followScrapes). A scraper such as
// Prometheus comes at a steady interval and phase; collecting as it arrives gives it samples
// taken then instead of up to an interval old (15 s with the default collection interval), as
// node_exporter does.
//
// Pure bookkeeping on the times it is given, safe to call from several threads.
#include <chrono>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

class ScrapePhase {
 public:
  using Clock = std::chrono::steady_clock;

  /// The scrape interval and the next expected arrival.
  struct Estimate {
    std::chrono::nanoseconds period{};
    Clock::time_point next;  // the earliest the next scrape is expected
  };

  /// A scrape of /metrics from `client` (its address) arrived at `at`. One scraper is followed:
  /// the first seen, until it has not come for three of its intervals (a minute before it has
  /// one), so that a second Prometheus of an HA pair or a person with curl does not blur it.
  /// True when it is the followed scraper's next scrape (not a repeat within 50 ms of its last).
  bool observe(std::string_view client, Clock::time_point at);

  /// When the followed scraper comes next after `now`, once its last kArrivals scrapes came at
  /// a steady interval (each gap within 5 % of their mean, or 20 ms) of at least 100 ms;
  /// nullopt otherwise. Arrivals jitter (a scraper that scrapes two targets in turn comes
  /// later when the other answered slowly first): the next arrival given is that of the
  /// earliest phase among the last ones, so that what runs before it runs before all.
  std::optional<Estimate> estimate(Clock::time_point now) const;

  static constexpr std::size_t kArrivals = 7;

 private:
  mutable std::mutex mu_;
  std::string client_;
  std::vector<Clock::time_point> arrivals_;  // the followed client's last ones, oldest first
};

}  // namespace vigil
