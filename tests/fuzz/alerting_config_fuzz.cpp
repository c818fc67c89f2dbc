// alertmanager.yml -> parseAlertingConfig: routes, receivers, inhibitions, time intervals.
#include <cstdint>
#include <string_view>

#include "vigil/alerting/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vigil::alerting::parseAlertingConfig(std::string_view(reinterpret_cast<const char*>(data), size),
                                       "fuzz.yml");
  return 0;
}
