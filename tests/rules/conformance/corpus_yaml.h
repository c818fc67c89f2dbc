#pragma once
// Shared by the corpus generators: how they spell strings in the promtool test files they write.
#include <yaml-cpp/yaml.h>

#include <string>

namespace vigil::conformance {

// A YAML scalar that reads back as exactly `s` (PromQL expressions are full of quotes and braces).
inline std::string yamlQuoted(const std::string& s) {
  YAML::Emitter out;
  out << YAML::SingleQuoted << s;
  return out.c_str();
}

}  // namespace vigil::conformance
