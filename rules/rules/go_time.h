#pragma once
// Go's time.Time as templates print it, for times held as milliseconds since the epoch in
// UTC, and Go's zero time (0001-01-01, a firing alert's end) as kGoZeroTime.

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace vigil::promql {

/// Go's zero time, 0001-01-01T00:00:00Z.
constexpr int64_t kGoZeroTime = std::numeric_limits<int64_t>::min();

/// An alert's time as Go's: its 0 (no end) is the zero time.
constexpr int64_t alertTime(int64_t ms) { return ms == 0 ? kGoZeroTime : ms; }

/// What Go's Time.String() prints: "2026-08-22 10:00:00.25 +0000 UTC".
std::string goTimeString(int64_t ms);

/// Go's Time.Format(layout): the layout is the reference time, Mon Jan 2 15:04:05 MST 2006,
/// written as the result should look ("2006-01-02T15:04:05Z07:00"). Every element Go knows is
/// supported; the zone is always UTC.
std::string goTimeFormat(int64_t ms, std::string_view layout);

/// Go's Time.Unix(): whole seconds, rounded down.
int64_t goTimeUnix(int64_t ms);

}  // namespace vigil::promql
