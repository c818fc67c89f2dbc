// Pushed metrics: the Pushgateway's grouping keys as Prometheus's client libraries write them
// (plain and percent-encoded parts, and base64url values after a name ending in @base64 for
// values with a slash and empty ones), and bodies in the protobuf format, written by hand.
#include <catch2/catch.hpp>
#include <cstring>
#include <limits>
#include <map>
#include <optional>

#include "agent/collectors/push/protobuf_format.h"
#include "agent/collectors/push/push_registry.h"
#include "vigil/store.h"

using namespace vigil;
using vigil::collectors::PushRegistry;
namespace collectors = vigil::collectors;

namespace {

LabelSet keyOf(std::string_view path) {
  auto key = PushRegistry::groupingKey(path);
  INFO(path << ": " << (key ? "" : key.status().message()));
  REQUIRE(key);
  return *key;
}

std::string errorOf(std::string_view path) {
  auto key = PushRegistry::groupingKey(path);
  INFO(path);
  REQUIRE_FALSE(key);
  return key.status().message();
}

}  // namespace

TEST_CASE("Push grouping keys: plain and percent-encoded parts", "[push]") {
  CHECK(keyOf("job/backup") == LabelSet{{"job", "backup"}});
  CHECK(keyOf("job/backup/instance/db-1/db/app") ==
        LabelSet{{"db", "app"}, {"instance", "db-1"}, {"job", "backup"}});
  // A percent-encoded slash stays inside its value; '+' is not a space in a path.
  CHECK(keyOf("job/backup/path/%2Fvar%2Ftmp") == LabelSet{{"job", "backup"}, {"path", "/var/tmp"}});
  CHECK(keyOf("job/a+b") == LabelSet{{"job", "a+b"}});
}

TEST_CASE("Push grouping keys: base64url values after @base64, as the client libraries send",
          "[push]") {
  // What the Pushgateway's README and the Python client write: "/var/tmp" with and without
  // padding, the empty value as "=", and a job name with a slash.
  CHECK(keyOf("job/directory_cleaner/path@base64/L3Zhci90bXA") ==
        LabelSet{{"job", "directory_cleaner"}, {"path", "/var/tmp"}});
  CHECK(keyOf("job/directory_cleaner/path@base64/L3Zhci90bXA=") ==
        LabelSet{{"job", "directory_cleaner"}, {"path", "/var/tmp"}});
  CHECK(keyOf("job/batch/instance@base64/=") == LabelSet{{"instance", ""}, {"job", "batch"}});
  CHECK(keyOf("job@base64/YS9i") == LabelSet{{"job", "a/b"}});
  // The URL-safe alphabet's '-' and '_' (bytes 0xfb 0xff), and every remainder of a block.
  CHECK(keyOf("job/x/v@base64/-_8") == LabelSet{{"job", "x"}, {"v", "\xfb\xff"}});
  CHECK(keyOf("job/x/v@base64/YQ") == LabelSet{{"job", "x"}, {"v", "a"}});
  CHECK(keyOf("job/x/v@base64/YWI") == LabelSet{{"job", "x"}, {"v", "ab"}});
  CHECK(keyOf("job/x/v@base64/YWJj") == LabelSet{{"job", "x"}, {"v", "abc"}});
}

