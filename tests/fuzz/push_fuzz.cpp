// Pushed metrics from the outside: the first byte picks what the rest is, a grouping key's
// path (even) or a protobuf body (odd), pushed into a registry of its own and read back.
#include <cstdint>
#include <string_view>

#include "agent/collectors/push/protobuf_format.h"
#include "agent/collectors/push/push_registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    (void)vigil::collectors::PushRegistry::groupingKey(rest);
    return 0;
  }
  vigil::collectors::PushRegistry registry;
  if (registry.push({{"job", "fuzz"}}, rest, vigil::collectors::kProtobufMediaType, true, 0)
          .isOk()) {
    vigil::MetricBatch out;
    registry.snapshot(out);
  }
  return 0;
}
