// The cost arithmetic against hand-computed cases: a whole-node price split into CPU, RAM and
// GPU in the default ratio, spot and discounts, max(request, usage), the right-sizing
// recommendation from a known usage distribution, and partial hours in the accumulated cost.
#include <catch2/catch.hpp>
#include <cmath>

#include "agent/collectors/cost/cost_model.h"

using namespace vigil;
using namespace vigil::cost;

namespace {

constexpr double kGiBytes = 1024.0 * 1024 * 1024;

CostPricing::NodePrice row(std::string field, std::string id, std::string type, double hourly,
                           bool gpu = false, std::string region = "") {
  CostPricing::NodePrice r;
  r.id_field = std::move(field);
  r.id = std::move(id);
  r.instance_type = std::move(type);
  r.hourly = hourly;
  r.gpu = gpu;
  r.region = std::move(region);
  r.where = "prices.csv:2";
  return r;
}

}  // namespace

TEST_CASE("Cost model: a whole-node price is split in the ratio of the default prices", "[cost]") {
  // 4 vCPUs and 16 GiB at $0.20 an hour. OpenCost's defaults make a vCPU cost
  // 0.031611 / 0.004237 = 7.4607 GiB, so the node is 4 * 7.4607 + 16 = 45.8428 GiB-equivalents:
  // RAM $0.2 / 45.8428 = 0.0043627 per GiB-hour, CPU 7.4607 times that = 0.0325491.
  CostPricing p;
  p.node_prices = {row("spec.providerID", "aws:///eu-west-1a/i-0abc", "", 0.20)};
  NodeIdentity node{"node-a", "aws:///eu-west-1a/i-0abc", "m5.xlarge", "eu-west-1", false, {}};
  const NodeShape shape{4, 16 * kGiBytes, 0};
  NodeRates r = nodeRates(p, node, shape);
  CHECK(r.ram_gib == Approx(0.0043627340));
  CHECK(r.cpu == Approx(0.0325490640));
  CHECK(r.total(shape) == Approx(0.20));
  CHECK(r.source == "prices.csv:2");

  // With a GPU in the node's price: a GPU is 0.95 / 0.004237 = 224.21 GiB-equivalents.
  const NodeShape with_gpu{4, 16 * kGiBytes, 1};
  p.node_prices = {row("spec.providerID", "aws:///eu-west-1a/i-0abc", "", 1.0)};
  r = nodeRates(p, node, with_gpu);
  CHECK(r.ram_gib == Approx(0.0037029074));
  CHECK(r.cpu == Approx(0.0276262939));
  CHECK(r.gpu == Approx(0.8302483054));
  CHECK(r.total(with_gpu) == Approx(1.0));

  // A GPU row prices each GPU itself; the node's row is then split between CPU and RAM only.
  p.node_prices.push_back(row("", "", "m5.xlarge", 0.5, /*gpu=*/true));
  r = nodeRates(p, node, with_gpu);
  CHECK(r.gpu == Approx(0.5));
  CHECK(r.total(with_gpu) == Approx(1.5));

  // A 10% discount comes off every price.
  p.discount = 0.1;
  CHECK(nodeRates(p, node, with_gpu).total(with_gpu) == Approx(1.35));
}

TEST_CASE("Cost model: which price-file row matches the node", "[cost]") {
  NodeIdentity node{
      "node-a",        "gce://p/us-central1-a/vm-1",
      "e2-standard-4", "us-central1",
      false,           {{"node.kubernetes.io/instance-type", "e2-standard-4"}, {"pool", "batch"}}};
  const NodeShape shape{4, 16 * kGiBytes, 0};
  auto priced = [&](std::vector<CostPricing::NodePrice> rows) {
    CostPricing p;
    p.node_prices = std::move(rows);
    return nodeRates(p, node, shape).total(shape);
  };
  const double per_resource = nodeRates(CostPricing{}, node, shape).total(shape);
  CHECK(per_resource == Approx(4 * 0.031611 + 16 * 0.004237));
  CHECK(priced({row("metadata.name", "node-a", "", 0.3)}) == Approx(0.3));
  CHECK(priced({row("metadata.name", "node-b", "", 0.3)}) == Approx(per_resource));
  CHECK(priced({row("metadata.labels.pool", "batch", "", 0.4)}) == Approx(0.4));
  CHECK(priced({row("", "", "e2-standard-4", 0.5, false, "us-central1")}) == Approx(0.5));
  CHECK(priced({row("", "", "e2-standard-4", 0.5, false, "europe-west1")}) == Approx(per_resource));
  // The first matching row wins.
  CHECK(priced({row("metadata.name", "other", "", 0.1), row("", "", "e2-standard-4", 0.2),
                row("metadata.name", "node-a", "", 0.3)}) == Approx(0.2));
}

