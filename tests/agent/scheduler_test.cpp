// The collector scheduler hands a collector back a batch it published earlier, once nothing
// reads it any more, so that collectors whose output keeps its shape (scrapes) overwrite values
// instead of rebuilding label sets; collectors that never take it are seldom offered one.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>

#include "agent/core/scheduler.h"

using namespace vigil;
using namespace std::chrono_literals;

namespace {

// Counts the spares it is offered; takes them (moving their samples into its batch) or not.
class SpareCounter : public Collector {
 public:
  SpareCounter(std::string metric, bool take, std::atomic<int>& cycles, std::atomic<int>& offered,
               std::atomic<int>& reused)
      : metric_(std::move(metric)),
        take_(take),
        cycles_(cycles),
        offered_(offered),
        reused_(reused) {}
  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    ++cycles_;
    if (ctx.spare != nullptr) {
      ++offered_;
      if (take_) {
        reused_ += ctx.spare->layout() == 42 ? 1 : 0;  // a batch of its own, as published
        out = std::move(*ctx.spare);
        out.mutableFamilies()[0].samples[0].value = cycles_;
        return Status::ok();
      }
    }
    out.addSingle(metric_, "A value.", MetricType::kGauge, cycles_);
    out.setLayout(42);
    return Status::ok();
  }

 private:
  std::string metric_;
  bool take_;
  std::atomic<int>& cycles_;
  std::atomic<int>& offered_;
  std::atomic<int>& reused_;
};

CollectorScheduler::Entry entry(const std::string& name, CollectorPtr collector) {
  CollectorScheduler::Entry e;
  e.settings.name = name;
  e.settings.enabled = true;
  e.settings.interval = 50ms;
  e.settings.timeout = 50ms;
  e.collector = std::move(collector);
  return e;
}

}  // namespace

TEST_CASE("Scheduler: a collector is handed back its published batches to reuse",
          "[agent][scheduler]") {
  auto store = makeMemStore();
  SnapshotRegistry snapshots;
  SelfMetrics self_metrics("test", "test");
  std::atomic<int> taker_cycles{0}, taker_offered{0}, taker_reused{0};
  std::atomic<int> other_cycles{0}, other_offered{0}, other_reused{0};
  std::vector<CollectorScheduler::Entry> entries;
  entries.push_back(entry("taker", std::make_unique<SpareCounter>("taker_value", true, taker_cycles,
                                                                  taker_offered, taker_reused)));
  entries.push_back(
      entry("other", std::make_unique<SpareCounter>("other_value", false, other_cycles,
                                                    other_offered, other_reused)));
  CollectorScheduler scheduler(std::move(entries), HostPaths{}, *store, snapshots, self_metrics);
  scheduler.start();
  while (taker_cycles.load() < 40 || other_cycles.load() < 40) {
    std::this_thread::sleep_for(10ms);
  }
  scheduler.stop(1000ms);
  // From the third cycle on, every cycle of the taker gets the batch of two cycles before.
  CHECK(taker_offered.load() >= taker_cycles.load() - 3);
  CHECK(taker_reused.load() == taker_offered.load());
  // The other is offered three, then one every 16 cycles.
  CHECK(other_offered.load() <= 3 + other_cycles.load() / 16 + 1);
  // And the store got each cycle's values through the reused batches: one series, rising.
  auto series = store->select({*LabelMatcher::create(MatchType::kEqual, "__name__", "taker_value")},
                              0, INT64_MAX);
  REQUIRE(series.size() == 1);
  CHECK(series[0].samples.size() >= 30);
  for (std::size_t i = 1; i < series[0].samples.size(); ++i) {
    CHECK(series[0].samples[i].v > series[0].samples[i - 1].v);
  }
}
