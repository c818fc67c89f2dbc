// A batch recycled for its collector's next cycle looks to the collector exactly like a new
// one: families in the order it asks for them, help and type from this cycle, no samples left
// over, and the families it stops producing gone.
#include <catch2/catch.hpp>

#include "vigil/metric.h"

using namespace vigil;

namespace {

std::vector<std::string> names(const MetricBatch& b) {
  std::vector<std::string> out;
  for (const auto& f : b.families()) {
    out.push_back(f.name);
  }
  return out;
}

}  // namespace

TEST_CASE("MetricBatch: a recycled batch is filled as a new one", "[agent][metric]") {
  MetricBatch b;
  MetricBatch::add(b.family("a_total", "A.", MetricType::kCounter), {{"x", "1"}}, 1);
  MetricBatch::add(b.family("a_total", "ignored", MetricType::kGauge), {{"x", "2"}}, 2);
  b.addSingle("b", "B.", MetricType::kGauge, 3);
  b.setLayout(7);

  b.recycle();
  CHECK(b.empty());
  CHECK(b.layout() == 0);
  // Asked for in another order, one with other help and type, and a new one.
  auto& bee = b.family("b", "B.", MetricType::kGauge);
  CHECK(bee.samples.empty());
  MetricBatch::add(bee, 30);
  auto& a = b.family("a_total", "A, now.", MetricType::kUntyped);
  CHECK(a.samples.empty());
  CHECK(a.samples.capacity() >= 2);  // the last cycle's storage
  MetricBatch::add(a, {{"x", "3"}}, 4);
  b.addSingle("c", "C.", MetricType::kGauge, 5);
  CHECK(&b.family("a_total", "again", MetricType::kGauge) == &a);
  CHECK(names(b) == std::vector<std::string>{"b", "a_total", "c"});
  CHECK(b.families()[1].help == "A, now.");
  CHECK(b.families()[1].type == MetricType::kUntyped);
  REQUIRE(b.families()[1].samples.size() == 1);
  CHECK(b.families()[1].samples[0].labels == LabelSet{{"x", "3"}});
  CHECK(b.seriesCount() == 3);

  // A family not asked for in a cycle is gone, and stays gone.
  b.recycle();
  b.addSingle("c", "C.", MetricType::kGauge, 6);
  CHECK(names(b) == std::vector<std::string>{"c"});
  b.recycle();
  b.addSingle("b", "B.", MetricType::kGauge, 7);
  CHECK(names(b) == std::vector<std::string>{"b"});
  CHECK(b.families()[0].samples.size() == 1);
  CHECK(b.families()[0].samples[0].value == 7);

  b.clear();
  CHECK(b.empty());
  b.addSingle("a_total", "fresh", MetricType::kGauge, 8);
  CHECK(b.families()[0].help == "fresh");
}
