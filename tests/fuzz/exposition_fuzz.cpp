// Scraped bodies and textfiles (the Prometheus text format) -> parseTextFormat, with and
// without the scrape cache's layout. What parses is rendered back as vigil serves it on
// /metrics, and that must parse again to the same thing: a second rendering equal to the
// first.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "vigil/exporters/text_format.h"
#include "vigil/text_parser.h"

namespace {

std::string render(const vigil::MetricBatch& batch) {
  std::string out;
  const vigil::MetricBatch* batches[] = {&batch};
  vigil::exporters::renderTextFormat(batches, out);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  vigil::TextParseLimits limits;
  limits.max_samples = 10000;
  auto parsed = vigil::parseTextFormat(text, limits);
  limits.layout = true;
  static_cast<void>(vigil::parseTextFormat(text, limits));
  if (!parsed) {
    return 0;
  }
  const std::string first = render(parsed->batch);
  // A rendered value may be a few bytes longer than it was written ("1e5" -> "100000").
  vigil::TextParseLimits again_limits;
  again_limits.max_samples = limits.max_samples;
  again_limits.max_line_bytes = limits.max_line_bytes * 2;
  auto again = vigil::parseTextFormat(first, again_limits);
  if (!again || again->samples != parsed->batch.seriesCount() || render(again->batch) != first) {
    std::abort();
  }
  return 0;
}
