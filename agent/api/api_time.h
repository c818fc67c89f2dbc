#pragma once
// Times as the Prometheus and Alertmanager APIs write and read them.

#include <cstdint>
#include <string>

#include "vigil/status.h"

namespace vigil {

/// "2026-08-22T10:00:00.000Z" (UTC, milliseconds).
std::string formatRfc3339(int64_t ms);
/// Unix seconds (a float) or RFC 3339 with an optional fraction and a Z or ±HH:MM zone.
Result<int64_t> parseApiTime(const std::string& text);
/// A step or timeout in milliseconds: a Prometheus duration ("1m30s") or float seconds.
Result<int64_t> parseApiDuration(const std::string& text);

}  // namespace vigil
