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
  /// Fill TextParseResult::layout and ::positions (for a scrape cache).
  bool layout = false;
};

struct TextParseResult;

/// How a body is laid out: the series text of each sample line (name and labels exactly as
/// written), in order, and a hash of its comment lines. Like Prometheus's scrape cache, a
/// target's series are known by how it writes them: a later body with the same layout has the
/// same families and label sets, so only its values need reading (readValues).
class TextLayout {
 public:
  std::size_t lines() const { return ends_.size(); }
  std::string_view series(std::size_t line) const {
    const std::size_t begin = line == 0 ? 0 : ends_[line - 1];
    return std::string_view(text_).substr(begin, ends_[line] - begin);
  }
  bool empty() const { return ends_.empty() && comments_ == 0; }

 private:
  friend Result<TextParseResult> parseTextFormat(std::string_view, const TextParseLimits&);
  friend bool readValues(std::string_view, const TextLayout&, const TextParseLimits&,
                         std::vector<double>&, std::size_t&);
  std::string text_;            // every line's series text, back to back
  std::vector<uint32_t> ends_;  // where each line's ends in text_
  uint64_t comments_ = 0;       // hash of the comment lines, in order
};

/// Where a sample line's sample went in the batch.
struct SamplePosition {
  uint32_t family = 0;  // index in MetricBatch::families()
  uint32_t sample = 0;  // index in that family's samples
};

struct TextParseResult {
  MetricBatch batch;
  std::size_t samples = 0;
  /// Samples that carried their own timestamp (kept out of the batch's one-timestamp model:
  /// counted, the value used as of now).
  std::size_t timestamped = 0;
  /// The first HELP line for a family that had one, or TYPE line for a family that had one
  /// or had samples before it ("line N: ..."), empty if none: what Prometheus reads past and
  /// Go's text parser (the Pushgateway's, promtool's) refuses.
  std::string metadata_error;
  /// With TextParseLimits::layout: the body's layout, and for each sample line in order where
  /// its sample is in `batch`.
  TextLayout layout;
  std::vector<SamplePosition> positions;
};

/// Parses `text`; errors read "line N: what is wrong".
Result<TextParseResult> parseTextFormat(std::string_view text, const TextParseLimits& limits = {});

/// Reads the values of a body laid out exactly as `layout` (the same comment lines, the same
/// series text on its sample lines in the same order) without looking into the labels: one
/// value per sample line, in line order, and how many carried a timestamp. False when the body
/// differs in any way or has anything parseTextFormat would refuse: parse it in full then,
/// which also says what is wrong. Blank lines may come and go.
bool readValues(std::string_view text, const TextLayout& layout, const TextParseLimits& limits,
                std::vector<double>& values, std::size_t& timestamped);

}  // namespace vigil
