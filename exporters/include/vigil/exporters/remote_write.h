#pragma once
// Prometheus remote write 1.0 from the store to Prometheus, Thanos, Cortex/Mimir or
// VictoriaMetrics.
//
// Each endpoint has a queue that reads the store (not a copy of it): every cycle it selects
// the samples newer than what it has sent of each series, adds the external labels, applies
// write_relabel_configs, spreads the series over shards (a series always on the same shard,
// so its samples arrive in order) and sends snappy-compressed protobuf WriteRequests of up to
// max_samples_per_send samples. 5xx, 429 and connection errors are retried with back-off for
// as long as it takes; other 4xx are dropped and counted. The position — everything up to it
// acknowledged — is written after every cycle and with the store checkpoints, so after a
// receiver outage or a restart the queue resumes from the store where it stopped.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/remote_write.h"
#include "vigil/store.h"

namespace vigil::exporters {

std::shared_ptr<RemoteWriter> makeRemoteWriter();

struct WriteRequestSeries {
  LabelSet labels;  // with __name__
  std::vector<Sample> samples;
};

struct WriteRequestContent {
  std::vector<WriteRequestSeries> series;
  std::vector<MetricMetadata> metadata;
};

/// The body of a remote-write request: a protobuf WriteRequest, snappy block-compressed.
std::string encodeWriteRequest(const WriteRequestContent& content);
/// Reads a body as a receiver does; kInvalidArgument when it is not snappy or not a
/// WriteRequest. (Tests and the benchmark's receiver.)
Result<WriteRequestContent> decodeWriteRequest(std::string_view body);

}  // namespace vigil::exporters
