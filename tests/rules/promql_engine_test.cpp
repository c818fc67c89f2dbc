// Expected values come from promtool 2.42 (`promtool test rules`) on the same input series.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>

#include "tests/support/labels.h"

#include "vigil/rules/promql_engine.h"
#include "vigil/rules/promql_parser.h"

using namespace vigil;
using namespace vigil::promql;

using vigil::test::L;

namespace {

// input_series notation, the subset used here: "start+stepxN" runs and "stale".
void load(Store& store, const LabelSet& labels, std::vector<std::optional<double>> values,
          int64_t interval_ms = 15000) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i]) {
      REQUIRE(store.append(labels, static_cast<int64_t>(i) * interval_ms, *values[i]).isOk());
    }
  }
}

std::vector<std::optional<double>> run(double start, double step, int n) {
  std::vector<std::optional<double>> out;
  for (int i = 0; i <= n; ++i) {
    out.push_back(start + step * i);
  }
  return out;
}

struct Fixture {
  std::unique_ptr<Store> store = makeMemStore();
  Fixture() {
    load(*store, L({{"__name__", "http_requests_total"}, {"job", "api"}, {"instance", "a"}}),
         run(0, 15, 20));
    auto b = run(0, 30, 10);
    auto b2 = run(0, 30, 10);
    b.insert(b.end(), b2.begin(), b2.end());
    load(*store, L({{"__name__", "http_requests_total"}, {"job", "api"}, {"instance", "b"}}), b);
    load(*store, L({{"__name__", "node_info"}, {"instance", "a"}, {"version", "1.0"}}),
         run(1, 0, 20));
    load(*store, L({{"__name__", "node_info"}, {"instance", "b"}, {"version", "2.0"}}),
         run(1, 0, 20));
    load(*store, L({{"__name__", "req_bucket"}, {"le", "0.1"}}), run(0, 10, 20));
    load(*store, L({{"__name__", "req_bucket"}, {"le", "0.5"}}), run(0, 20, 20));
    load(*store, L({{"__name__", "req_bucket"}, {"le", "+Inf"}}), run(0, 25, 20));
    auto g = run(1, 1, 4);
    g.push_back(staleNaN());
    load(*store, L({{"__name__", "gauge"}, {"a", "x"}}), g);
  }

  Vector vec(const std::string& text, int64_t t_ms) {
    auto parsed = parse(text);
    INFO(text << (parsed.error ? parsed.error->toString() : ""));
    REQUIRE(parsed.expr);
    Engine engine(*store);
    auto r = engine.instant(*parsed.expr, t_ms);
    INFO(r.status().toString());
    REQUIRE(r.isOk());
    REQUIRE(std::holds_alternative<Vector>(*r));
    auto v = std::get<Vector>(*r);
    std::sort(v.begin(), v.end(), [](const InstantSample& a, const InstantSample& b) {
      return a.metric.get() < b.metric.get();
    });
    return v;
  }

  Status error(const std::string& text, int64_t t_ms) {
    auto parsed = parse(text);
    REQUIRE(parsed.expr);
    Engine engine(*store);
    auto r = engine.instant(*parsed.expr, t_ms);
    REQUIRE_FALSE(r.isOk());
    return r.status();
  }
};

constexpr int64_t kMin = 60 * 1000;

}  // namespace

TEST_CASE("PromQL engine: rates with extrapolation and counter resets", "[rules][engine]") {
  Fixture f;
  auto rate = f.vec("rate(http_requests_total[1m])", 5 * kMin);
  REQUIRE(rate.size() == 2);
  CHECK(rate[0].metric == L({{"instance", "a"}, {"job", "api"}}));
  CHECK(rate[0].v == Approx(1));
  CHECK(rate[1].v == Approx(2));
  auto increase = f.vec("increase(http_requests_total{instance=\"b\"}[2m])", 3 * kMin);
  REQUIRE(increase.size() == 1);
  CHECK(increase[0].v == Approx(210));
}

