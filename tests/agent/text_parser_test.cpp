// The text exposition parser: what node_exporter, Prometheus client libraries and OpenMetrics
// producers write, and errors that name the line.
#include <catch2/catch.hpp>
#include <cmath>

#include "vigil/text_parser.h"

using namespace vigil;

namespace {

const MetricFamily* family(const MetricBatch& b, const std::string& name) {
  for (const auto& f : b.families()) {
    if (f.name == name) {
      return &f;
    }
  }
  return nullptr;
}

// The value of a family that must be untyped, with one sample written under its own name.
double untypedSingleValue(const MetricBatch& b, const std::string& name) {
  const MetricFamily* f = family(b, name);
  REQUIRE(f != nullptr);
  CHECK(f->type == MetricType::kUntyped);
  REQUIRE(f->samples.size() == 1);
  CHECK(f->samples[0].suffix.empty());
  return f->samples[0].value;
}

std::string errorOf(std::string_view text, const TextParseLimits& limits = {}) {
  auto r = parseTextFormat(text, limits);
  REQUIRE_FALSE(r);
  return r.status().message();
}

}  // namespace

TEST_CASE("Text format: families, labels, escapes, special values", "[textformat]") {
  auto r = parseTextFormat(R"(# HELP http_requests_total Requests \\ served,\nby code.
# TYPE http_requests_total counter
http_requests_total{code="200",path="/a \"b\"\\c"} 1027 1395066363000
http_requests_total{code="500" , path="x\ny"} 3
# a comment
# TYPE temperature gauge
temperature -Inf
temperature{room="cellar"} NaN
up 1
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 5
latency_seconds_bucket{le="+Inf"} 7
latency_seconds_sum 1.5e-1
latency_seconds_count 7
# TYPE rpc_seconds summary
rpc_seconds{quantile="0.99"} 0.2
rpc_seconds_sum 10
rpc_seconds_count 100
)");
  REQUIRE(r);
  CHECK(r->samples == 12);
  CHECK(r->timestamped == 1);
  const auto* req = family(r->batch, "http_requests_total");
  REQUIRE(req != nullptr);
  CHECK(req->type == MetricType::kCounter);
  CHECK(req->help == "Requests \\ served,\nby code.");
  REQUIRE(req->samples.size() == 2);
  CHECK(req->samples[0].labels == LabelSet{{"code", "200"}, {"path", "/a \"b\"\\c"}});
  CHECK(req->samples[0].value == 1027);
  CHECK(req->samples[1].labels == LabelSet{{"code", "500"}, {"path", "x\ny"}});
  const auto* temp = family(r->batch, "temperature");
  REQUIRE(temp != nullptr);
  CHECK(std::isinf(temp->samples[0].value));
  CHECK(std::isnan(temp->samples[1].value));
  CHECK(family(r->batch, "up")->type == MetricType::kUntyped);
  const auto* hist = family(r->batch, "latency_seconds");
  REQUIRE(hist != nullptr);
  CHECK(hist->type == MetricType::kHistogram);
  REQUIRE(hist->samples.size() == 4);
  CHECK(hist->samples[1].suffix == "_bucket");
  CHECK(hist->samples[1].labels == LabelSet{{"le", "+Inf"}});
  CHECK(hist->samples[2].suffix == "_sum");
  CHECK(hist->samples[2].value == 0.15);
  const auto* summary = family(r->batch, "rpc_seconds");
  REQUIRE(summary != nullptr);
  CHECK(summary->samples.size() == 3);
  CHECK(summary->samples[0].suffix.empty());
}

TEST_CASE("Text format: a TYPE line after its family's samples", "[textformat]") {
  // The base name's first sample made an untyped family before the TYPE line said summary:
  // the summary's _count cannot join an untyped family, so it stays a family as written,
  // and nothing in the batch claims to be what it is not.
  auto r = parseTextFormat(R"(rpc_seconds{quantile="0.5"} 4773
# TYPE rpc_seconds summary
rpc_seconds_count 2693
rpc_seconds_sum 12.5
)");
  REQUIRE(r);
  CHECK(untypedSingleValue(r->batch, "rpc_seconds") == 4773);
  CHECK(untypedSingleValue(r->batch, "rpc_seconds_count") == 2693);
  CHECK(untypedSingleValue(r->batch, "rpc_seconds_sum") == 12.5);
  // Read on, as Prometheus reads on; what Go's parser would refuse is said for those who ask.
  CHECK(r->metadata_error ==
        "line 2: a second TYPE line for rpc_seconds, or one after its samples");
}

