// A node collector's cycles after its first allocate nothing: it runs every second for months,
// and what it reads keeps its shape from one cycle to the next (the same lines, devices and
// fields), so the names, help texts, label sets and buffers it made once are kept and reused.
// An allocation a cycle is a cache miss or two and a lock in malloc, paid on every scrape.
// Allocations are counted by replacing the global operator new in this test executable only
// (tests/support/count_allocations.cpp).
#include <catch2/catch.hpp>

#include <chrono>
#include <string>

#include "tests/support/collect.h"
#include "tests/support/count_allocations.h"
#include "vigil/collector.h"
#include "vigil/metric.h"

using namespace vigil;

TEST_CASE("Node collectors: a cycle like the last allocates nothing",
          "[agent][collectors][alloc]") {
  const HostPaths paths = test::nodeFixturePaths();
  for (const char* name : test::kFixtureNodeCollectors) {
    INFO("collector " << name);
    auto collector = test::makeBuiltinCollector(name, paths);
    // As the scheduler runs it: the batch of the cycle before recycled into the next one.
    MetricBatch batch;
    const CollectContext ctx{std::chrono::steady_clock::now() + std::chrono::seconds(30), &paths};
    for (int cycle = 0; cycle < 3; ++cycle) {
      batch.recycle();
      REQUIRE(collector->collect(ctx, batch).isOk());
      batch.sealLayout();
    }
    const std::size_t series = batch.seriesCount();
    batch.recycle();
    const std::size_t before = test::allocationsSoFar();
    const Status status = collector->collect(ctx, batch);
    const std::size_t allocations = test::allocationsSoFar() - before;
    REQUIRE(status.isOk());
    REQUIRE(batch.seriesCount() == series);
    REQUIRE(series > 0);
    CHECK(allocations == 0);
  }
}
