#pragma once
// A price file for the cost collector (`collectors.cost.pricing.price_file`), in one of
// OpenCost's two custom-pricing formats, chosen by the file's extension:
//  - .json: OpenCost's custom pricing object ({"CPU": "0.031611", "spotCPU": ..., "RAM": ...,
//    "spotRAM": ..., "GPU": ..., "discount": "10%", "negotiatedDiscount": ..., "spotLabel": ...,
//    "spotLabelValue": ...}); numbers may be strings, as OpenCost writes them. Keys OpenCost uses
//    for what vigil does not price (egress, load balancers) are accepted and ignored.
//  - .csv: OpenCost's CSV provider (header EndTimestamp,InstanceID,Region,AssetClass,
//    InstanceIDField,InstanceType,MarketPriceHourly,Version; rows of AssetClass node or gpu).
// Every problem is reported with the file's name and line.

#include <string>
#include <vector>

#include "vigil/config.h"
#include "vigil/status.h"

namespace vigil {

/// Reads `path` into `into` (its prices, or its node_prices), appending problems to `errors`.
void readPriceFile(const std::string& path, CostPricing& into, std::vector<SourceError>& errors);

}  // namespace vigil
