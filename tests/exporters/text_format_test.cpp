#include <catch2/catch.hpp>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <random>

#include "vigil/exporters/text_format.h"

using namespace vigil;

namespace {
std::string render(std::initializer_list<const MetricBatch*> batches) {
  std::string out;
  std::vector<const MetricBatch*> v(batches);
  exporters::renderTextFormat(v, out);
  return out;
}
}  // namespace

TEST_CASE("Text format: families sorted, HELP and TYPE once, labels sorted and escaped",
          "[exporters][text]") {
  MetricBatch b;
  auto& z = b.family("z_total", "Last family.", MetricType::kCounter);
  MetricBatch::add(z, 3);
  auto& a =
      b.family("a_info", "Help with a \\ backslash\nand a newline \"quoted\".", MetricType::kGauge);
  MetricBatch::add(a, {{"zeta", "1"}, {"alpha", "x\"y\\z\nw"}}, 1);
  CHECK(render({&b}) ==
        "# HELP a_info Help with a \\\\ backslash\\nand a newline \"quoted\".\n"
        "# TYPE a_info gauge\n"
        "a_info{alpha=\"x\\\"y\\\\z\\nw\",zeta=\"1\"} 1\n"
        "# HELP z_total Last family.\n"
        "# TYPE z_total counter\n"
        "z_total 3\n");
}

TEST_CASE("Text format: escapes at the ends of a value and one after another",
          "[exporters][text]") {
  // The escaping copies the runs between special bytes: runs of length 0 at either end and
  // between two special bytes must come out right too.
  MetricBatch b;
  auto& m = b.family("m", "\\\n\\", MetricType::kGauge);
  MetricBatch::add(m, {{"a", "\\"}}, 2);
  MetricBatch::add(m, {{"a", "\n\"\\\n"}}, 3);
  MetricBatch::add(m, {{"a", "end\\"}}, 4);
  MetricBatch::add(m, {{"a", "\"start"}}, 5);
  CHECK(render({&b}) ==
        "# HELP m \\\\\\n\\\\\n"
        "# TYPE m gauge\n"
        "m{a=\"\\\\\"} 2\n"
        "m{a=\"\\n\\\"\\\\\\n\"} 3\n"
        "m{a=\"end\\\\\"} 4\n"
        "m{a=\"\\\"start\"} 5\n");
}

TEST_CASE("Text format: one family spread over batches stays one contiguous group",
          "[exporters][text]") {
  MetricBatch first;
  MetricBatch::add(first.family("m", "From the first.", MetricType::kGauge), {{"src", "1"}}, 1);
  first.addSingle("b", "Between.", MetricType::kGauge, 0);
  MetricBatch second;
  MetricBatch::add(second.family("m", "From the second.", MetricType::kGauge), {{"src", "2"}}, 2);
  CHECK(render({&first, &second}) ==
        "# HELP b Between.\n# TYPE b gauge\nb 0\n"
        "# HELP m From the first.\n# TYPE m gauge\nm{src=\"1\"} 1\nm{src=\"2\"} 2\n");
}

TEST_CASE("Text format: special and extreme float values", "[exporters][text]") {
  auto fmt = [](double v) {
    std::string s;
    exporters::appendFloat(s, v);
    return s;
  };
  CHECK(fmt(std::nan("")) == "NaN");
  CHECK(fmt(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(fmt(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(fmt(0) == "0");
  CHECK(fmt(-0.0) == "-0");
  CHECK(fmt(1712700000) == "1712700000");
  CHECK(fmt(0.1) == "0.1");
  CHECK(fmt(1e-300) == "1e-300");
  // Round trip: the shortest representation still parses back to the same double.
  for (double v : {3.141592653589793, 1.0 / 3, 12345678901234567.0, 5e-324}) {
    CHECK(std::strtod(fmt(v).c_str(), nullptr) == v);
  }
}

TEST_CASE("Text format: whole numbers are written as to_chars's shortest form writes them",
          "[exporters][text]") {
  // Whole numbers take a faster path than other floats; the text must not change: counters
  // and byte counts, those ending in zeros (where an exponent can be shorter), negatives, the
  // edges of that path and just beyond.
  auto fmt = [](double v) {
    std::string s;
    exporters::appendFloat(s, v);
    return s;
  };
  auto shortest = [](double v) {
    char buf[64];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
  };
  std::vector<double> values = {1,
                                -1,
                                7,
                                10,
                                -10,
                                100,
                                1e6,
                                1234567,
                                1000001,
                                2.5e10,
                                25276502016.0,
                                999999999999999.0,
                                1e15,
                                1e15 + 1,
                                -1e15 + 3,
                                9007199254740993.0,
                                4.5e18};
  uint64_t x = 88172645463325252ULL;  // xorshift: whole numbers of every size
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const int digits = 1 + static_cast<int>(x % 16);
    double v = static_cast<double>((x >> 8) % static_cast<uint64_t>(std::pow(10, digits)));
    values.push_back(i % 3 == 0 ? -v : v);
  }
  for (double v : values) {
    INFO(v);
    CHECK(fmt(v) == shortest(v));
  }
}

TEST_CASE("Text format: empty families are left out", "[exporters][text]") {
  MetricBatch b;
  b.family("nothing", "No samples.", MetricType::kGauge);
  CHECK(render({&b}).empty());
}

namespace {
// What `renderer` appends to `start` for `batches`, and what renderTextFormat appends: the two
// must be the same.
struct BothTexts {
  std::string cached;
  std::string plain;
};
BothTexts renderBoth(exporters::TextRenderer& renderer,
                     const std::vector<const MetricBatch*>& batches,
                     const std::string& start = "") {
  BothTexts both{start, start};
  renderer.render(batches, both.cached);
  exporters::renderTextFormat(batches, both.plain);
  return both;
}

// A collector's batch for one cycle: `devices` series of a counter, an empty family, and a
// gauge that the other collector reports too.
void fillCycle(MetricBatch& m, const std::string& prefix, int cycle, int devices,
               const std::string& help) {
  m.recycle();
  auto& counter = m.family(prefix + "_bytes_total", help, MetricType::kCounter);
  for (int d = 0; d < devices; ++d) {
    const std::string device = "dev\"" + std::to_string(d) + "\\";
    MetricBatch::add(counter, {{"device", device}}, cycle * 100 + d + 0.5);
  }
  m.family(prefix + "_empty", "Nothing this cycle.", MetricType::kGauge);
  MetricBatch::add(m.family("shared_up", "Up from " + prefix + ".", MetricType::kGauge),
                   {{"source", prefix}}, cycle % 2);
  m.sealLayout();
}
}  // namespace

TEST_CASE("TextRenderer: the text of renderTextFormat while values, series and help change",
          "[exporters][text]") {
  exporters::TextRenderer renderer;
  // Like the scheduler, the node collector fills two batches in turn (each gets a layout).
  MetricBatch node_batches[2];
  MetricBatch disk;
  MetricBatch pushed;  // no layout: written in full every time
  uint64_t node_layout = 0;
  for (int cycle = 0; cycle < 14; ++cycle) {
    const int devices = cycle < 4 ? 2 : cycle < 9 ? 3 : 1;
    MetricBatch& node = node_batches[cycle % 2];
    fillCycle(node, "node", cycle, devices, cycle == 6 ? "Other help." : "Bytes.");
    fillCycle(disk, "disk", cycle, 2, "Disk bytes.");
    node_layout = node.layout();
    pushed.clear();
    MetricBatch::add(pushed.family("pushed", "Pushed.", MetricType::kGauge),
                     {{"n", std::to_string(cycle)}}, cycle);
    const std::vector<const MetricBatch*> batches =
        cycle % 3 == 0 ? std::vector<const MetricBatch*>{&disk, &node, &pushed}
                       : std::vector<const MetricBatch*>{&node, &disk, &pushed};
    const auto [cached, plain] = renderBoth(renderer, batches, "kept: ");
    INFO("cycle " << cycle);
    CHECK(cached == plain);
    CHECK_THAT(cached, Catch::Contains("node_bytes_total{device=\"dev\\\"0\\\\\"} " +
                                       std::to_string(cycle * 100) + ".5\n"));
    CHECK_THAT(cached, Catch::Contains("# HELP node_bytes_total " +
                                       std::string(cycle == 6 ? "Other help." : "Bytes.") + "\n"));
    CHECK_THAT(cached, Catch::Contains("pushed{n=\"" + std::to_string(cycle) + "\"}"));
  }
  // A batch that keeps its layout while its series change (breaking MetricBatch's contract)
  // is still written as it is, not as the text kept for its layout.
  MetricBatch& node = node_batches[0];
  node.recycle();
  MetricBatch::add(node.family("node_bytes_total", "Bytes.", MetricType::kCounter),
                   {{"device", "other"}}, 1);
  MetricBatch::add(node.family("node_bytes_total", "Bytes.", MetricType::kCounter),
                   {{"device", "more"}}, 2);
  node.setLayout(node_layout);
  const std::vector<const MetricBatch*> batches = {&node, &disk};
  const auto [cached, plain] = renderBoth(renderer, batches);
  CHECK(cached == plain);
}

TEST_CASE("TextRenderer: a batch that breaks its layout leaves the text another batch shares",
          "[exporters][text]") {
  // Two batches with the same series under two layouts share one kept text.
  auto fill = [](MetricBatch& b, const std::vector<std::string>& devices) {
    b.clear();
    auto& f = b.family("shared_bytes", "Bytes.", MetricType::kCounter);
    for (const std::string& d : devices) {
      MetricBatch::add(f, {{"device", d}}, 1);
    }
  };
  MetricBatch one;
  MetricBatch two;
  fill(one, {"eth0"});
  fill(two, {"eth0"});
  one.setLayout(MetricBatch::newLayout());
  two.setLayout(MetricBatch::newLayout());
  exporters::TextRenderer renderer;
  const std::vector<const MetricBatch*> batches = {&one, &two};
  for (const std::vector<std::string>& devices :
       {std::vector<std::string>{"eth0"}, std::vector<std::string>{"eth1", "eth2"}}) {
    // The second time, `two` has other series under the same layout.
    const uint64_t kept = two.layout();
    fill(two, devices);
    two.setLayout(kept);
    const auto [cached, plain] = renderBoth(renderer, batches);
    CHECK(cached == plain);
  }
}

TEST_CASE("TextRenderer: values that change or stay, scrape after scrape, as renderTextFormat",
          "[exporters][text]") {
  // Every batch keeps its layout, so the renderer copies last time's text for the values that
  // stayed: whatever changes (a value's length, NaN, infinities, -0, a series or a help text
  // coming or going), the output must be renderTextFormat's.
  std::mt19937 random(7);
  const double kSpecial[] = {0.0,
                             -0.0,
                             1.0,
                             1e6,
                             123456789.25,
                             std::numeric_limits<double>::quiet_NaN(),
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             4.9e-324};  // the bits of a header written afresh
  std::vector<double> node_values(12, 0.0);
  std::vector<double> self_values(5, 1.0);
  MetricBatch node_batches[2];
  MetricBatch self;
  exporters::TextRenderer renderer;
  for (int scrape = 0; scrape < 300; ++scrape) {
    auto change = [&](std::vector<double>& values) {
      for (double& v : values) {
        const int dice = static_cast<int>(random() % 10);
        if (dice == 0) {
          v = kSpecial[random() % std::size(kSpecial)];
        } else if (dice == 1) {
          v += static_cast<double>(random() % 100000) / 8;  // longer or shorter text
        }
      }
    };
    change(node_values);
    change(self_values);
    // Now and then a series comes or goes, or a help text changes: a new layout.
    const std::size_t devices = scrape % 50 < 40 ? 4 : 3;
    const bool other_help = scrape % 70 >= 60;
    MetricBatch& node = node_batches[scrape % 2];  // two batches in turn, as the scheduler does
    node.recycle();
    auto& bytes =
        node.family("node_bytes_total", other_help ? "Other." : "Bytes.", MetricType::kCounter);
    auto& up = node.family("node_up", "Up.", MetricType::kGauge);
    for (std::size_t d = 0; d < devices; ++d) {
      MetricBatch::add(bytes, {{"device", "sd" + std::to_string(d)}}, node_values[d]);
      MetricBatch::add(up, {{"device", "sd" + std::to_string(d)}}, node_values[4 + d]);
    }
    node.addSingle("node_load1", "Load.", MetricType::kGauge, node_values[8]);
    node.addSingle("node_a_first", "Sorted first.", MetricType::kGauge, node_values[9]);
    node.sealLayout();
    self.recycle();
    for (std::size_t i = 0; i < self_values.size(); ++i) {
      // One family name in both batches: merged under the first one's HELP and TYPE.
      MetricBatch::add(self.family(i == 0 ? "node_up" : "vigil_x" + std::to_string(i),
                                   i == 0 ? "Up." : "Self.", MetricType::kGauge),
                       {{"device", "self"}}, self_values[i]);
    }
    self.sealLayout();
    const std::vector<const MetricBatch*> batches = {&node, &self};
    const auto [cached, plain] = renderBoth(renderer, batches, "before\n");
    INFO("scrape " << scrape);
    REQUIRE(cached == plain);
  }
}

TEST_CASE("TextRenderer: an exposition too large to keep twice is written in full, and right",
          "[exporters][text]") {
  // Past 16 MiB the last text is not kept: each render writes everything, and a render after
  // one that kept nothing must not copy from what is gone.
  const std::string long_value(4096, 'v');
  MetricBatch batch;
  exporters::TextRenderer renderer;
  for (int scrape = 0; scrape < 4; ++scrape) {
    const int series = scrape == 1 || scrape == 2 ? 5000 : 10;  // 20 MB, then 40 KB again
    batch.recycle();
    auto& f = batch.family("big", "Big.", MetricType::kGauge);
    for (int i = 0; i < series; ++i) {
      MetricBatch::add(f, {{"id", std::to_string(i)}, {"pad", long_value}},
                       i % 7 == 0 ? scrape : i);
    }
    batch.sealLayout();
    const std::vector<const MetricBatch*> batches = {&batch};
    const auto [cached, plain] = renderBoth(renderer, batches);
    INFO("scrape " << scrape << ", " << plain.size() << " bytes");
    REQUIRE(cached == plain);
  }
}