TEST_CASE("PromQL engine: lookback and staleness", "[rules][engine]") {
  Fixture f;
  auto v = f.vec("gauge", 1 * kMin);
  REQUIRE(v.size() == 1);
  CHECK(v[0].v == 5);
  CHECK(v[0].metric == L({{"__name__", "gauge"}, {"a", "x"}}));
  // The stale marker at 75 s ends the series at once, not after five minutes.
  CHECK(f.vec("gauge", 90 * 1000).empty());
  // Without a marker, a sample is visible for the 5 m lookback and then gone.
  CHECK(f.vec("node_info", 300 * 1000 + 5 * kMin).size() == 2);
  CHECK(f.vec("node_info", 300 * 1000 + 5 * kMin + 1).empty());
}

TEST_CASE("PromQL engine: functions agree with promtool", "[rules][engine]") {
  Fixture f;
  auto hq = f.vec("histogram_quantile(0.9, rate(req_bucket[1m]))", 5 * kMin);
  REQUIRE(hq.size() == 1);
  CHECK(hq[0].metric.empty());
  CHECK(hq[0].v == Approx(0.5));
  auto pl = f.vec("predict_linear(http_requests_total{instance=\"a\"}[2m], 60)", 5 * kMin);
  REQUIRE(pl.size() == 1);
  CHECK(pl[0].v == Approx(360));
  auto hw = f.vec("holt_winters(http_requests_total{instance=\"a\"}[2m], 0.5, 0.5)", 5 * kMin);
  REQUIRE(hw.size() == 1);
  CHECK(hw[0].v == Approx(300));
  auto sd = f.vec("stddev_over_time(http_requests_total{instance=\"b\"}[1m])", 5 * kMin);
  REQUIRE(sd.size() == 1);
  CHECK(sd[0].v == Approx(42.42640687119285));
  auto lr = f.vec("label_replace(node_info, \"major\", \"v$1\", \"version\", \"(\\\\d+)\\\\..*\")",
                  1 * kMin);
  REQUIRE(lr.size() == 2);
  CHECK(lr[0].metric ==
        L({{"__name__", "node_info"}, {"instance", "a"}, {"major", "v1"}, {"version", "1.0"}}));
  auto absent = f.vec("absent(nonexistent{job=\"x\", instance=~\"a.*\"})", kMin);
  REQUIRE(absent.size() == 1);
  CHECK(absent[0].metric == L({{"job", "x"}}));
  CHECK(f.vec("absent(node_info)", kMin).empty());
  auto ts = f.vec("timestamp(gauge)", 70 * 1000);
  REQUIRE(ts.size() == 1);
  CHECK(ts[0].v == 60);
}

TEST_CASE("PromQL engine: aggregations", "[rules][engine]") {
  Fixture f;
  auto q = f.vec("quantile(0.5, http_requests_total)", 2 * kMin);
  REQUIRE(q.size() == 1);
  CHECK(q[0].v == Approx(180));
  auto cv = f.vec("count_values(\"v\", node_info)", kMin);
  REQUIRE(cv.size() == 1);
  CHECK(cv[0].metric == L({{"v", "1"}}));
  CHECK(cv[0].v == 2);
  auto sum = f.vec("sum by (job) (http_requests_total)", 2 * kMin);
  REQUIRE(sum.size() == 1);
  CHECK(sum[0].metric == L({{"job", "api"}}));
  CHECK(sum[0].v == 120 + 240);
  auto top = f.vec("topk(1, http_requests_total)", 2 * kMin);
  REQUIRE(top.size() == 1);
  CHECK(top[0].metric ==
        L({{"__name__", "http_requests_total"}, {"instance", "b"}, {"job", "api"}}));
  auto avg = f.vec("avg without (instance) (http_requests_total)", 2 * kMin);
  REQUIRE(avg.size() == 1);
  CHECK(avg[0].metric == L({{"job", "api"}}));
  CHECK(avg[0].v == 180);
}

