// The cost collector's arithmetic against hand-computed cases on the recorded /proc of
// tests/fixtures/node (2 vCPUs, MemTotal 15666184 kB = 14.9404106 GiB).
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>

#include "agent/collectors/cost/cost_collector.h"
#include "tests/support/collect.h"

using namespace vigil;
using namespace std::chrono_literals;
using vigil::test::flattenBatch;

namespace {

constexpr double kRamGiB = 15666184.0 * 1024 / (1024.0 * 1024 * 1024);

// A cost collector with these prices over the recorded /proc.
CollectorPtr costCollector(const CostPricing& pricing) {
  CollectorSettings settings;
  settings.pricing = pricing;
  HostPaths paths;
  paths.procfs = VIGIL_FIXTURES "/node/proc";
  auto collector = collectors::makeCostCollector(settings, paths);
  REQUIRE(collector);
  return std::move(*collector);
}

// One collection; each family's value by name.
std::map<std::string, double> collectCost(const CostPricing& pricing) {
  MetricBatch batch;
  REQUIRE(costCollector(pricing)->collect(CollectContext{}, batch).isOk());
  std::map<std::string, double> out;
  for (const auto& f : batch.families()) {
    for (const auto& s : f.samples) {
      out[f.name] = s.value;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("Cost: node prices and total, on demand, spot, discount and GPUs", "[cost]") {
  ::setenv("NODE_NAME", "node-a", 1);
  // OpenCost's defaults: $0.031611 per vCPU-hour, $0.004237 per GiB-hour.
  auto m = collectCost(CostPricing{});
  CHECK(m["node_cpu_hourly_cost"] == Approx(0.031611));
  CHECK(m["node_ram_hourly_cost"] == Approx(0.004237));
  CHECK(m["node_total_hourly_cost"] == Approx(2 * 0.031611 + kRamGiB * 0.004237));
  CHECK(m["kubecost_node_is_spot"] == 0);
  CHECK(m["node_gpu_count"] == 0);

  // On demand with one GPU and a 20% discount off every price.
  CostPricing p;
  p.cpu_hourly = 0.05;
  p.ram_gib_hourly = 0.01;
  p.gpu_hourly = 1.0;
  p.gpus = 1;
  p.discount = 0.2;
  m = collectCost(p);
  CHECK(m["node_cpu_hourly_cost"] == Approx(0.04));
  CHECK(m["node_ram_hourly_cost"] == Approx(0.008));
  CHECK(m["node_gpu_hourly_cost"] == Approx(0.8));
  CHECK(m["node_total_hourly_cost"] == Approx(0.08 + kRamGiB * 0.008 + 0.8));  // 0.9995233

  // A spot node is priced at the spot prices.
  p = CostPricing{};
  p.spot = true;
  p.spot_cpu_hourly = 0.01;
  p.spot_ram_gib_hourly = 0.002;
  m = collectCost(p);
  CHECK(m["kubecost_node_is_spot"] == 1);
  CHECK(m["node_cpu_hourly_cost"] == Approx(0.01));
  CHECK(m["node_total_hourly_cost"] == Approx(0.02 + kRamGiB * 0.002));
}

TEST_CASE("Cost: OpenCost's labels, and the cost accumulated between cycles", "[cost]") {
  ::setenv("NODE_NAME", "node-a", 1);
  CostPricing p;
  p.instance_type = "m5.large";
  p.region = "eu-west-1";
  p.provider_id = "aws:///eu-west-1a/i-0abc";
  auto collector = costCollector(p);
  auto collectAt = [&](int64_t t) {
    MetricBatch batch;
    CollectContext ctx;
    ctx.timestamp_ms = t;
    REQUIRE(collector->collect(ctx, batch).isOk());
    return flattenBatch(batch);
  };
  const int64_t t0 = 1'700'000'000'000;
  auto flat = collectAt(t0);
  const std::string labels =
      "|instance=node-a|instance_type=m5.large|node=node-a|provider_id=aws:///eu-west-1a/i-0abc"
      "|region=eu-west-1";
  bool found = false;
  for (const auto& [key, v] : flat) {
    found = found || (key.starts_with("node_total_hourly_cost|arch=") && key.ends_with(labels));
  }
  CHECK(found);
  CHECK(flat["vigil_cost_node_dollars_total|node=node-a"] == 0);  // nothing elapsed yet
  // On a plain host there are no containers, so nothing is allocated and nothing is idle.
  CHECK(flat.count("vigil_cost_idle_hourly|node=node-a|resource=cpu") == 0);

  // 20 minutes, then 2 hours 10 minutes: 2.5 hours at the node's hourly cost.
  const double hourly = 2 * 0.031611 + kRamGiB * 0.004237;
  CHECK(collectAt(t0 + 20 * 60'000)["vigil_cost_node_dollars_total|node=node-a"] ==
        Approx(hourly / 3));
  CHECK(collectAt(t0 + 150 * 60'000)["vigil_cost_node_dollars_total|node=node-a"] ==
        Approx(hourly * 2.5));
  // Going spot would save 2 vCPUs and 14.94 GiB at the difference of the default prices.
  CHECK(flat["vigil_cost_spot_saving_hourly|node=node-a"] ==
        Approx(2 * (0.031611 - 0.006655) + kRamGiB * (0.004237 - 0.000892)));
}