TEST_CASE("Cost model: spot prices, spot by label, and the saving of going spot", "[cost]") {
  CostPricing p;  // OpenCost's defaults
  NodeIdentity node{"node-a", "", "", "", false, {{"lifecycle", "preemptible"}}};
  const NodeShape shape{2, 8 * kGiBytes, 0};
  NodeRates r = nodeRates(p, node, shape);
  CHECK_FALSE(r.spot);
  CHECK(r.total(shape) == Approx(2 * 0.031611 + 8 * 0.004237));
  CHECK(r.storage_gib == Approx(0.04 / 730));  // $0.04 per GiB-month
  // On demand -> spot: 2 * (0.031611 - 0.006655) + 8 * (0.004237 - 0.000892) = 0.076672.
  CHECK(spotSavingHourly(p, node, shape) == Approx(0.076672));

  p.spot_label = "lifecycle";
  p.spot_label_value = "preemptible";
  r = nodeRates(p, node, shape);
  CHECK(r.spot);
  CHECK(r.total(shape) == Approx(2 * 0.006655 + 8 * 0.000892));
  CHECK(spotSavingHourly(p, node, shape) == 0);

  node.labels.clear();
  node.spot = true;  // by a well-known label
  CHECK(nodeRates(CostPricing{}, node, shape).spot);
}

TEST_CASE("Cost model: allocation is the greater of request and usage", "[cost]") {
  CHECK(allocation(0.25, 0.5) == 0.5);
  CHECK(allocation(0.25, 0.1) == 0.25);
  CHECK(allocation(0, 0.1) == 0.1);      // no request: the usage
  CHECK(allocation(0.25, NAN) == 0.25);  // no usage known: the request
  CHECK(allocation(NAN, NAN) == 0);
  CHECK(allocation(-1, 0.2) == 0.2);
}

TEST_CASE("Cost model: right-sizing from a known usage distribution", "[cost]") {
  // CPU rates 0.01, 0.02, ..., 1.00 cores: the 95th percentile is at rank 0.95 * 99 = 94.05,
  // between 0.95 and 0.96, so 0.9505; plus 15% headroom 1.093075. Peak working set 500 MiB.
  std::vector<double> cpu;
  std::vector<double> memory;
  for (int i = 1; i <= 100; ++i) {
    cpu.push_back(i / 100.0);
    memory.push_back((i == 50 ? 500 : 200) * 1024.0 * 1024);
  }
  CHECK(quantile(cpu, 0.95) == Approx(0.9505));
  CHECK(quantile(cpu, 0.5) == Approx(0.505));
  CHECK(std::isnan(quantile({}, 0.5)));
  auto r = recommend(cpu, memory);
  REQUIRE(r);
  CHECK(r->cpu_cores == Approx(1.093075));
  CHECK(r->memory_bytes == Approx(500 * 1024.0 * 1024 * 1.15));

  // A request of 2 cores and 1 GiB, at $0.04 per vCPU-hour and $0.005 per GiB-hour: lowering
  // it saves (2 - 1.093075) * 0.04 + (1 GiB - 575 MiB) / 1 GiB * 0.005 = 0.0362770 + 0.0021924.
  NodeRates rates;
  rates.cpu = 0.04;
  rates.ram_gib = 0.005;
  CHECK(rightSizingSavingHourly(2, kGiBytes, *r, rates) ==
        Approx((2 - 1.093075) * 0.04 + (1024 - 575) / 1024.0 * 0.005));
  // Under-provisioned: nothing to save.
  CHECK(rightSizingSavingHourly(0.5, 100 * 1024.0 * 1024, *r, rates) == 0);

  // Too little history: no advice, and the minimums hold for an idle container.
  CHECK_FALSE(recommend(std::vector<double>(5, 0.1), std::vector<double>(5, 1e6)));
  auto idle = recommend(std::vector<double>(20, 0.0), std::vector<double>(20, 1024.0));
  REQUIRE(idle);
  CHECK(idle->cpu_cores == Approx(0.01));
  CHECK(idle->memory_bytes == Approx(16 * 1024.0 * 1024));
}

TEST_CASE("Cost model: partial hours at the cost in force during them", "[cost]") {
  Ledger ledger;
  const int64_t t0 = 1'700'000'000'000;
  const int64_t minute = 60'000;
  CHECK(ledger.charge("pod", 2.0, t0) == 0);                          // starts at 0
  CHECK(ledger.charge("pod", 4.0, t0 + 30 * minute) == Approx(1.0));  // 30 min at $2/h
  CHECK(ledger.charge("pod", 4.0, t0 + 45 * minute) == Approx(2.0));  // + 15 min at $4/h
  CHECK(ledger.charge("pod", 4.0, t0 + 45 * minute) == Approx(2.0));  // no time, no cost
  CHECK(ledger.charge("other", 1.0, t0 + 45 * minute) == 0);
  ledger.sweep();
  // A key not charged between two sweeps (a pod that is gone) is forgotten and starts over.
  CHECK(ledger.charge("pod", 4.0, t0 + 105 * minute) == Approx(6.0));  // + 1 h at $4/h
  ledger.sweep();
  CHECK(ledger.charge("other", 1.0, t0 + 200 * minute) == 0);
}
