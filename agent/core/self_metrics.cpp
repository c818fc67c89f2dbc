#include "self_metrics.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <map>
#include <mutex>

namespace vigil {

struct SelfMetrics::Impl {
  prometheus::Registry registry;
  std::mutex health_mu;
  std::map<std::string, std::unique_ptr<CollectorHealth::Series>> health;
  prometheus::Family<prometheus::Gauge>& build_info =
      prometheus::BuildGauge()
          .Name("vigil_build_info")
          .Help(
              "A metric with a constant '1' value labeled by the version and revision vigil "
              "was built from.")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& http_refused =
      prometheus::BuildCounter()
          .Name("vigil_http_requests_refused_total")
          .Help(
              "HTTP requests refused before their handler ran, by reason: unauthenticated "
              "(no or an unknown token), forbidden (a token without the scope).")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& tls_reloads =
      prometheus::BuildCounter()
          .Name("vigil_http_tls_reloads_total")
          .Help(
              "Reloads of the HTTP server's certificate and key after their files changed, by "
              "result (a failed one keeps the previous certificate).")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& http_requests =
      prometheus::BuildCounter()
          .Name("vigil_http_requests_total")
          .Help("HTTP requests served, by handler and status code.")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& reload_ok =
      prometheus::BuildGauge()
          .Name("vigil_config_last_reload_successful")
          .Help("Whether the last configuration reload attempt was successful.")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& reload_time =
      prometheus::BuildGauge()
          .Name("vigil_config_last_reload_success_timestamp_seconds")
          .Help("Timestamp of the last successful configuration reload.")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& reload_failures =
      prometheus::BuildCounter()
          .Name("vigil_config_reload_failures_total")
          .Help("Configuration reloads rejected because the new configuration was invalid.")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& checkpoint_duration =
      prometheus::BuildGauge()
          .Name("vigil_store_checkpoint_duration_seconds")
          .Help("Time the last store checkpoint took to write.")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& checkpoint_time =
      prometheus::BuildGauge()
          .Name("vigil_store_last_checkpoint_timestamp_seconds")
          .Help("When the store was last checkpointed successfully.")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& checkpoint_failures =
      prometheus::BuildCounter()
          .Name("vigil_store_checkpoint_failures_total")
          .Help("Store checkpoints that could not be written.")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& clock_jumps =
      prometheus::BuildCounter()
          .Name("vigil_clock_jumps_total")
          .Help("Steps of the wall clock against the monotonic clock, by direction.")
          .Register(registry);
  prometheus::Family<prometheus::Counter>& clock_dropped =
      prometheus::BuildCounter()
          .Name("vigil_clock_dropped_samples_total")
          .Help("Samples dropped because the wall clock went back before their timestamp.")
          .Register(registry);
  prometheus::Family<prometheus::Gauge>& exported_series =
      prometheus::BuildGauge()
          .Name("vigil_exporter_series")
          .Help("Series served on /metrics by the last scrape, self metrics excluded.")
          .Register(registry);
};

SelfMetrics::SelfMetrics(std::string_view version, std::string_view revision)
    : impl_(std::make_unique<Impl>()) {
  impl_->build_info.Add({{"version", std::string(version)}, {"revision", std::string(revision)}})
      .Set(1);
  impl_->reload_ok.Add({}).Set(1);
  impl_->exported_series.Add({});
  impl_->checkpoint_failures.Add({});
  impl_->clock_jumps.Add({{"direction", "backward"}});
  impl_->clock_jumps.Add({{"direction", "forward"}});
  impl_->clock_dropped.Add({});
}

void SelfMetrics::clockJumped(int64_t by_ms, std::size_t dropped_samples) {
  impl_->clock_jumps.Add({{"direction", by_ms < 0 ? "backward" : "forward"}}).Increment();
  impl_->clock_dropped.Add({}).Increment(static_cast<double>(dropped_samples));
}

void SelfMetrics::checkpointWritten(bool success, double seconds, double unix_seconds) {
  if (success) {
    impl_->checkpoint_duration.Add({}).Set(seconds);
    impl_->checkpoint_time.Add({}).Set(unix_seconds);
  } else {
    impl_->checkpoint_failures.Add({}).Increment();
  }
}

SelfMetrics::~SelfMetrics() = default;

// Plain atomics rather than prometheus-cpp metrics: these are most of the self series (five per
// collector), and reading them straight from here on a scrape costs a fraction of what the
// registry's Collect() does (it copies every label set twice).
struct CollectorHealth::Series {
  std::atomic<double> duration{0};
  std::atomic<double> success{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> skipped{0};
};

void CollectorHealth::finished(double seconds, bool success) {
  series_->duration.store(seconds, std::memory_order_relaxed);
  series_->success.store(success ? 1 : 0, std::memory_order_relaxed);
  if (!success) {
    series_->errors.fetch_add(1, std::memory_order_relaxed);
  }
}

void CollectorHealth::timedOut() {
  series_->timeouts.fetch_add(1, std::memory_order_relaxed);
  series_->success.store(0, std::memory_order_relaxed);
}

void CollectorHealth::skipped() { series_->skipped.fetch_add(1, std::memory_order_relaxed); }

CollectorHealth SelfMetrics::collectorHealth(const std::string& collector) {
  std::lock_guard lock(impl_->health_mu);
  auto& series = impl_->health[collector];
  if (!series) {
    // Created up front (at 0) so that rate() sees the first error, timeout or skip as an
    // increase.
    series = std::make_unique<CollectorHealth::Series>();
  }
  CollectorHealth h;
  h.series_ = series.get();
  return h;
}

void SelfMetrics::httpRequest(const std::string& handler, int code) {
  impl_->http_requests.Add({{"handler", handler}, {"code", std::to_string(code)}}).Increment();
}

void SelfMetrics::httpRefused(const std::string& reason) {
  impl_->http_refused.Add({{"reason", reason}}).Increment();
}

void SelfMetrics::tlsReload(bool success) {
  impl_->tls_reloads.Add({{"result", success ? "success" : "failure"}}).Increment();
}

void SelfMetrics::configReload(bool success, double unix_seconds) {
  impl_->reload_ok.Add({}).Set(success ? 1 : 0);
  if (success) {
    impl_->reload_time.Add({}).Set(unix_seconds);
  } else {
    impl_->reload_failures.Add({}).Increment();
  }
}

void SelfMetrics::setExportedSeries(double series) { impl_->exported_series.Add({}).Set(series); }

void SelfMetrics::snapshot(MetricBatch& out) const {
  for (const prometheus::MetricFamily& pf : impl_->registry.Collect()) {
    MetricType type = MetricType::kUntyped;
    switch (pf.type) {
      case prometheus::MetricType::Counter:
        type = MetricType::kCounter;
        break;
      case prometheus::MetricType::Gauge:
        type = MetricType::kGauge;
        break;
      case prometheus::MetricType::Summary:
        type = MetricType::kSummary;
        break;
      case prometheus::MetricType::Histogram:
        type = MetricType::kHistogram;
        break;
      default:
        break;
    }
    MetricFamily& family = out.family(pf.name, pf.help, type);
    std::vector<LabelRef> labels;
    for (const prometheus::ClientMetric& m : pf.metric) {
      labels.clear();
      for (const auto& l : m.label) {
        labels.push_back({l.name, l.value});
      }
      switch (pf.type) {
        case prometheus::MetricType::Counter:
          MetricBatch::addRefs(family, labels, m.counter.value);
          break;
        case prometheus::MetricType::Gauge:
          MetricBatch::addRefs(family, labels, m.gauge.value);
          break;
        default:
          // vigil registers only counters and gauges; anything else is a programming error
          // that would show up as a missing series in tests.
          break;
      }
    }
  }
  appendCollectorHealth(out);
}

void SelfMetrics::appendCollectorHealth(MetricBatch& out) const {
  std::lock_guard lock(impl_->health_mu);
  if (impl_->health.empty()) {
    return;
  }
  MetricFamily& duration =
      out.family("vigil_collector_duration_seconds", "Duration of the collector's last cycle.",
                 MetricType::kGauge);
  MetricFamily& success = out.family(
      "vigil_collector_success", "Whether the collector's last cycle succeeded (1) or failed (0).",
      MetricType::kGauge);
  MetricFamily& errors =
      out.family("vigil_collector_errors_total",
                 "Collector cycles that failed, including those that ran past their timeout.",
                 MetricType::kCounter);
  MetricFamily& timeouts =
      out.family("vigil_collector_timeouts_total", "Collector cycles that ran past their timeout.",
                 MetricType::kCounter);
  MetricFamily& skipped =
      out.family("vigil_collector_skipped_total",
                 "Collector cycles skipped because the previous cycle was still running.",
                 MetricType::kCounter);
  for (const auto& [collector, series] : impl_->health) {
    const auto relaxed = std::memory_order_relaxed;
    MetricBatch::add(duration, {{"collector", collector}}, series->duration.load(relaxed));
    MetricBatch::add(success, {{"collector", collector}}, series->success.load(relaxed));
    MetricBatch::add(errors, {{"collector", collector}},
                     static_cast<double>(series->errors.load(relaxed)));
    MetricBatch::add(timeouts, {{"collector", collector}},
                     static_cast<double>(series->timeouts.load(relaxed)));
    MetricBatch::add(skipped, {{"collector", collector}},
                     static_cast<double>(series->skipped.load(relaxed)));
  }
}

}  // namespace vigil
