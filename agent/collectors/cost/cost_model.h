#pragma once
// The arithmetic of cost, apart from where its inputs come from (so that it can be checked
// against hand-computed cases): OpenCost's model of a node's price per vCPU, GiB and GPU, of a
// container's allocation as max(request, usage), and vigil's right-sizing recommendation.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "vigil/config.h"

namespace vigil::cost {

inline constexpr double kGiB = 1024.0 * 1024 * 1024;

/// What the node has to sell.
struct NodeShape {
  double cpus = 0;
  double ram_bytes = 0;
  double gpus = 0;
};

/// What identifies the node to a price: its name, and what its Node object says.
struct NodeIdentity {
  std::string name;
  std::string provider_id;
  std::string instance_type;
  std::string region;
  bool spot = false;  // the well-known spot/preemptible labels say so
  std::vector<std::pair<std::string, std::string>> labels;
};

/// The node's prices, the discount applied.
struct NodeRates {
  double cpu = 0;          // $ per vCPU-hour
  double ram_gib = 0;      // $ per GiB-hour
  double gpu = 0;          // $ per GPU-hour
  double storage_gib = 0;  // $ per GiB-hour
  bool spot = false;
  std::string source;  // "pricing" or the price-file row (FILE:LINE) that priced the node

  double total(const NodeShape& s) const {
    return s.cpus * cpu + s.ram_bytes / kGiB * ram_gib + s.gpus * gpu;
  }
};

/// Spot by the node's labels, by the configuration, or by the pricing's spot_label.
bool isSpot(const CostPricing& pricing, const NodeIdentity& node);

/// The node's rates: from the first price-file row that matches the node (its whole-node
/// price split into CPU, RAM and GPU in the ratio of the on-demand per-resource prices, as
/// OpenCost's GetNodeCost splits a cloud price), else from the per-resource prices (the spot
/// ones for a spot node).
NodeRates nodeRates(const CostPricing& pricing, const NodeIdentity& node, const NodeShape& shape);

/// What running the node as spot would save per hour at the configured per-resource prices;
/// 0 for a node that is spot already.
double spotSavingHourly(const CostPricing& pricing, const NodeIdentity& node,
                        const NodeShape& shape);

/// OpenCost's allocation: the greater of request and usage, a NaN or negative counting as 0.
double allocation(double request, double usage);

/// Prometheus's quantile (as quantile_over_time computes it: linear between closest ranks).
/// NaN for no values.
double quantile(std::vector<double> values, double q);

struct RightSizingOptions {
  double cpu_quantile = 0.95;  // of the per-interval CPU usage rates
  double headroom = 0.15;      // added to both, as VPA's safety margin
  double min_cpu_cores = 0.01;
  double min_memory_bytes = 16.0 * 1024 * 1024;
  std::size_t min_samples = 10;  // fewer: no recommendation yet
};

struct Recommendation {
  double cpu_cores = 0;
  double memory_bytes = 0;
};

/// VPA-style requests from a container's usage over the retention window: the cpu_quantile of
/// its CPU usage rates and its peak working set, each with headroom; nullopt with too few
/// samples to say.
std::optional<Recommendation> recommend(std::span<const double> cpu_rates,
                                        std::span<const double> working_set_bytes,
                                        const RightSizingOptions& options = {});

/// The hourly saving of lowering the requests to `r` (raising them saves nothing).
double rightSizingSavingHourly(double cpu_request, double memory_request, const Recommendation& r,
                               const NodeRates& rates);

/// Cost accumulated since start, per key: each charge(key, hourly, t) bills the interval since
/// the key's previous charge at the hourly cost given then (the cost in force during it), so
/// that partial hours count exactly and a price change applies from when it was seen.
class Ledger {
 public:
  /// Returns the key's total after billing up to `t_ms`. The first charge of a key starts it
  /// at 0.
  double charge(const std::string& key, double hourly, int64_t t_ms);
  /// Forgets keys not charged since the last sweep (pods that are gone).
  void sweep();

 private:
  struct Account {
    double total = 0;
    double hourly = 0;
    int64_t last_ms = 0;
    bool charged = false;  // since the last sweep
  };
  std::map<std::string, Account> accounts_;
};

}  // namespace vigil::cost
