#pragma once
// Metrics pushed to vigil, Pushgateway-style: batch jobs and business code PUT or POST the
// text or protobuf format to /metrics/job/JOB[/LABEL/VALUE...]; each grouping key holds its metrics
// until replaced or deleted. The `push` collector hands them to the store and /metrics every cycle.

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "vigil/metric.h"
#include "vigil/status.h"

namespace vigil::collectors {

class PushRegistry {
 public:
  static constexpr std::size_t kMaxGroups = 1000;
  static constexpr std::size_t kMaxSamplesPerGroup = 100'000;
  /// The largest body a push may decompress to (a gzip body; its samples are limited too).
  static constexpr std::size_t kMaxBodyBytes = 32 << 20;

  /// The one registry of the process: the HTTP handler writes it, the collector reads it.
  static PushRegistry& instance();

  /// Parses the grouping key from a path below /metrics/ ("job/batch/instance/db-1"): job
  /// first, then label/value pairs, each part percent-decoded; a value whose name ends in
  /// @base64 ("path@base64/L3Zhci90bXA") is base64url, as the Pushgateway and Prometheus's
  /// client libraries have it for values with a slash or empty ones. Errors say what is wrong.
  static Result<LabelSet> groupingKey(std::string_view path);

  /// A family vigil exports itself (a collector's or its own health), by name: its type and
  /// who exports it; nullopt if none is called that.
  struct ExportedFamily {
    MetricType type;
    std::string exporter;  // "the collector loadavg", say
  };
  /// Called before the registry takes its lock, so it may take locks of its own.
  using ExportedFamilies = std::function<std::optional<ExportedFamily>(const std::string& name)>;

  /// PUT (`replace_all`): the group's metrics become the body's. POST: metrics of the same
  /// names are replaced, the others kept. The body is in the text format, or the protobuf one
  /// when `content_type` says so. A body that does not parse changes nothing. A family must
  /// keep the type other groups, and `exported`, give it: /metrics serves it under one.
  Status push(const LabelSet& group, std::string_view body, std::string_view content_type,
              bool replace_all, int64_t now_ms, const ExportedFamilies& exported = {});
  Status remove(const LabelSet& group);
  /// Every group's metrics with its grouping labels, and push_time_seconds and
  /// push_failure_time_seconds per group.
  void snapshot(MetricBatch& out) const;

 private:
  struct Group {
    std::map<std::string, MetricFamily> families;  // by name
    int64_t pushed_at = 0;  // the last push that changed it (ms); 0: none yet
    int64_t failed_at = 0;  // the last push refused as inconsistent (ms); 0: none
  };
  mutable std::mutex mu_;
  std::map<LabelSet, Group> groups_;
};

}  // namespace vigil::collectors
