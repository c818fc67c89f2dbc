#pragma once
// What this node costs and who on it spends it, in OpenCost's model and names.
//  - Node: node_cpu_hourly_cost, node_ram_hourly_cost, node_gpu_hourly_cost, node_gpu_count,
//    node_total_hourly_cost and kubecost_node_is_spot, from `collectors.cost.pricing` (OpenCost's
//    default prices, a price file, the node's class from its labels) and the node's vCPUs and
//    memory; vigil_cost_spot_saving_hourly; vigil_cost_node_dollars_total since start.
//  - With `collectors.cost.kubernetes` (this node's running pods, their requests from the pod
//    specs, their usage from the container collector's series in the store):
//    container_cpu_allocation, container_memory_allocation_bytes and container_gpu_allocation
//    (max(request, usage)), kube_pod_container_resource_requests, vigil_cost_hourly and
//    vigil_cost_dollars_total per container and resource, the node's idle cost
//    (vigil_cost_idle_hourly, vigil_cost_idle_dollars_total: capacity minus allocation), and
//    right-sizing (vigil_cost_rightsizing_{cpu_cores,memory_bytes,saving_hourly}) from the
//    usage over the store's retention.

#include "vigil/collector.h"

namespace vigil::collectors {

Result<CollectorPtr> makeCostCollector(const CollectorSettings& settings, const HostPaths& paths);

}  // namespace vigil::collectors
