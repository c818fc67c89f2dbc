// Prometheus rule files (YAML with PromQL and Go templates) -> parseRuleFile.
#include <cstdint>
#include <string>

#include "vigil/rules/rule_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vigil::promql::parseRuleFile(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yml");
  return 0;
}