TEST_CASE("PromQL engine: vector matching", "[rules][engine]") {
  Fixture f;
  auto joined = f.vec("http_requests_total * on(instance) group_left(version) node_info", 2 * kMin);
  REQUIRE(joined.size() == 2);
  CHECK(joined[0].metric == L({{"instance", "a"}, {"job", "api"}, {"version", "1.0"}}));
  CHECK(joined[0].v == 120);
  auto one = f.vec("http_requests_total / on(instance) node_info", 2 * kMin);
  REQUIRE(one.size() == 2);
  CHECK(one[0].metric == L({{"instance", "a"}}));
  auto cmp = f.vec("http_requests_total > 150", 2 * kMin);
  REQUIRE(cmp.size() == 1);
  CHECK(cmp[0].metric ==
        L({{"__name__", "http_requests_total"}, {"instance", "b"}, {"job", "api"}}));
  auto cmp_bool = f.vec("http_requests_total > bool 150", 2 * kMin);
  REQUIRE(cmp_bool.size() == 2);
  CHECK(cmp_bool[0].v == 0);
  CHECK(cmp_bool[0].metric == L({{"instance", "a"}, {"job", "api"}}));
  CHECK(f.vec("http_requests_total and on(instance) node_info{version=\"2.0\"}", 2 * kMin).size() ==
        1);
  CHECK(f.vec("http_requests_total unless on(instance) node_info{version=\"2.0\"}", 2 * kMin)
            .size() == 1);
  CHECK(f.vec("node_info or http_requests_total", 2 * kMin).size() == 4);
  Status many = f.error("http_requests_total + on(job) node_info", 2 * kMin);
  CHECK_THAT(many.message(), Catch::Contains("many-to-many matching not allowed"));
}

TEST_CASE("PromQL engine: range queries step through time", "[rules][engine]") {
  Fixture f;
  auto parsed = parse("rate(http_requests_total{instance=\"a\"}[1m])");
  Engine engine(*f.store);
  auto r = engine.range(*parsed.expr, 2 * kMin, 4 * kMin, 30000);
  REQUIRE(r.isOk());
  REQUIRE(r->size() == 1);
  REQUIRE((*r)[0].points.size() == 5);
  for (const auto& p : (*r)[0].points) {
    CHECK(p.v == Approx(1));
  }
  auto scalar = parse("time()");
  auto rs = engine.range(*scalar.expr, 0, 60000, 15000);
  REQUIRE(rs.isOk());
  REQUIRE(rs->size() == 1);
  CHECK((*rs)[0].points.back().v == 60);
}

