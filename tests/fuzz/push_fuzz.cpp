// Pushed metrics from the outside: the first byte picks what the rest is, a grouping key's
// path (even), a protobuf body (1 modulo 4) or a gzip-compressed text body (3 modulo 4),
// pushed into a registry of its own and read back.
#include <cstdint>
#include <string_view>

#include "agent/collectors/push/protobuf_format.h"
#include "agent/collectors/push/push_registry.h"
#include "agent/http/http_server.h"

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
  vigil::Status pushed;
  if (data[0] % 4 == 3) {
    auto body = vigil::gzipDecompress(rest, 1 << 20);
    if (!body) {
      return 0;
    }
    pushed = registry.push({{"job", "fuzz"}}, *body, "text/plain", true, 0);
  } else {
    pushed = registry.push({{"job", "fuzz"}}, rest, vigil::collectors::kProtobufMediaType, true, 0);
  }
  if (pushed.isOk()) {
    vigil::MetricBatch out;
    registry.snapshot(out);
  }
  return 0;
}
