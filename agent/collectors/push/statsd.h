#pragma once
// StatsD and DogStatsD lines (`name:value|type[|@rate][|#tag:value,...]`) aggregated into
// Prometheus metrics, as statsd_exporter maps them: counters (`c`, divided by the sample rate)
// as counters, gauges (`g`, `+N`/`-N` relative) as gauges, timers and histograms (`ms`, `h`,
// `d`; milliseconds to seconds for `ms`) as histograms; names with `.`/`-` as `_`, tags as
// labels. Bad lines are counted and dropped; the number of series is bounded.

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/metric.h"

namespace vigil::collectors {

class StatsdAggregator {
 public:
  static constexpr std::size_t kMaxSeries = 100'000;

  /// One datagram: lines separated by '\n'. Thread-safe.
  void ingestPacket(std::string_view packet);
  /// A datagram that could not be read whole (over the listener's packet size): one bad line.
  void rejectPacket();
  /// Everything aggregated so far (counters and histograms accumulate, as in
  /// statsd_exporter), plus vigil_statsd_* health.
  void snapshot(MetricBatch& out) const;

  struct Stats {
    uint64_t packets = 0;
    uint64_t lines_ok = 0;
    uint64_t lines_bad = 0;
    uint64_t lines_dropped = 0;  // over the series limit
  };
  Stats stats() const;

 private:
  struct Series {
    MetricType type = MetricType::kUntyped;
    double value = 0;               // counter or gauge
    std::vector<uint64_t> buckets;  // histograms: cumulative at snapshot, per bucket here
    double sum = 0;
    uint64_t count = 0;
  };
  bool ingestLine(std::string_view line);  // under mu_

  mutable std::mutex mu_;
  // By metric name, then sorted labels.
  std::map<std::string, std::map<LabelSet, Series>> series_;
  std::size_t series_count_ = 0;
  Stats stats_;
};

}  // namespace vigil::collectors