TEST_CASE("Push grouping keys: what is wrong is named", "[push]") {
  CHECK_THAT(errorOf("jobs/x"), Catch::Contains("expected /metrics/job/JOB"));
  CHECK_THAT(errorOf("job/x/instance"), Catch::Contains("label without a value: instance"));
  CHECK_THAT(errorOf("job/"), Catch::Contains("job name is empty"));
  CHECK_THAT(errorOf("job@base64/="), Catch::Contains("job name is empty"));
  CHECK_THAT(errorOf("job/x/__name__/y"), Catch::Contains("invalid label name"));
  CHECK_THAT(errorOf("job/x/a-b/y"),
             Catch::Contains("invalid label name in the grouping key: a-b"));
  CHECK_THAT(errorOf("job/x/a/1/a@base64/Mg"), Catch::Contains("label a appears twice"));
  // Not base64url: the standard alphabet's '+', a stray character, a length no text has.
  CHECK_THAT(
      errorOf("job/x/path@base64/L3Zh+90"),
      Catch::Contains("value of path (\"L3Zh+90\") is not base64url") && Catch::Contains("'+'"));
  CHECK_THAT(errorOf("job/x/path@base64/a.b"), Catch::Contains("is not base64url"));
  CHECK_THAT(errorOf("job/x/path@base64/abcde"), Catch::Contains("cannot be whole"));
  // The suffix alone names no label.
  CHECK_THAT(errorOf("job/x/@base64/YQ"), Catch::Contains("invalid label name"));
}

