#pragma once
// Serialising detector state: a tag naming the detector kind and version, then trivially
// copyable fields, so a checkpoint written by another detector or version is refused.

#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

namespace vigil::anomaly {

template <typename State>
std::string packState(std::string_view tag, const State& state) {
  static_assert(std::is_trivially_copyable_v<State>);
  std::string out(tag);
  out.push_back('\0');
  out.append(reinterpret_cast<const char*>(&state), sizeof state);
  return out;
}

template <typename State>
bool unpackState(std::string_view tag, std::string_view in, State& state) {
  static_assert(std::is_trivially_copyable_v<State>);
  if (in.size() != tag.size() + 1 + sizeof state || in.substr(0, tag.size()) != tag ||
      in[tag.size()] != '\0') {
    return false;
  }
  std::memcpy(&state, in.data() + tag.size() + 1, sizeof state);
  return true;
}

}  // namespace vigil::anomaly
