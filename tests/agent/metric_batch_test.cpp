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

TEST_CASE("MetricBatch: a recycled batch asked in last cycle's order, then out of it",
          "[agent][metric]") {
  // One family per device attribute, asked for once per device: the collectors' usual shape.
  auto fill = [](MetricBatch& b, const std::vector<std::string>& devices, bool extra) {
    auto& up = b.family("up", "Up.", MetricType::kGauge);
    for (const auto& d : devices) {
      MetricBatch::add(up, {{"device", d}}, 1);
      MetricBatch::add(b.family("mtu", "MTU.", MetricType::kGauge), {{"device", d}}, 1500);
      if (extra) {
        b.addSingle("new_" + d, "New.", MetricType::kCounter, 2);
      }
      MetricBatch::add(b.family("speed", "Speed.", MetricType::kGauge), {{"device", d}}, 10);
    }
  };
  MetricBatch b;
  fill(b, {"eth0", "lo"}, false);
  for (int cycle = 0; cycle < 3; ++cycle) {
    b.recycle();
    fill(b, {"eth0", "lo"}, false);
    CHECK(names(b) == std::vector<std::string>{"up", "mtu", "speed"});
    CHECK(b.seriesCount() == 6);
    CHECK(b.families()[1].samples.size() == 2);
    CHECK(&b.family("speed", "", MetricType::kGauge) == &b.families()[2]);
  }
  // Asked for in reverse, holding on to each: last cycle's families are moved about to take
  // them, but never one already taken this cycle.
  b.recycle();
  auto& speed_first = b.family("speed", "Speed.", MetricType::kGauge);
  auto& mtu_second = b.family("mtu", "MTU.", MetricType::kGauge);
  auto& up_third = b.family("up", "Up.", MetricType::kGauge);
  MetricBatch::add(speed_first, {{"device", "eth0"}}, 10);
  MetricBatch::add(mtu_second, {{"device", "eth0"}}, 1500);
  MetricBatch::add(up_third, {{"device", "eth0"}}, 1);
  CHECK(names(b) == std::vector<std::string>{"speed", "mtu", "up"});
  CHECK(speed_first.name == "speed");
  CHECK(mtu_second.name == "mtu");
  CHECK(b.families()[0].samples.at(0).value == 10);
  CHECK(b.families()[2].samples.at(0).value == 1);
  b.recycle();
  fill(b, {"eth0", "lo"}, false);
  CHECK(names(b) == std::vector<std::string>{"up", "mtu", "speed"});
  // A family that was not there last cycle, between two that were: the order breaks there,
  // and what was taken before it is still found by name.
  b.recycle();
  fill(b, {"eth0", "lo"}, true);
  CHECK(names(b) == std::vector<std::string>{"up", "mtu", "new_eth0", "speed", "new_lo"});
  CHECK(&b.family("mtu", "", MetricType::kGauge) == &b.families()[1]);
  CHECK(&b.family("up", "", MetricType::kGauge) == &b.families()[0]);
  CHECK(b.families()[2].type == MetricType::kCounter);
  CHECK(b.families()[3].samples.size() == 2);
  // Back to the first shape: the new families are gone, the others as before.
  b.recycle();
  fill(b, {"eth0"}, false);
  CHECK(names(b) == std::vector<std::string>{"up", "mtu", "speed"});
  b.recycle();
  auto& speed = b.family("speed", "Speed, again.", MetricType::kUntyped);
  CHECK(speed.help == "Speed, again.");
  CHECK(speed.type == MetricType::kUntyped);
  CHECK(speed.samples.empty());
  CHECK(names(b) == std::vector<std::string>{"speed"});
  // The families not asked for in that cycle are gone at the next.
  b.recycle();
  b.addSingle("up", "Up.", MetricType::kGauge, 1);
  b.addSingle("mtu", "MTU.", MetricType::kGauge, 1);
  CHECK(names(b) == std::vector<std::string>{"up", "mtu"});
  CHECK(b.families()[0].help == "Up.");
  // In order to the end: then only the start of that order, then the whole again. What the
  // shorter cycle did not ask for is gone, not taken back from the cycle before.
  b.recycle();
  b.addSingle("up", "Up.", MetricType::kGauge, 1);
  b.addSingle("mtu", "MTU.", MetricType::kGauge, 1);
  b.recycle();
  b.addSingle("up", "Up.", MetricType::kGauge, 1);
  b.recycle();
  b.addSingle("up", "Up.", MetricType::kGauge, 2);
  auto& mtu = b.family("mtu", "MTU, new.", MetricType::kCounter);
  CHECK(mtu.samples.capacity() == 0);  // a new family, not last-but-one cycle's
  CHECK(mtu.help == "MTU, new.");
  CHECK(names(b) == std::vector<std::string>{"up", "mtu"});
}

