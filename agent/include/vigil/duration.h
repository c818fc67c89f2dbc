#pragma once
// Durations in Prometheus syntax: "15s", "5m", "1h30m", "1d", "100ms", "0".

#include <chrono>
#include <string>
#include <string_view>

#include "vigil/status.h"

namespace vigil {

using Duration = std::chrono::milliseconds;

/// Parses a Prometheus duration: units y, w, d, h, m, s, ms, each at most once and from the
/// largest to the smallest, or the bare "0". Anything else is kInvalidArgument.
Result<Duration> parseDuration(std::string_view text);

/// The shortest Prometheus spelling of `d` ("1h30m", "0s").
std::string formatDuration(Duration d);

}  // namespace vigil
