#pragma once
// Internal: encoding remote-write request bodies (protobuf WriteRequest, snappy-compressed)
// without copying the store's labels and samples.

#include <cstddef>
#include <span>
#include <string>

#include "vigil/remote_write.h"
#include "vigil/store.h"

namespace vigil::exporters {

/// A series' labels as the `labels` fields of a TimeSeries message, encoded once per series
/// and reused for every request that carries it.
std::string encodeLabels(const LabelSet& labels);

/// A run of one series' samples in a request.
struct SeriesPart {
  const std::string* label_bytes;  // encodeLabels of its labels (with __name__, sorted)
  const Sample* samples;
  std::size_t count;
};

std::string encodeParts(std::span<const SeriesPart> parts);
std::string encodeMetadata(std::span<const MetricMetadata> metadata);

}  // namespace vigil::exporters