namespace {

// Everything a reader sees of a batch, as text.
std::string contents(const MetricBatch& b) {
  std::string out;
  for (const auto& f : b.families()) {
    for (const auto& s : f.samples) {
      out += f.name + s.suffix + "{";
      for (const auto& l : s.labels) {
        out += l.name + "=" + l.value + ",";
      }
      out += "} " + std::to_string(s.value) + "\n";
    }
  }
  return out;
}

}  // namespace

// A collector adds the same series every cycle: the label sets of a recycled batch's last
// cycle are taken back instead of made again, and what the batch holds is what a new batch
// given the same calls holds, whatever changed between cycles.
TEST_CASE("MetricBatch: labels written in place are taken back from the last cycle",
          "[agent][metric]") {
  struct Cycle {
    std::vector<std::pair<std::string, std::string>> cpu_modes;  // cpu, mode
    std::string device;
    bool sum_sample = false;
  };
  auto fill = [](MetricBatch& b, const Cycle& c, double value) {
    auto& cpu = b.family("cpu_seconds_total", "CPU.", MetricType::kCounter);
    for (const auto& [id, mode] : c.cpu_modes) {
      // Given in another order than sorted: the batch sorts them.
      MetricBatch::add(cpu, {{"mode", mode}, {"cpu", id}}, value);
    }
    auto& info = b.family("info", "Info.", MetricType::kGauge);
    MetricBatch::add(info, {{"device", c.device}}, 1);
    auto& latency = b.family("latency_seconds", "Latency.", MetricType::kSummary);
    if (c.sum_sample) {
      latency.samples.push_back(MetricSample{{}, value, "_sum"});
    } else {
      MetricBatch::add(latency, value);
    }
  };
  const std::vector<Cycle> cycles = {
      {{{"0", "user"}, {"0", "system"}, {"1", "user"}}, "eth0", false},
      {{{"0", "user"}, {"0", "system"}, {"1", "user"}}, "eth0", false},
      {{{"0", "user"}, {"0", "system"}, {"1", "user"}}, "eth1", true},  // a value changed
      {{{"0", "user"}, {"1", "user"}}, "eth1", false},                  // a series gone
      {{{"0", "user"}, {"0", "idle"}, {"1", "user"}, {"2", "user"}}, "eth1", false},  // new ones
      {{{"0", "user"}, {"0", "idle"}, {"1", "user"}, {"2", "user"}}, "eth1", false},
  };
  MetricBatch recycled;
  std::vector<const Label*> last_label_sets;
  for (std::size_t i = 0; i < cycles.size(); ++i) {
    INFO("cycle " << i);
    recycled.recycle();
    fill(recycled, cycles[i], static_cast<double>(i));
    MetricBatch fresh;
    fill(fresh, cycles[i], static_cast<double>(i));
    CHECK(contents(recycled) == contents(fresh));

    std::vector<const Label*> label_sets;
    for (const auto& s : recycled.families()[0].samples) {
      label_sets.push_back(s.labels.data());
    }
    if (i == 1 || i == 5) {
      // The same series as the cycle before: every label set taken back.
      CHECK(label_sets == last_label_sets);
    }
    last_label_sets = label_sets;
  }
}

