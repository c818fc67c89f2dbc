#pragma once
// Parsing the Prometheus text exposition format 0.0.4 (and the OpenMetrics subset that shares
// its syntax: `# EOF`, `# UNIT`, exemplars, which are skipped) into MetricBatch families: what
// textfiles, scrape targets and pushed bodies are read with. Bounded: a body over its limits
// fails with an error naming the line, and nothing of it is used.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/metric.h"
#include "vigil/status.h"

namespace vigil {

struct TextParseLimits {
  std::size_t max_samples = 1'000'000;
  std::size_t max_line_bytes = 64 * 1024;
  std::size_t max_labels = 64;
  /// Room reserved in every sample's labels for labels the caller adds afterwards (a scrape's
  /// job and instance), so that adding them does not reallocate each sample's labels.
  std::size_t label_headroom = 0;
  /// Fill TextParseResult::series_keys (for counting the series new since the last scrape).
  bool series_keys = false;
};

struct TextParseResult {
  MetricBatch batch;
  std::size_t samples = 0;
  /// Samples that carried their own timestamp (kept out of the batch's one-timestamp model:
  /// counted, the value used as of now).
  std::size_t timestamped = 0;
  /// With TextParseLimits::series_keys: a hash of each sample line's series text (name and
  /// labels exactly as written), in line order. Like Prometheus's scrape cache, a series is
  /// known by how the target writes it.
  std::vector<uint64_t> series_keys;
};

/// Parses `text`; errors read "line N: what is wrong".
Result<TextParseResult> parseTextFormat(std::string_view text, const TextParseLimits& limits = {});

}  // namespace vigil
