// vigil's configuration YAML -> parseConfig: a configuration or errors with positions.
#include <cstdint>
#include <string_view>

#include "vigil/collector.h"
#include "vigil/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto collectors = vigil::builtinCollectorInfo();
  // "<fuzz>" anchors no relative path, so no file next to it is read.
  vigil::parseConfig(std::string_view(reinterpret_cast<const char*>(data), size), "<fuzz>",
                     collectors);
  return 0;
}