TEST_CASE("MetricBatch: a sealed batch keeps its layout while its shape stays the same",
          "[agent][metric]") {
  // What the collector adds each cycle: families in order, each with its samples' labels.
  using Shape = std::vector<std::pair<std::string, std::vector<std::string>>>;
  auto fill = [](MetricBatch& b, const Shape& shape, double value, const std::string& help = "h",
                 MetricType type = MetricType::kGauge) {
    for (const auto& [name, devices] : shape) {
      auto& f = b.family(name, help, type);
      for (const auto& d : devices) {
        if (d.empty()) {
          MetricBatch::add(f, value);
        } else if (d == "eth9") {
          MetricBatch::add(f, LabelSet{{"device", d}}, value);  // a made label set
        } else {
          MetricBatch::add(f, {{"device", d}}, value);
        }
      }
    }
  };
  const Shape base = {{"up", {""}}, {"rx", {"eth0", "eth1", "eth9"}}, {"tx", {"eth0"}}};
  struct Step {
    const char* what;
    Shape shape;
    bool same_layout;
  };
  const std::vector<Step> steps = {
      {"first cycle", base, false},
      {"same shape, other values", base, true},
      {"same again", base, true},
      {"a label value changed",
       {{"up", {""}}, {"rx", {"eth0", "eth2", "eth9"}}, {"tx", {"eth0"}}},
       false},
      {"back to the first shape", base, false},
      {"unchanged since", base, true},
      {"a sample gone", {{"up", {""}}, {"rx", {"eth0", "eth1"}}, {"tx", {"eth0"}}}, false},
      {"a sample added", base, false},
      {"a family added",
       {{"up", {""}}, {"rx", {"eth0", "eth1", "eth9"}}, {"tx", {"eth0"}}, {"x", {""}}},
       false},
      {"a family gone", base, false},
      {"families swapped",
       {{"up", {""}}, {"tx", {"eth0"}}, {"rx", {"eth0", "eth1", "eth9"}}},
       false},
      {"samples swapped",
       {{"up", {""}}, {"rx", {"eth1", "eth0", "eth9"}}, {"tx", {"eth0"}}},
       false},
      {"settled", {{"up", {""}}, {"rx", {"eth1", "eth0", "eth9"}}, {"tx", {"eth0"}}}, true},
  };
  MetricBatch b;
  uint64_t last = 0;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    INFO(steps[i].what);
    b.recycle();
    fill(b, steps[i].shape, static_cast<double>(i));
    b.sealLayout();
    CHECK(b.layout() != 0);
    CHECK((b.layout() == last) == steps[i].same_layout);
    last = b.layout();
  }

  SECTION("a sample pushed by hand, not through add(), gets a new layout") {
    b.recycle();
    fill(b, steps.back().shape, 1);
    b.family("tx", "h", MetricType::kGauge).samples.push_back({{{"device", "eth5"}}, 1, {}});
    b.sealLayout();
    CHECK(b.layout() != last);
  }
  SECTION("labels rewritten through mutableFamilies() get a new layout") {
    b.recycle();
    fill(b, steps.back().shape, 1);
    b.mutableFamilies()[1].samples[0].labels[0].value = "eth7";
    b.sealLayout();
    CHECK(b.layout() != last);
    // And the cycle after that, with the shape of the rewritten batch's, a new one again:
    // the rewritten one is not known to be what its layout named.
    const uint64_t rewritten = b.layout();
    b.recycle();
    fill(b, steps.back().shape, 2);
    b.sealLayout();
    CHECK(b.layout() != rewritten);
  }
  SECTION("a layout set by the collector is kept") {
    b.recycle();
    fill(b, steps.back().shape, 1);
    b.setLayout(42);
    b.sealLayout();
    CHECK(b.layout() == 42);
    // Its readers check it: only sealLayout() compared the shape.
    CHECK_FALSE(b.layoutChecked());
  }
  SECTION("a family's new help or type gets a new layout: a text kept for one is not stale") {
    CHECK(b.layoutChecked());
    b.recycle();
    CHECK_FALSE(b.layoutChecked());
    fill(b, steps.back().shape, 1, "other help");
    b.sealLayout();
    CHECK(b.layout() != last);
    const uint64_t other_help = b.layout();
    b.recycle();
    fill(b, steps.back().shape, 2, "other help", MetricType::kCounter);
    b.sealLayout();
    CHECK(b.layout() != other_help);
    CHECK(b.layoutChecked());
  }
}

