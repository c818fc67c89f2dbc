#pragma once
// GET /api/v1/cost: what this node cost over recent windows (by default the last hour and the
// last day), by namespace and pod, and how much of it was idle — read from the cost
// collector's counters in the store, so it covers at most the store's retention (each window
// says how much of it the data covered).

#include <cstdint>
#include <string>
#include <vector>

#include "../http/http_server.h"
#include "vigil/store.h"

namespace vigil {

void registerCostApi(HttpServer& http, const Store& store);

/// The response body for windows of `windows_ms` ending at `now_ms`.
std::string costSummaryJson(const Store& store, int64_t now_ms,
                            const std::vector<int64_t>& windows_ms);

}  // namespace vigil
