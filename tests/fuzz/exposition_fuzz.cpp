// Scraped bodies and textfiles (the Prometheus text format) -> parseTextFormat, with and
// without the scrape cache's layout.
#include <cstdint>
#include <string_view>

#include "vigil/text_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  vigil::TextParseLimits limits;
  limits.max_samples = 10000;
  vigil::parseTextFormat(text, limits);
  limits.layout = true;
  vigil::parseTextFormat(text, limits);
  return 0;
}
