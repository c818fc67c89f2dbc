#pragma once
// What this node costs, in OpenCost's model and names: node_cpu_hourly_cost,
// node_ram_hourly_cost, node_gpu_hourly_cost, node_gpu_count, node_total_hourly_cost and
// kubecost_node_is_spot, from the prices in `collectors.cost.pricing` (OpenCost's defaults)
// and the node's vCPUs and memory; plus vigil_cost_node_dollars_total, the cost accumulated
// since vigil started, so that increase() over a day gives the day's cost.

#include "vigil/collector.h"

namespace vigil::collectors {

Result<CollectorPtr> makeCostCollector(const CollectorSettings& settings, const HostPaths& paths);

}  // namespace vigil::collectors
