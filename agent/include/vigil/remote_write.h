#pragma once
// Prometheus remote write from the store: what an endpoint is configured with (the
// `remote_write` section, Prometheus's field names and defaults), and the interface the agent
// drives. The implementation lives in exporters/ (it speaks HTTP, protobuf and snappy); the
// agent only hands it the store, the data directory and the configuration.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "vigil/alerting/config.h"
#include "vigil/duration.h"
#include "vigil/metric.h"
#include "vigil/relabel.h"
#include "vigil/status.h"

namespace vigil {

class Store;

struct RemoteWriteQueueConfig {
  std::size_t capacity = 2500;  // samples a shard holds before it sends (Prometheus's default)
  int min_shards = 1;
  int max_shards = 200;
  std::size_t max_samples_per_send = 500;
  Duration batch_send_deadline{5000};  // the longest a sample waits for its batch
  Duration min_backoff{30};
  Duration max_backoff{5000};
  bool retry_on_http_429 = true;
};

struct RemoteWriteMetadataConfig {
  bool send = true;
  Duration send_interval{60000};
  std::size_t max_samples_per_send = 500;
};

struct RemoteWriteConfig {
  std::string url;
  std::string name;  // the `remote_name` label of the metrics; default: a hash of the config
  Duration remote_timeout{30000};
  alerting::HttpClientConfig http;  // authorization, basic_auth, tls_config, headers
  std::vector<RelabelConfig> write_relabel_configs;
  RemoteWriteQueueConfig queue;
  RemoteWriteMetadataConfig metadata;
};

/// What a metric is, for the metadata vigil sends along (from the latest collections).
struct MetricMetadata {
  std::string name;  // the family name
  MetricType type = MetricType::kUntyped;
  std::string help;
};
using MetadataSource = std::function<std::vector<MetricMetadata>()>;

class RemoteWriter {
 public:
  virtual ~RemoteWriter() = default;
  /// Starts reading `store`; positions persisted under `data_dir` are resumed. Called once.
  virtual void attach(const Store& store, const std::string& data_dir, MetadataSource metadata) = 0;
  /// Replaces the endpoints (a reload). An endpoint whose configuration is unchanged keeps its
  /// queue and position; a new one starts at the newest samples.
  virtual void configure(const std::vector<RemoteWriteConfig>& endpoints,
                         const std::vector<Label>& external_labels) = 0;
  /// Writes the positions (with the store checkpoint, so the two match after a restart).
  virtual Status savePositions() = 0;
  /// vigil_remote_write_* metrics.
  virtual void appendStats(MetricBatch& out) const = 0;
  /// Stops sending; what was acknowledged is saved.
  virtual void stop() = 0;
};

}  // namespace vigil