TEST_CASE("PromQL engine: every step of a range query is the instant query at that time",
          "[rules][engine]") {
  // Range queries take their own paths (window functions computed for all steps at once,
  // aggregations of those, windows and lookbacks advanced step by step, result series
  // collected by the series they come from); instant queries do not. Series here start and
  // stop mid-range, go stale, reset, and one is a gauge with NaN.
  auto store = makeMemStore();
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> step(0, 5);
  for (int i = 0; i < 24; ++i) {
    const LabelSet counter{{"__name__", "requests_total"},
                           {"instance", "i" + std::to_string(i % 4)},
                           {"path", "/p" + std::to_string(i / 4)}};
    const LabelSet gauge{{"__name__", "free_bytes"},
                         {"instance", "i" + std::to_string(i % 4)},
                         {"path", "/p" + std::to_string(i / 4)}};
    const int first = (i % 5) * 7;
    const int last = 120 - (i % 3) * 11;
    double c = 0;
    for (int k = first; k <= last; ++k) {
      c = (i % 6 == 0 && k == 60) ? 0 : c + step(rng);  // a counter reset in some
      const int64_t t = static_cast<int64_t>(k) * 15000;
      REQUIRE(store->append(counter, t, c).isOk());
      const double g = (i == 5 && k == 70) ? std::nan("") : 1000 - k * (i % 4) + step(rng);
      REQUIRE(store->append(gauge, t, g).isOk());
    }
    if (i % 4 == 1) {  // a staleness marker after the last sample
      REQUIRE(store->append(counter, (last + 1) * 15000LL, std::bit_cast<double>(kStaleNaNBits))
                  .isOk());
    }
  }
  Engine engine(*store);
  const int64_t start = 10 * kMin;
  const int64_t end = 30 * kMin;
  const int64_t step_ms = 15000;
  for (const char* query : {
           "rate(requests_total[2m])",
           "sum by (instance) (rate(requests_total[2m]))",
           "avg without (path) (increase(requests_total[5m]))",
           "max by (path) (max_over_time(free_bytes[3m]))",
           "stddev(deriv(free_bytes[4m]))",
           "count by (instance) (changes(free_bytes[2m]))",
           "predict_linear(free_bytes[5m], 2 * 1800) < 900",
           "free_bytes / on (instance, path) rate(requests_total[1m])",
           "sum by (instance) (rate(requests_total{path=~\"/p[0-2]\"}[2m])) / sum by (instance) "
           "(rate(requests_total[2m]))",
           "free_bytes > 500 and requests_total",
           "last_over_time(free_bytes[1m]) - free_bytes offset 1m",
           "max_over_time(rate(requests_total[1m])[5m:30s])",
       }) {
    auto parsed = parse(query);
    INFO(query);
    REQUIRE(parsed.expr);
    auto range = engine.range(*parsed.expr, start, end, step_ms);
    REQUIRE(range.isOk());
    // The range result, by series and step.
    std::map<std::string, std::map<int64_t, double>> by_series;
    for (const auto& series : *range) {
      for (const auto& p : series.points) {
        by_series[labelsToString(series.metric)][p.t] = p.v;
      }
    }
    std::size_t points = 0;
    for (int64_t t = start; t <= end; t += step_ms) {
      auto instant = engine.instant(*parsed.expr, t);
      REQUIRE(instant.isOk());
      for (const auto& s : std::get<Vector>(*instant)) {
        INFO(labelsToString(s.metric) << " at " << t);
        auto it = by_series.find(labelsToString(s.metric));
        REQUIRE(it != by_series.end());
        auto at = it->second.find(t);
        REQUIRE(at != it->second.end());
        if (std::isnan(s.v)) {
          CHECK(std::isnan(at->second));
        } else {
          CHECK(at->second == s.v);  // the same arithmetic in the same order: the same bits
        }
        it->second.erase(at);
        ++points;
      }
    }
    CHECK(points > 0);
    for (const auto& [metric, left] : by_series) {
      INFO(metric);
      CHECK(left.empty());  // no point in the range result that no instant query gave
    }
  }
}

TEST_CASE("PromQL engine: a query past its timeout stops with kDeadlineExceeded",
          "[rules][engine]") {
  auto store = makeMemStore();
  REQUIRE(store->append({{"__name__", "up"}}, 0, 1).isOk());
  EngineOptions options;
  options.timeout = std::chrono::milliseconds(20);
  Engine engine(*store, options);
  // About 86 million subquery steps: far more than 20 ms of work.
  auto expr = parse("sum_over_time(vector(1)[1000d:1s])");
  REQUIRE(expr.expr);
  const auto started = std::chrono::steady_clock::now();
  auto r = engine.instant(*expr.expr, 1000LL * 86400 * 1000);
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(r.isOk());
  CHECK(r.status().code() == StatusCode::kDeadlineExceeded);
  CHECK(r.status().message() == "query timed out in expression evaluation");
  CHECK(took < std::chrono::seconds(2));
  // Without a timeout the same engine answers a cheap query.
  auto cheap = Engine(*store).instant(*parse("up").expr, 1000);
  CHECK(cheap.isOk());
}

