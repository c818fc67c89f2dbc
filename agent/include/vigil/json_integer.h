#pragma once
// Integers read back from JSON that vigil wrote (state files, the outbox, checkpoints). Such a
// file may be damaged or edited by hand: nlohmann's get<int64_t>() on 1e300 casts a double out
// of range, which is undefined behaviour, so fields are checked before they are converted.
// Include only from .cpp files that already parse JSON.

#include <nlohmann/json.hpp>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace vigil {

/// The integer `field` of `object`; throws std::invalid_argument naming the field when it is
/// missing, not an integer, or outside [min, max].
inline int64_t jsonInteger(const nlohmann::json& object, const char* field,
                           int64_t min = std::numeric_limits<int64_t>::min(),
                           int64_t max = std::numeric_limits<int64_t>::max()) {
  const auto it = object.find(field);
  if (it == object.end()) {
    throw std::invalid_argument(std::string("field \"") + field + "\" is missing");
  }
  int64_t value = 0;
  bool valid = false;
  if (it->is_number_unsigned()) {
    const uint64_t u = it->get<uint64_t>();
    valid = u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    value = valid ? static_cast<int64_t>(u) : 0;
  } else if (it->is_number_integer()) {
    value = it->get<int64_t>();
    valid = true;
  }
  if (!valid || value < min || value > max) {
    throw std::invalid_argument(std::string("field \"") + field + "\" must be an integer from " +
                                std::to_string(min) + " to " + std::to_string(max) + ", not " +
                                (it->is_number() ? it->dump() : std::string(it->type_name())));
  }
  return value;
}

/// The array of unsigned integers (alert fingerprints) `field` of `object`; throws
/// std::invalid_argument naming the field when it is missing or holds anything else.
inline std::vector<uint64_t> jsonUnsignedArray(const nlohmann::json& object, const char* field) {
  const auto it = object.find(field);
  if (it == object.end() || !it->is_array()) {
    throw std::invalid_argument(std::string("field \"") + field + "\" must be an array");
  }
  std::vector<uint64_t> out;
  out.reserve(it->size());
  for (const auto& v : *it) {
    if (!v.is_number_unsigned()) {
      throw std::invalid_argument(std::string("field \"") + field +
                                  "\" must hold unsigned integers, not " +
                                  (v.is_number() ? v.dump() : std::string(v.type_name())));
    }
    out.push_back(v.get<uint64_t>());
  }
  return out;
}

}  // namespace vigil
