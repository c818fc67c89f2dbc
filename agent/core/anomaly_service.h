#pragma once
// Anomaly detection in the agent: on its own thread, every interval, the series matching the
// configured selectors are read from the store, each new sample is fed to the series' model
// (counters by their per-second rate), and the scores are written back as ordinary series —
// `anomaly_score{source_metric="node_load1", ...the series' own labels}` — in the store (for
// rules) and on /metrics. Off the collection path: a slow cycle here delays no collector.

#include <condition_variable>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "snapshot_registry.h"
#include "vigil/anomaly/detector.h"
#include "vigil/anomaly/multivariate.h"
#include "vigil/config.h"
#include "vigil/metric.h"
#include "vigil/rules/promql_ast.h"
#include "vigil/status.h"
#include "vigil/store.h"

namespace vigil {

class AnomalyService {
 public:
  /// `config` must be valid (checked when the configuration loaded).
  AnomalyService(Store& store, SnapshotRegistry& snapshots, const AnomalyConfig& config,
                 Duration default_interval);
  ~AnomalyService();

  void start();
  void stop();
  /// A new configuration: models of series still selected (with the same detector) are kept.
  void reconfigure(const AnomalyConfig& config, Duration default_interval);

  /// One cycle at `now` (ms): what the thread runs; public for tests.
  void runOnce(int64_t now);
  /// Writes every model to `path` atomically, so a restart keeps what was learned.
  Status saveModels(const std::string& path) const;
  /// Restores models written by saveModels with the same detector; a missing file is not an
  /// error, a corrupt one is (and nothing of it is used).
  Status loadModels(const std::string& path);
  /// vigil_anomaly_* health metrics.
  void appendStats(MetricBatch& out) const;

  static constexpr const char* kSource = "anomaly";

 private:
  struct Model {
    anomaly::DetectorPtr detector;
    bool counter = false;
    int64_t last_t = 0;
    double last_value = 0;  // counters: the previous raw value, for the rate
    bool has_last = false;
    double score = 0;
    bool has_score = false;
    // The value (a counter's rate) last scored and where the model expected it; unknown
    // after a restart until the next sample.
    double observed = std::numeric_limits<double>::quiet_NaN();
    anomaly::ExpectedRange expected{std::numeric_limits<double>::quiet_NaN(),
                                    std::numeric_limits<double>::quiet_NaN()};
    int64_t seen = 0;  // the cycle that last selected it
  };
  void run();
  /// Scores the node as a whole: the multivariate features at `now` into `out`.
  void scoreMultivariate(int64_t now, MetricBatch& out);

  Store& store_;
  SnapshotRegistry& snapshots_;
  Store::SourceId source_;
  mutable std::mutex mu_;  // everything below
  AnomalyConfig config_;
  Duration interval_;
  std::vector<std::vector<LabelMatcher>> selectors_;
  std::unordered_map<uint64_t, Model> models_;  // by label-set hash
  // The multivariate features (names, parsed expressions) and their model, renewed when the
  // features change.
  std::vector<std::pair<std::string, promql::ExprPtr>> features_;
  std::unique_ptr<anomaly::MultivariateModel> multivariate_;
  uint64_t multivariate_scored_ = 0;
  int64_t last_run_ = 0;
  uint64_t samples_scored_ = 0;
  uint64_t models_refused_ = 0;
  uint64_t cycles_ = 0;
  double last_cycle_seconds_ = 0;

  std::thread thread_;
  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stopping_ = false;
  bool reconfigured_ = false;  // wakes a loop that sleeps while detection is off
};

}  // namespace vigil
