#include "cost_model.h"

#include <algorithm>
#include <cmath>

namespace vigil::cost {

namespace {

const std::string* labelOf(const NodeIdentity& node, std::string_view name) {
  auto it = std::lower_bound(node.labels.begin(), node.labels.end(), name,
                             [](const auto& l, std::string_view n) { return l.first < n; });
  return it != node.labels.end() && it->first == name ? &it->second : nullptr;
}

bool matches(const CostPricing::NodePrice& row, const NodeIdentity& node) {
  if (!row.region.empty() && !node.region.empty() && row.region != node.region) {
    return false;
  }
  if (row.id.empty()) {
    return !node.instance_type.empty() && row.instance_type == node.instance_type;
  }
  if (row.id_field == "metadata.name") {
    return row.id == node.name;
  }
  if (row.id_field == "spec.providerID") {
    return row.id == node.provider_id;
  }
  constexpr std::string_view kLabels = "metadata.labels.";
  if (row.id_field.starts_with(kLabels)) {
    const std::string* v = labelOf(node, std::string_view(row.id_field).substr(kLabels.size()));
    return v != nullptr && *v == row.id;
  }
  return false;
}

// OpenCost's fallbacks when a default price is missing.
double ratio(double price, double ram_price, double fallback) {
  const double r = price / ram_price;
  return std::isfinite(r) && r > 0 ? r : fallback;
}

}  // namespace

bool isSpot(const CostPricing& pricing, const NodeIdentity& node) {
  if (node.spot || pricing.spot) {
    return true;
  }
  if (!pricing.spot_label.empty()) {
    const std::string* v = labelOf(node, pricing.spot_label);
    return v != nullptr && *v == pricing.spot_label_value;
  }
  return false;
}

NodeRates nodeRates(const CostPricing& pricing, const NodeIdentity& node, const NodeShape& shape) {
  NodeRates r;
  r.spot = isSpot(pricing, node);
  r.source = "pricing";
  r.cpu = r.spot ? pricing.spot_cpu_hourly : pricing.cpu_hourly;
  r.ram_gib = r.spot ? pricing.spot_ram_gib_hourly : pricing.ram_gib_hourly;
  r.gpu = pricing.gpu_hourly;
  r.storage_gib = pricing.storage_gib_monthly / 730;  // OpenCost's hours per month

  const CostPricing::NodePrice* node_row = nullptr;
  const CostPricing::NodePrice* gpu_row = nullptr;
  for (const auto& row : pricing.node_prices) {
    const CostPricing::NodePrice*& slot = row.gpu ? gpu_row : node_row;
    if (slot == nullptr && matches(row, node)) {
      slot = &row;
    }
  }
  if (gpu_row != nullptr) {
    r.gpu = gpu_row->hourly;
  }
  if (node_row != nullptr) {
    // The whole node's price, split so that the ratios between the per-resource prices hold.
    // A GPU priced by its own row is not part of the node's price.
    const double cpu_to_ram = ratio(pricing.cpu_hourly, pricing.ram_gib_hourly, 10);
    const double gpu_to_ram = ratio(pricing.gpu_hourly, pricing.ram_gib_hourly, 100);
    const double gpus_in_price = gpu_row != nullptr ? 0 : shape.gpus;
    const double ram_multiple =
        gpus_in_price * gpu_to_ram + shape.cpus * cpu_to_ram + shape.ram_bytes / kGiB;
    if (ram_multiple > 0) {
      r.ram_gib = node_row->hourly / ram_multiple;
      r.cpu = r.ram_gib * cpu_to_ram;
      if (gpu_row == nullptr) {
        r.gpu = r.ram_gib * gpu_to_ram;
      }
      r.source = node_row->where;
    }
  } else if (gpu_row != nullptr) {
    r.source = gpu_row->where;
  }
  const double keep = 1 - std::clamp(pricing.discount, 0.0, 1.0);
  r.cpu *= keep;
  r.ram_gib *= keep;
  r.gpu *= keep;
  r.storage_gib *= keep;
  return r;
}

double spotSavingHourly(const CostPricing& pricing, const NodeIdentity& node,
                        const NodeShape& shape) {
  if (isSpot(pricing, node)) {
    return 0;
  }
  const double keep = 1 - std::clamp(pricing.discount, 0.0, 1.0);
  const double saving =
      shape.cpus * (pricing.cpu_hourly - pricing.spot_cpu_hourly) +
      shape.ram_bytes / kGiB * (pricing.ram_gib_hourly - pricing.spot_ram_gib_hourly);
  return std::max(0.0, saving * keep);
}

double allocation(double request, double usage) {
  const double req = request > 0 ? request : 0;  // false for NaN too
  const double used = usage > 0 ? usage : 0;
  return std::max(req, used);
}

double quantile(std::vector<double> values, double q) {
  if (values.empty()) {
    return std::nan("");
  }
  if (q < 0) return -INFINITY;
  if (q > 1) return INFINITY;
  std::sort(values.begin(), values.end());
  const double rank = q * static_cast<double>(values.size() - 1);
  const auto lower = static_cast<std::size_t>(std::floor(rank));
  const std::size_t upper = std::min(lower + 1, values.size() - 1);
  const double weight = rank - std::floor(rank);
  return values[lower] * (1 - weight) + values[upper] * weight;
}

std::optional<Recommendation> recommend(std::span<const double> cpu_rates,
                                        std::span<const double> working_set_bytes,
                                        const RightSizingOptions& options) {
  if (cpu_rates.size() < options.min_samples || working_set_bytes.size() < options.min_samples) {
    return std::nullopt;
  }
  const double p =
      quantile(std::vector<double>(cpu_rates.begin(), cpu_rates.end()), options.cpu_quantile);
  const double peak = *std::max_element(working_set_bytes.begin(), working_set_bytes.end());
  Recommendation r;
  r.cpu_cores = std::max(options.min_cpu_cores, p * (1 + options.headroom));
  r.memory_bytes = std::max(options.min_memory_bytes, peak * (1 + options.headroom));
  return r;
}

double rightSizingSavingHourly(double cpu_request, double memory_request, const Recommendation& r,
                               const NodeRates& rates) {
  return std::max(0.0, cpu_request - r.cpu_cores) * rates.cpu +
         std::max(0.0, memory_request - r.memory_bytes) / kGiB * rates.ram_gib;
}

double Ledger::charge(const std::string& key, double hourly, int64_t t_ms) {
  auto [it, inserted] = accounts_.try_emplace(key);
  Account& a = it->second;
  if (!inserted && t_ms > a.last_ms) {
    a.total += a.hourly * static_cast<double>(t_ms - a.last_ms) / 3'600'000.0;
  }
  if (inserted || t_ms > a.last_ms) {
    a.last_ms = t_ms;
  }
  a.hourly = std::isfinite(hourly) && hourly > 0 ? hourly : 0;
  a.charged = true;
  return a.total;
}

void Ledger::sweep() {
  std::erase_if(accounts_, [](const auto& kv) { return !kv.second.charged; });
  for (auto& [key, a] : accounts_) {
    a.charged = false;
  }
}

}  // namespace vigil::cost
