// Range queries allocate per series, never per sample: the inner loops (windows, window
// functions, aggregation, vector matching, collecting the steps) reuse their memory from step to
// step. Allocations are counted by replacing the global operator new in this test executable
// only (tests/support/count_allocations.cpp).
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "tests/support/count_allocations.h"
#include "vigil/rules/promql_engine.h"
#include "vigil/rules/promql_parser.h"
#include "vigil/store.h"

using namespace vigil;

TEST_CASE("PromQL range queries: allocations per series, not per sample", "[promql][alloc]") {
  // 1,000 counters and 1,000 gauges on 50 instances, 70 minutes at 15 s; the queries cover
  // the last hour at a 15 s step (241 steps).
  auto store = makeMemStore();
  constexpr int kSeries = 1000;
  constexpr int kSamples = 280;
  constexpr int64_t kStepMs = 15000;
  for (int i = 0; i < kSeries; ++i) {
    const std::string instance = "node-" + std::to_string(i % 50);
    const std::string device = "dev" + std::to_string(i / 50);
    const LabelSet counter{
        {"__name__", "requests_total"}, {"device", device}, {"instance", instance}};
    const LabelSet gauge{{"__name__", "free_bytes"}, {"device", device}, {"instance", instance}};
    for (int k = 0; k < kSamples; ++k) {
      REQUIRE(store->append(counter, k * kStepMs, k * (1.5 + i % 7)).isOk());
      REQUIRE(store->append(gauge, k * kStepMs, 1e9 - k * 1000.0 * (i % 11)).isOk());
    }
  }
  promql::Engine engine(*store);
  const int64_t end = (kSamples - 1) * kStepMs;
  const int64_t start = end - 3600 * 1000;
  const std::size_t steps = (end - start) / kStepMs + 1;

  // Each query with the number of series it reads.
  const std::vector<std::pair<std::string, int>> queries = {
      {"rate(requests_total[5m])", kSeries},
      {"sum by (instance) (rate(requests_total[5m]))", kSeries},
      {"max_over_time(free_bytes[5m])", kSeries},
      {"predict_linear(free_bytes[5m], 4 * 3600) < 1e12", kSeries},
      {"free_bytes / on (instance, device) requests_total", 2 * kSeries},
      {"free_bytes / ignoring (device) group_left requests_total{device=\"dev0\"}",
       kSeries + kSeries / 20},
      {"100 * (1 - avg by (instance) (rate(requests_total[5m]) / 10))", kSeries},
      {"free_bytes > 0 and requests_total > 0", 2 * kSeries},
  };
  for (const auto& [query, series_read] : queries) {
    auto parsed = promql::parse(query);
    REQUIRE(parsed.expr);
    const std::size_t before = test::allocationsSoFar();
    auto result = engine.range(*parsed.expr, start, end, kStepMs);
    const std::size_t allocations = test::allocationsSoFar() - before;
    REQUIRE(result.isOk());
    REQUIRE_FALSE(result->empty());
    // Every selector reads its series (labels and samples: a few allocations each) and every
    // output series collects its points; nothing may grow with the steps × series.
    const double per_point =
        static_cast<double>(allocations) / (static_cast<double>(series_read) * steps);
    INFO(query << ": " << allocations << " allocations, " << per_point << " per series and step");
    CHECK(per_point < 0.05);
  }
}