TEST_CASE("Text format: repeated HELP and TYPE lines are reported, not refused", "[textformat]") {
  auto reported = [](const std::string& body) {
    auto r = parseTextFormat(body);
    REQUIRE(r);
    return r->metadata_error;
  };
  CHECK(reported("# HELP a One.\n# TYPE a gauge\na 1\n# HELP b Two.\nb 2\n").empty());
  // HELP after the samples is fine (Go's parser takes it); a second one is not.
  CHECK(reported("a 1\n# HELP a One.\n").empty());
  CHECK(reported("# HELP a One.\n# HELP a Two.\na 1\n") == "line 2: a second HELP line for a");
  CHECK(reported("# TYPE a gauge\n# TYPE a counter\n") ==
        "line 2: a second TYPE line for a, or one after its samples");
  // A histogram's suffixed samples are its family's: a TYPE for it after them is late.
  CHECK(reported("h_bucket{le=\"+Inf\"} 1\n# TYPE h histogram\n").empty());
  CHECK(reported("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\n# TYPE h histogram\n") ==
        "line 3: a second TYPE line for h, or one after its samples");
  // The first one is reported.
  CHECK(reported("# TYPE a gauge\n# TYPE a gauge\n# TYPE b gauge\n# TYPE b gauge\n") ==
        "line 2: a second TYPE line for a, or one after its samples");
}

TEST_CASE("Text format: HELP text ends before any carriage returns", "[textformat]") {
  // Rendering the help back must not carry the carriage returns, or each scrape of a scrape
  // of /metrics would see a different help text.
  auto r = parseTextFormat("# HELP a Things.\r\r\r\n# TYPE a gauge\r\na 1\r\n");
  REQUIRE(r);
  const MetricFamily* a = family(r->batch, "a");
  REQUIRE(a != nullptr);
  CHECK(a->help == "Things.");
  CHECK(a->type == MetricType::kGauge);
}

TEST_CASE("Text format: the OpenMetrics subset", "[textformat]") {
  auto r = parseTextFormat(R"(# TYPE jobs counter
# UNIT jobs_seconds seconds
# HELP jobs Jobs done.
jobs_total 17 # {trace_id="abc"} 1.0
jobs_created 1700000000
# EOF
ignored 1
)");
  REQUIRE(r);
  const auto* jobs = family(r->batch, "jobs_total");
  REQUIRE(jobs != nullptr);
  CHECK(jobs->type == MetricType::kCounter);
  CHECK(jobs->help == "Jobs done.");
  CHECK(jobs->samples[0].value == 17);
  CHECK(family(r->batch, "ignored") == nullptr);
}

TEST_CASE("Text format: errors name the line, limits hold", "[textformat]") {
  CHECK(errorOf("a 1\nb{x=\"1\"} one\n") == "line 2: bad value \"one\" for b");
  CHECK(errorOf("a{x=\"1} 2\n") == "line 1: unterminated label value");
  CHECK(errorOf("a{x=\"1\",x=\"2\"} 2\n") == "line 1: duplicate label x in a");
  CHECK(errorOf("a{x=1} 2\n") == "line 1: expected a quoted label value");
  CHECK(errorOf("# TYPE a flux\na 1\n") == "line 1: unknown metric type for a");
  CHECK(errorOf("a 1 2 3\n") == "line 1: unexpected text after the value of a");
  CHECK(errorOf("{x=\"1\"} 1\n") == "line 1: expected a metric name");
  CHECK(errorOf("a{x=\"\\q\"} 1\n") == "line 1: invalid escape \\q in a label value");
  TextParseLimits limits;
  limits.max_samples = 2;
  CHECK(errorOf("a 1\nb 2\nc 3\n", limits) == "line 3: more than 2 samples");
  limits.max_line_bytes = 10;
  CHECK(errorOf("a 1\nlong_metric_name 1\n", limits) == "line 2: longer than 10 bytes");
}