TEST_CASE("PromQL engine: times at the ends of int64 saturate instead of wrapping around",
          "[rules][engine]") {
  Fixture f;
  constexpr int64_t kLast = std::numeric_limits<int64_t>::max();
  constexpr int64_t kFirst = std::numeric_limits<int64_t>::min();
  Engine engine(*f.store);
  // A time near the start of time, moved back by an offset and a range past it.
  CHECK(f.vec("http_requests_total offset 1y", kFirst + 10).empty());
  CHECK(f.vec("rate(http_requests_total[5m] offset 1y)", kFirst + 10).empty());
  CHECK(f.vec("max_over_time(http_requests_total[5m:1m] offset 1y)", kFirst + 10).empty());
  // The data still answers from a far time through @.
  CHECK(f.vec("http_requests_total @ 300", kFirst).size() == 2);
  CHECK(f.vec("http_requests_total @ 300", kLast).size() == 2);
  // A subquery whose steps reach the last representable millisecond stops there.
  auto sub = f.vec("count_over_time(vector(1)[10s:1s])", kLast);
  REQUIRE(sub.size() == 1);
  CHECK(sub[0].v == 10);
  // A range query ending at the last millisecond: every step, then no wrap to the past.
  auto time = parse("time()");
  auto r = engine.range(*time.expr, kLast - 3000, kLast, 1000);
  REQUIRE(r.isOk());
  REQUIRE(r->size() == 1);
  CHECK((*r)[0].points.size() == 4);
  // A range longer than int64 can count is refused, not wrapped.
  auto all = engine.range(*time.expr, kFirst, kLast, 1000);
  REQUIRE_FALSE(all.isOk());
  CHECK(all.status().code() == StatusCode::kInvalidArgument);
}

TEST_CASE("PromQL engine: nesting is bounded, and what the bound admits parses and evaluates",
          "[rules][engine]") {
  auto store = makeMemStore();
  Engine engine(*store);
  auto repeat = [](const std::string& s, int n) {
    std::string out;
    for (int i = 0; i < n; ++i) {
      out += s;
    }
    return out;
  };
  // Each shape that nests, built `n` deep: its value is 1.
  const std::vector<std::pair<const char*, std::function<std::string(int)>>> shapes = {
      {"parentheses", [&](int n) { return repeat("(", n) + "1" + repeat(")", n); }},
      {"calls", [&](int n) { return repeat("abs(", n) + "vector(1)" + repeat(")", n); }},
      {"aggregations", [&](int n) { return repeat("sum(", n) + "vector(1)" + repeat(")", n); }},
      {"unary minus", [&](int n) { return repeat("- -", n) + "vector(1)"; }},
      {"^ chain", [&](int n) { return "1" + repeat(" ^ 1", n); }},
      {"or chain", [&](int n) { return "vector(1)" + repeat(" or vector(2)", n); }},
  };
  for (const auto& [name, build] : shapes) {
    INFO(name);
    auto admitted = parse(build(kMaxExprDepth / 2 - 2));
    REQUIRE(admitted.expr);
    auto r = engine.instant(*admitted.expr, 1000);
    REQUIRE(r.isOk());
    if (auto* s = std::get_if<Scalar>(&*r)) {
      CHECK(s->v == 1);
    } else {
      const auto& v = std::get<Vector>(*r);
      REQUIRE(v.size() == 1);
      CHECK(v[0].v == 1);
    }
    // Thousands deep (a fuzzer's 1,300 parentheses overflowed the stack): an error, no crash.
    auto refused = parse(build(20'000));
    REQUIRE(refused.error);
    CHECK_FALSE(refused.expr);
    CHECK_THAT(refused.error->message,
               Catch::Contains("nested more than " + std::to_string(kMaxExprDepth) + " levels"));
  }
}
