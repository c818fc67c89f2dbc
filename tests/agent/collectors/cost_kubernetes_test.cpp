// The cost collector with Kubernetes, against a fake API server on loopback that serves the
// recorded Node (tests/fixtures/kubernetes/node.json: a GKE spot node) and pod list (with
// requests), and a store holding the container collector's usage series: allocation is
// max(request, usage) per container of the running pods, the idle rest of the node, the
// costs at the node's spot prices, and right-sizing from the usage over the retention.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "agent/api/cost_api.h"
#include "agent/collectors/cost/cost_collector.h"
#include "tests/support/collect.h"
#include "tests/support/loopback_server.h"
#include "vigil/store.h"

using namespace vigil;
using namespace vigil::test;
using namespace std::chrono_literals;

namespace {

constexpr double kMiB = 1024.0 * 1024;
constexpr double kGiB = 1024 * kMiB;
constexpr double kNodeRamBytes = 15666184.0 * 1024;  // tests/fixtures/node/proc/meminfo
constexpr int64_t kNow = 1'750'000'000'000;

std::string fixture(const char* name) {
  std::ifstream in(std::string(VIGIL_FIXTURES "/kubernetes/") + name);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string label(const LabelSet& labels, const std::string& name) {
  for (const auto& l : labels) {
    if (l.name == name) {
      return l.value;
    }
  }
  return "";
}

// A fake API server with the recorded node and pods, and a cost collector pointed at it.
struct Cluster {
  LoopbackServer apiserver;
  CollectorPtr collector;

  Cluster() {
    const std::string node = fixture("node.json");
    std::string pods = fixture("pods.json");
    for (const char* port : {"@API_PORT@", "@WEB_PORT@"}) {
      for (auto at = pods.find(port); at != std::string::npos; at = pods.find(port)) {
        pods.replace(at, std::string_view(port).size(), "8080");
      }
    }
    apiserver.http.Get("/api/v1/nodes/node-a",
                       [node](const httplib::Request&, httplib::Response& res) {
                         res.set_content(node, "application/json");
                       });
    apiserver.http.Get("/api/v1/pods", [pods](const httplib::Request&, httplib::Response& res) {
      res.set_content(pods, "application/json");
    });
    apiserver.start();
    CollectorSettings settings;
    KubernetesSdConfig k;
    k.api_server = "http://127.0.0.1:" + std::to_string(apiserver.port);
    k.node_name = "node-a";
    settings.kubernetes = k;
    settings.pricing.region = "configured-region";  // the label wins
    HostPaths paths;
    paths.procfs = VIGIL_FIXTURES "/node/proc";
    auto made = collectors::makeCostCollector(settings, paths);
    REQUIRE(made);
    collector = std::move(*made);
  }

  MetricBatch collect(const Store* store, int64_t t) {
    MetricBatch batch;
    CollectContext ctx;
    ctx.deadline = std::chrono::steady_clock::now() + 4s;
    ctx.store = store;
    ctx.timestamp_ms = t;
    REQUIRE(collector->collect(ctx, batch).isOk());
    return batch;
  }
};

LabelSet containerSeries(const char* name, const char* pod, const char* container) {
  return {{"__name__", name}, {"container", container}, {"namespace", "shop"}, {"pod", pod}};
}

// "name|container|resource" (or "name|resource" for node series) -> value.
std::map<std::string, double> byContainer(const MetricBatch& batch) {
  std::map<std::string, double> out;
  for (const auto& f : batch.families()) {
    for (const auto& s : f.samples) {
      std::string key = f.name;
      for (const char* l : {"container", "resource"}) {
        if (std::string v = label(s.labels, l); !v.empty()) {
          key += "|" + v;
        }
      }
      out[key] = s.value;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("Cost with Kubernetes: the node's labels set its class and spot prices",
          "[kubernetes][cost][integration]") {
  Cluster cluster;
  const MetricBatch batch = cluster.collect(nullptr, kNow);
  LabelSet labels;
  double cpu_price = 0;
  double spot = 0;
  for (const auto& f : batch.families()) {
    if (f.name == "node_cpu_hourly_cost") {
      labels = f.samples.at(0).labels;
      cpu_price = f.samples.at(0).value;
    }
    if (f.name == "kubecost_node_is_spot") {
      spot = f.samples.at(0).value;
    }
  }
  CHECK(spot == 1);
  CHECK(cpu_price == Approx(CostPricing{}.spot_cpu_hourly));  // OpenCost's spot default
  CHECK(label(labels, "node") == "node-a");
  CHECK(label(labels, "instance_type") == "e2-standard-4");
  CHECK(label(labels, "region") == "us-central1");
  CHECK(label(labels, "provider_id") ==
        "gce://shop-prod/us-central1-a/gke-shop-spot-pool-1a2b3c4d-x9z8");
  // Already spot: nothing to save by going spot.
  CHECK(byContainer(batch)["vigil_cost_spot_saving_hourly"] == 0);
}

TEST_CASE("Cost with Kubernetes: allocation is max(request, usage), the rest of the node is idle",
          "[kubernetes][cost][integration]") {
  const CostPricing prices;  // OpenCost's defaults; the node is spot
  const double cpu_price = prices.spot_cpu_hourly;
  const double ram_price = prices.spot_ram_gib_hourly;
  auto store = makeMemStore();
  // The api container uses 0.5 cores (above its 250m request) and 128 MiB (below its 256 MiB):
  // 20 samples, 10 s apart, up to now. The log shipper uses 0.01 cores (below 50m) and 100 MiB
  // (above 64 MiB). Redis has no usage series: its requests count. The web container requests
  // nothing and has no usage. The succeeded and pending pods and the init container hold
  // nothing.
  const char* api = "api-7d9f8b6c5-x2k4p";
  for (int i = 0; i < 20; ++i) {
    const int64_t t = kNow - (19 - i) * 10'000;
    REQUIRE(store
                ->append(containerSeries("container_cpu_usage_seconds_total", api, "api"), t,
                         100 + 5.0 * i)
                .isOk());
    REQUIRE(store
                ->append(containerSeries("container_memory_working_set_bytes", api, "api"), t,
                         128 * kMiB)
                .isOk());
    REQUIRE(store
                ->append(containerSeries("container_cpu_usage_seconds_total", api, "log-shipper"),
                         t, 7 + 0.1 * i)
                .isOk());
    REQUIRE(store
                ->append(containerSeries("container_memory_working_set_bytes", api, "log-shipper"),
                         t, 100 * kMiB)
                .isOk());
  }
  // A pod-level series (container="") is not a container.
  REQUIRE(
      store->append(containerSeries("container_memory_working_set_bytes", api, ""), kNow, 64 * kGiB)
          .isOk());

  Cluster cluster;
  auto m = byContainer(cluster.collect(store.get(), kNow));
  CHECK(m["container_cpu_allocation|api"] == Approx(0.5));
  CHECK(m["container_memory_allocation_bytes|api"] == Approx(256 * kMiB));
  CHECK(m["container_cpu_allocation|log-shipper"] == Approx(0.05));
  CHECK(m["container_memory_allocation_bytes|log-shipper"] == Approx(100 * kMiB));
  CHECK(m["container_cpu_allocation|redis"] == Approx(0.5));
  CHECK(m["container_memory_allocation_bytes|redis"] == Approx(1 * kGiB));
  CHECK(m["container_cpu_allocation|web"] == 0);
  for (const char* absent : {"backup", "worker", "migrate"}) {
    CHECK(m.count(std::string("container_cpu_allocation|") + absent) == 0);
  }
  CHECK(m["kube_pod_container_resource_requests|api|cpu"] == Approx(0.25));
  CHECK(m["kube_pod_container_resource_requests|redis|memory"] == Approx(kGiB));
  CHECK(m.count("kube_pod_container_resource_requests|web|cpu") == 0);

  CHECK(m["vigil_cost_hourly|api|cpu"] == Approx(0.5 * cpu_price));
  CHECK(m["vigil_cost_hourly|api|memory"] == Approx(0.25 * ram_price));
  CHECK(m["vigil_cost_hourly|redis|memory"] == Approx(1 * ram_price));
  // Redis reserves 10 GiB of local storage, at $0.04 per GiB-month (730 hours).
  CHECK(m["kube_pod_container_resource_requests|redis|ephemeral_storage"] == 10 * kGiB);
  CHECK(m["vigil_cost_hourly|redis|storage"] == Approx(10 * 0.04 / 730));
  CHECK(m.count("vigil_cost_hourly|api|storage") == 0);
  const double cpu_allocated = 0.5 + 0.05 + 0.5;
  const double memory_allocated = 256 * kMiB + 100 * kMiB + kGiB;
  CHECK(m["vigil_cost_idle_hourly|cpu"] == Approx((2 - cpu_allocated) * cpu_price));
  CHECK(m["vigil_cost_idle_hourly|memory"] ==
        Approx((kNodeRamBytes - memory_allocated) / kGiB * ram_price));
  CHECK(m.count("vigil_cost_idle_hourly|gpu") == 0);  // the node has no GPUs

  // Right-sizing from the 20 samples: the api container's p95 CPU is 0.5 cores and its peak
  // working set 128 MiB, each plus 15%; lowering its memory request from 256 MiB to that saves
  // the difference, raising its CPU request saves nothing.
  CHECK(m["vigil_cost_rightsizing_cpu_cores|api"] == Approx(0.5 * 1.15));
  CHECK(m["vigil_cost_rightsizing_memory_bytes|api"] == Approx(128 * kMiB * 1.15));
  CHECK(m["vigil_cost_rightsizing_saving_hourly|api"] ==
        Approx((256 - 128 * 1.15) * kMiB / kGiB * ram_price));
  CHECK(m.count("vigil_cost_rightsizing_cpu_cores|redis") == 0);  // no usage, no advice

  // 90 minutes later, with no usage since (so the requests count again), the counters have
  // billed the 90 minutes at the hourly cost in force over them.
  m = byContainer(cluster.collect(store.get(), kNow + 90 * 60'000));
  CHECK(m["vigil_cost_dollars_total|api|cpu"] == Approx(1.5 * 0.5 * cpu_price));
  CHECK(m["vigil_cost_dollars_total|redis|memory"] == Approx(1.5 * ram_price));
  CHECK(m["vigil_cost_idle_dollars_total|cpu"] == Approx(1.5 * (2 - cpu_allocated) * cpu_price));
  CHECK(m["container_cpu_allocation|api"] == Approx(0.25));
}

TEST_CASE("Cost with Kubernetes: /api/v1/cost sums the counters over the last hour and day",
          "[kubernetes][cost][integration]") {
  const CostPricing prices;  // the node is spot
  auto store = makeMemStore();
  const auto source = store->registerSource("collector/cost");
  Cluster cluster;
  // Three cycles, at 0, 30 and 90 minutes, with no usage in the store: every container is
  // charged its requests. api: 250m + 256 MiB, log-shipper: 50m + 64 MiB, redis: 500m + 1 GiB.
  for (int64_t minutes : {0, 30, 90}) {
    const int64_t t = kNow + minutes * 60'000;
    store->appendBatch(source, t, cluster.collect(store.get(), t));
  }
  const double api_hourly = 0.25 * prices.spot_cpu_hourly + 0.25 * prices.spot_ram_gib_hourly;
  const double redis_hourly =
      0.5 * prices.spot_cpu_hourly + 1 * prices.spot_ram_gib_hourly + 10 * 0.04 / 730;
  const double shipper_hourly =
      0.05 * prices.spot_cpu_hourly + 64 * kMiB / kGiB * prices.spot_ram_gib_hourly;
  const double node_hourly =
      2 * prices.spot_cpu_hourly + kNodeRamBytes / kGiB * prices.spot_ram_gib_hourly;

  auto summary = nlohmann::json::parse(
      costSummaryJson(*store, kNow + 90 * 60'000, {3600'000, 24 * 3600'000}))["data"]["windows"];
  REQUIRE(summary.size() == 2);
  // The last hour: from the 30-minute sample to the 90-minute one.
  const auto& hour = summary[0];
  CHECK(hour["window"] == "1h");
  CHECK(hour["coveredSeconds"] == 3600);
  CHECK(hour["node"] == "node-a");
  CHECK(hour["nodeCost"].get<double>() == Approx(node_hourly));
  REQUIRE(hour["namespaces"].size() == 2);  // shop (api, web) and cache (redis)
  double allocated = 0;
  for (const auto& ns : hour["namespaces"]) {
    for (const auto& pod : ns["pods"]) {
      allocated += pod["total"].get<double>();
      if (pod["pod"] == "api-7d9f8b6c5-x2k4p") {
        CHECK(pod["total"].get<double>() == Approx(api_hourly + shipper_hourly));
        CHECK(pod["cpu"].get<double>() == Approx(0.3 * prices.spot_cpu_hourly));
      }
      if (pod["pod"] == "redis-0") {
        CHECK(pod["total"].get<double>() == Approx(redis_hourly));
      }
    }
  }
  CHECK(hour["allocated"]["total"].get<double>() == Approx(allocated));
  // The node's CPU and memory are either allocated or idle (storage is priced on its own).
  CHECK(hour["allocated"]["total"].get<double>() - hour["allocated"]["storage"].get<double>() +
            hour["idle"]["total"].get<double>() ==
        Approx(node_hourly));
  CHECK(hour["allocated"]["storage"].get<double>() == Approx(10 * 0.04 / 730));
  // The last day: only 90 minutes of it were seen.
  const auto& day = summary[1];
  CHECK(day["coveredSeconds"] == 5400);
  CHECK(day["nodeCost"].get<double>() == Approx(1.5 * node_hourly));
  CHECK(day["allocated"]["total"].get<double>() ==
        Approx(1.5 * (api_hourly + shipper_hourly + redis_hourly)));
}