TEST_CASE("Text format: values as Go's ParseFloat reads them, series keys as written",
          "[textformat]") {
  auto value = [](const std::string& text) {
    auto r = parseTextFormat("m " + text + "\n");
    REQUIRE(r);
    return r->batch.families().front().samples.front().value;
  };
  CHECK(value("1.5") == 1.5);
  CHECK(value("+1.5") == 1.5);
  CHECK(value("-2e-3") == -0.002);
  CHECK(value("0x1p3") == 8);  // hex floats, as Go accepts them
  CHECK(value("1E3") == 1000);
  CHECK(std::isinf(value("+Inf")));
  CHECK(std::isnan(value("NaN")));
  CHECK(errorOf("m +-1\n") == "line 1: bad value \"+-1\" for m");
  CHECK(errorOf("m 1e400\n") == "line 1: bad value \"1e400\" for m");
  CHECK(errorOf("m 1_000\n") == "line 1: bad value \"1_000\" for m");
}

TEST_CASE("a body laid out as the last one is read by its values alone") {
  const std::string body =
      "# HELP a Things.\n# TYPE a counter\na{x=\"1\"} 1\na{x=\"2\"} 2\n"
      "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 3\nh_sum 0.5\nh_count 3\nb 3\na{x=\"1\"} 4\n";
  TextParseLimits limits;
  limits.layout = true;
  auto r = parseTextFormat(body, limits);
  REQUIRE(r);
  REQUIRE(r->layout.lines() == 7);
  CHECK(r->layout.series(0) == "a{x=\"1\"}");
  CHECK(r->layout.series(5) == "b");
  // Each line's sample is where the positions say, families grouped as the parser groups them.
  REQUIRE(r->positions.size() == 7);
  const auto& families = r->batch.families();
  auto at = [&](std::size_t line) {
    const SamplePosition p = r->positions[line];
    return families[p.family].name + families[p.family].samples[p.sample].suffix + "=" +
           std::to_string(static_cast<int>(families[p.family].samples[p.sample].value));
  };
  CHECK(at(0) == "a=1");
  CHECK(at(3) == "h_sum=0");
  CHECK(at(4) == "h_count=3");
  CHECK(at(6) == "a=4");
  CHECK(parseTextFormat("a 1\n")->layout.empty());  // only when asked for

  std::vector<double> values;
  std::size_t timestamped = 0;
  auto read = [&](const std::string& text) {
    return readValues(text, r->layout, limits, values, timestamped);
  };
  // New values, a timestamp, an exemplar, CRLF line ends, blank lines and a trailing EOF.
  REQUIRE(
      read("# HELP a Things.\n# TYPE a counter\na{x=\"1\"} 10\n\na{x=\"2\"} 20 1700000000000\r\n"
           "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 30 # {trace_id=\"x\"} 1\nh_sum 0.25\n"
           "h_count 30\nb NaN\na{x=\"1\"}\t+Inf\n"));
  CHECK(values.size() == 7);
  CHECK(values[0] == 10);
  CHECK(values[1] == 20);
  CHECK(values[3] == 0.25);
  CHECK(std::isnan(values[5]));
  CHECK(std::isinf(values[6]));
  CHECK(timestamped == 1);
  // Anything else is a different body, to be parsed in full.
  auto replaced = [&](std::string_view from, std::string_view to) {
    std::string text = body;
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  CHECK_FALSE(read(body + "c 1\n"));                            // a new series
  CHECK_FALSE(read(replaced("b 3\n", "")));                     // one fewer
  CHECK_FALSE(read(replaced("Things.", "Other things.")));      // other metadata
  CHECK_FALSE(read(replaced("a{x=\"2\"} 2", "a{x=\"3\"} 2")));  // other labels
  CHECK_FALSE(read(replaced("a{x=\"2\"} 2", "a{x=\"2\",y=\"1\"} 2")));
  CHECK_FALSE(read(replaced("b 3", "bc 3")));
  CHECK_FALSE(read(replaced("b 3", "b{} 3")));
  CHECK_FALSE(read(replaced("a{x=\"2\"} 2", "a{x=\"2\"} two")));  // what the parser refuses
  CHECK_FALSE(read(replaced("a{x=\"2\"} 2", "a{x=\"2\"} 2 3 4")));
  CHECK_FALSE(read(replaced("b 3", "b 3 x")));
  CHECK(read(body));
}