TEST_CASE("MetricBatch: a label set kept by the collector is copied only when it changed",
          "[agent][metric]") {
  LabelSet kept = {{"id", "debian"}, {"version_id", "12"}};
  MetricBatch b;
  const Label* last = nullptr;
  uint64_t last_layout = 0;
  for (int cycle = 0; cycle < 4; ++cycle) {
    INFO("cycle " << cycle);
    if (cycle == 2) {
      kept[1].value = "13";  // an upgrade
    }
    b.recycle();
    MetricBatch::addCopyOf(b.family("os_info", "h", MetricType::kGauge), kept, 1);
    b.sealLayout();
    const MetricSample& s = b.families()[0].samples[0];
    CHECK(s.labels == kept);
    CHECK(s.labels.data() != kept.data());
    // Cycles 1 and 3 have their last cycle's labels: that label set is taken back.
    CHECK((s.labels.data() == last) == (cycle == 1 || cycle == 3));
    CHECK((b.layout() == last_layout) == (cycle == 1 || cycle == 3));
    last = s.labels.data();
    last_layout = b.layout();
  }
}

TEST_CASE("MetricBatch: histogram samples and labels listed at run time are taken back too",
          "[agent][metric]") {
  // A histogram of one notifier, by hand and through the batch; then the notifier's sum
  // and count swapped, which must not take back each other's label sets.
  auto fill = [](MetricBatch& b, bool swapped, double value) {
    auto& h = b.family("latency_seconds", "h", MetricType::kHistogram);
    const std::vector<LabelRef> notifier = {{"notifier", "slack"}};
    MetricBatch::addSuffixed(h, "_bucket", {{"notifier", "slack"}, {"le", "0.5"}}, value);
    MetricBatch::addSuffixed(h, "_bucket", {{"le", "+Inf"}, {"notifier", "slack"}}, value);
    MetricBatch::addSuffixed(h, swapped ? "_count" : "_sum", {{"notifier", "slack"}}, value);
    MetricBatch::addSuffixed(h, swapped ? "_sum" : "_count", {{"notifier", "slack"}}, value);
    MetricBatch::addRefs(b.family("up", "h", MetricType::kGauge), notifier, value);
  };
  const std::string expected =
      "latency_seconds_bucket{le=0.5,notifier=slack,} 1.000000\n"
      "latency_seconds_bucket{le=+Inf,notifier=slack,} 1.000000\n"
      "latency_seconds_sum{notifier=slack,} 1.000000\n"
      "latency_seconds_count{notifier=slack,} 1.000000\n"
      "up{notifier=slack,} 1.000000\n";
  MetricBatch b;
  uint64_t last_layout = 0;
  std::vector<const Label*> last_sets;
  for (int cycle = 0; cycle < 4; ++cycle) {
    INFO("cycle " << cycle);
    const bool swapped = cycle == 2;
    b.recycle();
    fill(b, swapped, 1);
    b.sealLayout();
    if (!swapped) {
      CHECK(contents(b) == expected);
    }
    std::vector<const Label*> sets;
    for (const auto& f : b.families()) {
      for (const auto& s : f.samples) {
        sets.push_back(s.labels.data());
      }
    }
    if (cycle == 1) {
      CHECK(sets == last_sets);
      CHECK(b.layout() == last_layout);
    }
    if (cycle >= 2) {
      // The buckets and `up` are taken back; the swapped sum and count are new.
      CHECK(sets[0] == last_sets[0]);
      CHECK(sets[2] != last_sets[2]);
      CHECK(sets[3] != last_sets[3]);
      CHECK(sets[4] == last_sets[4]);
      CHECK(b.layout() != last_layout);
    }
    last_sets = sets;
    last_layout = b.layout();
  }
}
