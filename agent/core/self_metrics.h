#pragma once
// vigil's own health metrics (vigil_*), their values prometheus-cpp's thread-safe gauges (the
// collectors' health plain atomics), read in place by a scrape and exported like any
// collected metric.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "vigil/metric.h"

namespace vigil {

/// One collector's health series, looked up once so that a cycle only sets values. Valid for
/// the lifetime of the SelfMetrics that made it.
class CollectorHealth {
 public:
  void finished(double seconds, bool success);
  void timedOut();
  void skipped();

 private:
  friend class SelfMetrics;
  struct Series;
  Series* series_ = nullptr;
};

class SelfMetrics {
 public:
  SelfMetrics(std::string_view version, std::string_view revision);
  ~SelfMetrics();
  SelfMetrics(const SelfMetrics&) = delete;
  SelfMetrics& operator=(const SelfMetrics&) = delete;

  /// The health series of `collector`, created (at 0) on first use.
  CollectorHealth collectorHealth(const std::string& collector);
  void httpRequest(const std::string& handler, int code);
  void httpRefused(const std::string& reason);
  void tlsReload(bool success);
  void configReload(bool success, double unix_seconds);
  void setExportedSeries(double series);
  /// The wall clock stepped by `by_ms` (negative: back), and the store dropped what it had
  /// stamped after the new time.
  void clockJumped(int64_t by_ms, std::size_t dropped_samples);
  void checkpointWritten(bool success, double seconds, double unix_seconds);

  /// Appends a copy of every self metric to `out`.
  void snapshot(MetricBatch& out) const;

 private:
  void appendCollectorHealth(MetricBatch& out) const;

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil
