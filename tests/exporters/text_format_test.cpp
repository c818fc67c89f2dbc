#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

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

TEST_CASE("Text format: empty families are left out", "[exporters][text]") {
  MetricBatch b;
  b.family("nothing", "No samples.", MetricType::kGauge);
  CHECK(render({&b}).empty());
}