namespace {

// The protobuf wire format, enough to write MetricFamily messages by hand: what a client
// would send, including what no well-behaved client sends.
std::string varint(uint64_t v) {
  std::string out;
  do {
    const auto byte = static_cast<char>((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    out += byte;
    v >>= 7;
  } while (v != 0);
  return out;
}
std::string field(int number, const std::string& bytes) {  // length-delimited
  return varint(static_cast<uint64_t>(number) << 3 | 2) + varint(bytes.size()) + bytes;
}
std::string number(int field_number, double v) {  // fixed64
  std::string out = varint(static_cast<uint64_t>(field_number) << 3 | 1);
  char raw[8];
  std::memcpy(raw, &v, 8);
  return out + std::string(raw, 8);
}
std::string integer(int field_number, uint64_t v) {  // varint
  return varint(static_cast<uint64_t>(field_number) << 3) + varint(v);
}
std::string label(const std::string& name, const std::string& value) {
  return field(1, field(1, name) + field(2, value));
}
// MetricFamily{name, type, metrics}, length-delimited as in a body.
std::string family(const std::string& name, int type, const std::vector<std::string>& metrics) {
  std::string f = field(1, name) + integer(3, static_cast<uint64_t>(type));
  for (const auto& m : metrics) {
    f += field(4, m);
  }
  return varint(f.size()) + f;
}
constexpr int kGauge = 1;
constexpr int kHistogram = 4;
std::string gauge(double v, const std::string& labels = {}) {
  return labels + field(2, number(1, v));
}

}  // namespace

TEST_CASE("Pushed protobuf: histograms get their +Inf bucket once, timestamps are counted",
          "[push]") {
  // Buckets 1 and +Inf written out in one metric, only bucket 1 in the other.
  const std::string bucket1 = field(3, integer(1, 2) + number(2, 1));
  const std::string bucket_inf =
      field(3, integer(1, 5) + number(2, std::numeric_limits<double>::infinity()));
  const std::string with_inf =
      label("path", "/a") + field(7, integer(1, 5) + number(2, 9.5) + bucket1 + bucket_inf);
  const std::string without_inf = label("path", "/b") + field(7, integer(1, 4) + bucket1);
  const std::string timestamped = gauge(1) + integer(6, 1'700'000'000'000);
  auto parsed = collectors::parseDelimitedMetricFamilies(
      family("h", kHistogram, {with_inf, without_inf}) + family("g", kGauge, {timestamped}), 100);
  INFO((parsed ? "" : parsed.status().message()));
  REQUIRE(parsed);
  CHECK(parsed->timestamped == 1);
  std::map<std::string, double> got;
  for (const MetricFamily& f : parsed->batch.families()) {
    for (const MetricSample& s : f.samples) {
      std::string key = f.name + s.suffix;
      for (const Label& l : s.labels) {
        key += "," + l.name + "=" + l.value;
      }
      got[key] = s.value;
    }
  }
  CHECK(got == std::map<std::string, double>{{"g", 1},
                                             {"h_bucket,le=+Inf,path=/a", 5},
                                             {"h_bucket,le=+Inf,path=/b", 4},
                                             {"h_bucket,le=1,path=/a", 2},
                                             {"h_bucket,le=1,path=/b", 2},
                                             {"h_count,path=/a", 5},
                                             {"h_count,path=/b", 4},
                                             {"h_sum,path=/a", 9.5},
                                             {"h_sum,path=/b", 0}});
  // A timestamped push is refused as in the text format.
  collectors::PushRegistry registry;
  CHECK_THAT(registry
                 .push({{"job", "x"}}, family("g", kGauge, {timestamped}),
                       "application/vnd.google.protobuf; encoding=delimited", true, 0)
                 .message(),
             Catch::Contains("must not carry timestamps"));
}

TEST_CASE("Pushed protobuf: what is wrong is named with its message, and bounded", "[push]") {
  auto errorOf = [](const std::string& body, std::size_t max_samples = 100) {
    auto parsed = collectors::parseDelimitedMetricFamilies(body, max_samples);
    REQUIRE_FALSE(parsed);
    return parsed.status().message();
  };
  const std::string ok = family("a", kGauge, {gauge(1)});
  CHECK_THAT(errorOf(ok + family("a", kGauge, {gauge(2)})),
             Catch::Contains("family 2 (a): a second family of that name"));
  CHECK_THAT(errorOf(family("1a", kGauge, {gauge(1)})),
             Catch::Contains("family 1 (1a): invalid metric name"));
  CHECK_THAT(errorOf(family("a", kGauge, {gauge(1, label("x-y", "1"))})),
             Catch::Contains("invalid label name \"x-y\""));
  CHECK_THAT(errorOf(family("a", kGauge, {gauge(1, label("x", "1") + label("x", "2"))})),
             Catch::Contains("label x appears twice"));
  CHECK_THAT(errorOf(family("h", kHistogram, {label("le", "1") + field(7, integer(1, 1))})),
             Catch::Contains("label le is the histogram's own"));
  CHECK_THAT(errorOf(family("a", kGauge, {gauge(1), gauge(2, label("x", "1")), gauge(3)}), 2),
             Catch::Contains("more than 2 samples"));
  // Cut short: in its length prefix, and in its message.
  CHECK_THAT(errorOf(ok + "\xff"), Catch::Contains("family 2: damaged length prefix"));
  CHECK_THAT(errorOf(ok.substr(0, ok.size() - 2)),
             Catch::Contains("family 1: 18 bytes announced, 16 left"));
  CHECK_THAT(errorOf(varint(3) + "\xff\xff\xff"), Catch::Contains("not a MetricFamily message"));
}

TEST_CASE(
    "Pushed metrics: a family keeps one type across groups, and a refused push is "
    "recorded, as on the Pushgateway",
    "[push]") {
  collectors::PushRegistry registry;
  const std::string text = "text/plain; version=0.0.4";
  REQUIRE(registry.push({{"job", "a"}}, "# TYPE x gauge\nx 1\n", text, true, 1'000).isOk());
  // Another group may push x only as a gauge.
  CHECK(registry.push({{"job", "b"}}, "# TYPE x gauge\nx 2\n", text, true, 2'000).isOk());
  const Status refused = registry.push(
      {{"job", "c"}}, "# TYPE x histogram\nx_bucket{le=\"+Inf\"} 1\nx_sum 1\nx_count 1\n", text,
      true, 3'000);
  CHECK_THAT(refused.message(),
             Catch::Contains("family x is a histogram here but a gauge in the group {job=\"a\"}"));
  // Nor may a group that has it change its type while another group has it too.
  CHECK_FALSE(registry.push({{"job", "a"}}, "# TYPE x counter\nx 3\n", text, false, 4'000).isOk());
  // A body that does not parse is refused before it reaches a group: no failure recorded.
  CHECK_FALSE(registry.push({{"job", "b"}}, "x{ 1\n", text, true, 5'000).isOk());
  auto times = [&] {
    MetricBatch out;
    registry.snapshot(out);
    std::map<std::string, double> found;  // "family job", and x's type
    for (const MetricFamily& f : out.families()) {
      for (const MetricSample& sample : f.samples) {
        found[f.name + " " + sample.labels.back().value] = sample.value;
      }
      if (f.name == "x") {
        found["x type"] = static_cast<double>(f.type);
      }
    }
    return found;
  };
  // What the Pushgateway 1.5 shows for the same pushes: the refused group c exists with a
  // failure time and no success, the others keep their metrics.
  CHECK(times() ==
        std::map<std::string, double>{{"push_failure_time_seconds a", 4},
                                      {"push_failure_time_seconds b", 0},
                                      {"push_failure_time_seconds c", 3},
                                      {"push_time_seconds a", 1},
                                      {"push_time_seconds b", 2},
                                      {"push_time_seconds c", 0},
                                      {"x a", 1},
                                      {"x b", 2},
                                      {"x type", static_cast<double>(MetricType::kGauge)}});
  // Once no other group has x, its group may change its type.
  REQUIRE(registry.remove({{"job", "b"}}).isOk());
  CHECK(registry.push({{"job", "a"}}, "# TYPE x counter\nx 3\n", text, false, 6'000).isOk());
  CHECK(times()["x type"] == static_cast<double>(MetricType::kCounter));
}

TEST_CASE(
    "Pushed metrics: a family keeps the type vigil exports it with, and the push-time "
    "families are vigil's",
    "[push]") {
  collectors::PushRegistry registry;
  const std::string text = "text/plain; version=0.0.4";
  // What the agent answers: node_load1 is the loadavg collector's gauge.
  const collectors::PushRegistry::ExportedFamilies exported =
      [](const std::string& name) -> std::optional<collectors::PushRegistry::ExportedFamily> {
    if (name == "node_load1") {
      return collectors::PushRegistry::ExportedFamily{MetricType::kGauge,
                                                      "vigil's collector loadavg"};
    }
    return std::nullopt;
  };
  const Status refused = registry.push({{"job", "a"}}, "# TYPE node_load1 counter\nnode_load1 1\n",
                                       text, true, 1'000, exported);
  CHECK_THAT(refused.message(),
             Catch::Contains("family node_load1 is a counter here but a gauge exported by "
                             "vigil's collector loadavg"));
  // As a gauge it joins vigil's family, under the grouping key's labels.
  CHECK(registry
            .push({{"job", "b"}}, "# TYPE node_load1 gauge\nnode_load1 2\n", text, true, 2'000,
                  exported)
            .isOk());
  // Its series would be the ones vigil keeps for the group: as on the Pushgateway 1.5, the
  // push succeeds and they are dropped, the rest of the body kept.
  CHECK(registry
            .push({{"job", "b"}}, "push_time_seconds 5\npush_failure_time_seconds 6\nrows 7\n",
                  text, false, 3'000)
            .isOk());

  MetricBatch out;
  registry.snapshot(out);
  std::map<std::string, double> found;
  for (const MetricFamily& f : out.families()) {
    for (const MetricSample& sample : f.samples) {
      found[f.name + " " + sample.labels.back().value] = sample.value;
    }
  }
  CHECK(found == std::map<std::string, double>{{"node_load1 b", 2},
                                               {"push_failure_time_seconds a", 1},
                                               {"push_failure_time_seconds b", 0},
                                               {"push_time_seconds a", 0},
                                               {"push_time_seconds b", 3},
                                               {"rows b", 7}});
}

TEST_CASE(
    "Pushed metrics: series kept as the Pushgateway keeps them, and what it refuses as invalid "
    "refused and recorded",
    "[push]") {
  collectors::PushRegistry registry;
  const std::string text = "text/plain; version=0.0.4";
  auto series = [&] {
    MetricBatch out;
    registry.snapshot(out);
    std::map<std::string, double> found;  // "name+suffix{labels}"
    for (const MetricFamily& f : out.families()) {
      for (const MetricSample& sample : f.samples) {
        found[f.name + sample.suffix + labelsToString(sample.labels)] = sample.value;
      }
    }
    return found;
  };
  // A series without an instance gets an empty one; a pushed or grouping-key instance stays.
  REQUIRE(registry.push({{"job", "a"}}, "m 1\nm{instance=\"x\"} 2\n", text, true, 1'000).isOk());
  REQUIRE(registry.push({{"instance", "i"}, {"job", "b"}}, "m 3\n", text, true, 1'000).isOk());
  // A histogram without its +Inf bucket gets one, its count, after its last bucket.
  REQUIRE(registry
              .push({{"job", "h"}},
                    "# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_sum 1\nh_count 5\n"
                    "h_bucket{le=\"1\",p=\"/x\"} 1\nh_bucket{le=\"+Inf\",p=\"/x\"} 2\n"
                    "h_sum{p=\"/x\"} 1\nh_count{p=\"/x\"} 2\n",
                    text, true, 1'000)
              .isOk());
  {
    MetricBatch out;
    registry.snapshot(out);
    const MetricFamily* h = nullptr;
    for (const MetricFamily& f : out.families()) {
      h = f.name == "h" ? &f : h;
    }
    REQUIRE(h != nullptr);
    REQUIRE(h->samples.size() == 8);
    CHECK(h->samples[1].suffix == "_bucket");
    CHECK(labelsToString(h->samples[1].labels) == "{instance=\"\", job=\"h\", le=\"+Inf\"}");
    CHECK(h->samples[1].value == 5);
  }

  // Refused and recorded in the group (made for it): timestamps, a series twice (as written,
  // or once the grouping key's labels replace the pushed ones), a reserved label name.
  CHECK_THAT(registry.push({{"job", "t"}}, "m 1 1700000000000\n", text, true, 2'000).message(),
             Catch::Contains("must not carry timestamps"));
  CHECK_THAT(
      registry.push({{"job", "d"}}, "m{a=\"1\"} 1\nm{a=\"1\"} 2\n", text, true, 3'000).message(),
      Catch::Contains("the series m{a=\"1\", instance=\"\", job=\"d\"} is pushed twice"));
  CHECK_THAT(
      registry
          .push({{"db", "x"}, {"job", "d"}}, "m{db=\"1\"} 1\nm{db=\"2\"} 2\n", text, true, 4'000)
          .message(),
      Catch::Contains("is pushed twice (counting the grouping key's labels"));
  CHECK_THAT(registry.push({{"job", "r"}}, "m{__x=\"1\"} 1\n", text, true, 5'000).message(),
             Catch::Contains("label __x of m is reserved"));
  // A second TYPE line (or one after its samples) does not parse as Go parses it: refused
  // before it reaches a group, nothing recorded.
  CHECK_THAT(
      registry.push({{"job", "s"}}, "# TYPE q gauge\nq 1\n# TYPE q gauge\n", text, true, 6'000)
          .message(),
      Catch::Contains("line 3: a second TYPE line for q, or one after its samples"));

  const auto found = series();
  CHECK(found.at("m{instance=\"\", job=\"a\"}") == 1);
  CHECK(found.at("m{instance=\"x\", job=\"a\"}") == 2);
  CHECK(found.at("m{instance=\"i\", job=\"b\"}") == 3);
  CHECK(found.at("push_failure_time_seconds{instance=\"\", job=\"t\"}") == 2);
  CHECK(found.at("push_failure_time_seconds{instance=\"\", job=\"d\"}") == 3);
  CHECK(found.at("push_failure_time_seconds{db=\"x\", instance=\"\", job=\"d\"}") == 4);
  CHECK(found.at("push_failure_time_seconds{instance=\"\", job=\"r\"}") == 5);
  CHECK(found.count("push_failure_time_seconds{instance=\"\", job=\"s\"}") == 0);
  CHECK(found.count("push_time_seconds{instance=\"\", job=\"t\"}") == 1);
  CHECK(found.at("push_time_seconds{instance=\"\", job=\"t\"}") == 0);
}
