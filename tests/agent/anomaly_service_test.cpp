// Anomaly scoring in the agent on a real store: series selected, gauges scored on their value
// and counters on their rate, scores written back as anomaly_score series, limits counted.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include "agent/core/anomaly_service.h"
#include "agent/core/snapshot_registry.h"
#include "tests/support/collect.h"

using namespace vigil;

namespace {

constexpr int64_t kT0 = 1787133600000;
constexpr int64_t kStep = 15000;

// The newest value of the anomaly series `name` for `source_metric` at `now`, or -1.
double latest(Store& store, const std::string& name, const std::string& source_metric,
              int64_t now) {
  auto m1 = LabelMatcher::create(MatchType::kEqual, "__name__", name);
  auto m2 = LabelMatcher::create(MatchType::kEqual, "source_metric", source_metric);
  auto series = store.select({*m1, *m2}, now, now);
  if (series.empty() || series[0].samples.empty()) {
    return -1;
  }
  return series[0].samples.back().v;
}

double latestScore(Store& store, const std::string& source_metric, int64_t now) {
  return latest(store, "anomaly_score", source_metric, now);
}

std::string tempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("vigil-anomaly-" + name + "-" + std::to_string(::getpid()) + ".models"))
      .string();
}

AnomalyConfig config(std::vector<std::string> selectors, std::size_t max_models = 100) {
  AnomalyConfig c;
  c.selectors = std::move(selectors);
  c.max_models = max_models;
  c.interval = Duration(kStep);
  return c;
}

}  // namespace

TEST_CASE("Anomaly service: a gauge spike and a counter's rate jump are scored in the store",
          "[anomaly][agent]") {
  auto store = makeMemStore();
  SnapshotRegistry snapshots;
  AnomalyService service(*store, snapshots,
                         config({"node_load1", R"({__name__="requests_total"})"}), Duration(kStep));
  double counter = 0;
  double spike_score = 0;
  double rate_score = 0;
  double quiet_max = 0;
  for (int i = 0; i < 600; ++i) {
    const int64_t t = kT0 + i * kStep;
    const double load = 1.0 + 0.05 * ((i * 7919) % 13) / 13.0 + (i == 500 ? 5.0 : 0.0);
    counter += i >= 550 ? 500 : 10 + (i % 3);  // the rate jumps fiftyfold at 550
    REQUIRE(store->append({{"__name__", "node_load1"}}, t, load).isOk());
    REQUIRE(store->append({{"__name__", "requests_total"}, {"job", "api"}}, t, counter).isOk());
    service.runOnce(t);
    const double load_score = latestScore(*store, "node_load1", t);
    if (i == 500) {
      spike_score = load_score;
      // The evidence: the value scored, outside the range the model expected.
      CHECK(latest(*store, "anomaly_observed", "node_load1", t) == load);
      CHECK(latest(*store, "anomaly_expected_upper", "node_load1", t) < load);
      CHECK(latest(*store, "anomaly_expected_lower", "node_load1", t) > 0.9);
    } else if (i > 100 && i < 500) {
      CHECK(latest(*store, "anomaly_expected_lower", "node_load1", t) <= load);
      CHECK(latest(*store, "anomaly_expected_upper", "node_load1", t) >= load);
      quiet_max = std::max(quiet_max, load_score);
    }
    if (i >= 550 && i < 555) {
      rate_score = std::max(rate_score, latestScore(*store, "requests_total", t));
    }
    if (i == 550) {  // a counter's evidence is its rate: 500 per 15 s, against about 0.73/s
      CHECK(latest(*store, "anomaly_observed", "requests_total", t) == Approx(500.0 / 15));
      CHECK(latest(*store, "anomaly_expected_upper", "requests_total", t) < 2);
      CHECK(latest(*store, "anomaly_expected_lower", "requests_total", t) >= 0);
    }
  }
  CHECK(spike_score > 0.99);
  CHECK(quiet_max < 0.7);
  CHECK(rate_score > 0.99);
  // The series keeps the original labels next to source_metric.
  auto m = LabelMatcher::create(MatchType::kEqual, "source_metric", "requests_total");
  auto score_name = LabelMatcher::create(MatchType::kEqual, "__name__", "anomaly_score");
  auto series = store->series({*m, *score_name});
  REQUIRE(series.size() == 1);
  CHECK(series[0] == LabelSet{{"__name__", "anomaly_score"},
                              {"job", "api"},
                              {"source_metric", "requests_total"}});
  // And on /metrics, through the snapshot.
  bool published = false;
  for (const auto& batch : snapshots.all()) {
    for (const auto& f : batch->families()) {
      published = published || (f.name == "anomaly_score" && f.samples.size() == 2);
    }
  }
  CHECK(published);
  MetricBatch stats;
  service.appendStats(stats);
  bool models_reported = false;
  for (const auto& f : stats.families()) {
    if (f.name == "vigil_anomaly_models") {
      models_reported = f.samples[0].value == 2;
    }
  }
  CHECK(models_reported);
}

TEST_CASE("Anomaly service: the model limit holds and refusals are counted", "[anomaly][agent]") {
  auto store = makeMemStore();
  SnapshotRegistry snapshots;
  AnomalyService service(*store, snapshots, config({R"({__name__=~"g.*"})"}, 3), Duration(kStep));
  for (int i = 0; i < 5; ++i) {
    REQUIRE(store->append({{"__name__", "g" + std::to_string(i)}}, kT0, 1.0).isOk());
  }
  service.runOnce(kT0);
  MetricBatch stats;
  service.appendStats(stats);
  for (const auto& f : stats.families()) {
    if (f.name == "vigil_anomaly_models") {
      CHECK(f.samples[0].value == 3);
    }
    if (f.name == "vigil_anomaly_models_refused_total") {
      CHECK(f.samples[0].value == 2);
    }
  }
}

TEST_CASE("Anomaly service: models survive a restart through their file", "[anomaly][agent]") {
  // Two agents see the same series; one is restarted halfway, its models saved and loaded.
  // Both must then score alike: the restart forgot nothing.
  auto store_a = makeMemStore();
  auto store_b = makeMemStore();
  SnapshotRegistry snapshots_a;
  SnapshotRegistry snapshots_b;
  auto cfg = config({"node_load1", "requests_total"});
  cfg.multivariate = {{"load", "node_load1"}, {"requests", "sum(irate(requests_total[1m]))"}};
  AnomalyService a(*store_a, snapshots_a, cfg, Duration(kStep));
  auto b = std::make_unique<AnomalyService>(*store_b, snapshots_b, cfg, Duration(kStep));
  const std::string path = tempPath("restart");
  double counter = 0;
  for (int i = 0; i < 400; ++i) {
    const int64_t t = kT0 + i * kStep;
    const double load = 1.0 + 0.1 * ((i * 7919) % 17) / 17.0 + (i == 390 ? 3.0 : 0.0);
    counter += 10 + (i % 5);
    for (Store* s : {store_a.get(), store_b.get()}) {
      REQUIRE(s->append({{"__name__", "node_load1"}}, t, load).isOk());
      REQUIRE(s->append({{"__name__", "requests_total"}}, t, counter).isOk());
    }
    a.runOnce(t);
    b->runOnce(t);
    if (i == 200) {
      REQUIRE(b->saveModels(path).isOk());
      b = std::make_unique<AnomalyService>(*store_b, snapshots_b, cfg, Duration(kStep));
      REQUIRE(b->loadModels(path).isOk());
    }
    for (const char* name : {"node_load1", "requests_total"}) {
      INFO(name << " at " << i);
      REQUIRE(latestScore(*store_a, name, t) == latestScore(*store_b, name, t));
    }
    auto node_score =
        LabelMatcher::create(MatchType::kEqual, "__name__", "anomaly_multivariate_score");
    auto node_a = store_a->select({*node_score}, t, t);
    auto node_b = store_b->select({*node_score}, t, t);
    INFO("multivariate at " << i);
    REQUIRE(node_a.size() == node_b.size());
    if (!node_a.empty()) {
      REQUIRE(node_a[0].samples.back().v == node_b[0].samples.back().v);
    }
  }
  std::remove(path.c_str());
  // A corrupt file is refused with its name, and nothing of it is used.
  const std::string bad = tempPath("corrupt");
  std::FILE* f = std::fopen(bad.c_str(), "wb");
  std::fputs("vigil-anomaly-models/2garbage", f);
  std::fclose(f);
  const Status st = b->loadModels(bad);
  CHECK(st.code() == StatusCode::kInvalidArgument);
  CHECK(st.message().find(bad) != std::string::npos);
  CHECK(b->loadModels(bad + ".missing").isOk());  // none yet: nothing to load
  std::remove(bad.c_str());
  // Models of an older vigil (another file layout, or another state format of the detector)
  // are set aside: the agent starts afresh instead of failing or misreading them.
  using namespace std::string_literals;
  for (const std::string& older : {"vigil-anomaly-models/1\x08\0\0\0ensemble"s,
                                   "vigil-anomaly-models/2\x0a\0\0\0ensemble/1"s}) {
    f = std::fopen(bad.c_str(), "wb");
    std::fwrite(older.data(), 1, older.size(), f);
    std::fclose(f);
    CHECK(b->loadModels(bad).isOk());
  }
  std::remove(bad.c_str());
}

TEST_CASE("Anomaly service: the node's resources are scored together, with the evidence",
          "[anomaly][agent]") {
  // Requests drive CPU (twice the requests' rate, plus noise); memory is independent. At
  // cycle 500 the CPU starts moving against the requests: each series alone keeps its usual
  // range, only their relation breaks.
  auto store = makeMemStore();
  SnapshotRegistry snapshots;
  AnomalyConfig cfg = config({});
  cfg.multivariate = {{"requests", "sum(irate(requests_total[1m]))"},
                      {"cpu", "cpu_busy"},
                      {"memory", "memory_used"}};
  AnomalyService service(*store, snapshots, cfg, Duration(kStep));
  std::mt19937_64 rng(5);
  std::normal_distribution<double> unit(0, 1);
  double requests = 0;
  double quiet_max = 0;
  int caught = 0;
  double blame_requests_cpu = 0;
  double blame_memory = 0;
  for (int i = 0; i < 560; ++i) {
    const int64_t t = kT0 + i * kStep;
    const double load = unit(rng);
    const double rate = 100 + 20 * load;
    requests += rate * kStep / 1000.0;
    const double cpu = 4 + (i >= 500 ? -1 : 1) * 0.8 * load + 0.05 * unit(rng);
    REQUIRE(store->append({{"__name__", "requests_total"}}, t, requests).isOk());
    REQUIRE(store->append({{"__name__", "cpu_busy"}}, t, cpu).isOk());
    REQUIRE(store->append({{"__name__", "memory_used"}}, t, 1e9 + 1e6 * unit(rng)).isOk());
    service.runOnce(t);
    auto name = LabelMatcher::create(MatchType::kEqual, "__name__", "anomaly_multivariate_score");
    auto scored = store->select({*name}, t, t);
    if (i < 10) {
      continue;  // rate() needs two samples; the model needs its warm-up
    }
    REQUIRE(scored.size() == 1);
    const double score = scored[0].samples.back().v;
    if (i >= 200 && i < 500) {
      quiet_max = std::max(quiet_max, score);
    }
    if (i >= 502 && score > 0.9999) {
      ++caught;
      auto share =
          LabelMatcher::create(MatchType::kEqual, "__name__", "anomaly_multivariate_contribution");
      for (const auto& s : store->select({*share}, t, t)) {
        const std::string feature =
            s.labels->at(0).name == "feature" ? s.labels->at(0).value : s.labels->at(1).value;
        (feature == "memory" ? blame_memory : blame_requests_cpu) += s.samples.back().v;
      }
    }
  }
  INFO("quiet max " << quiet_max << ", caught " << caught);
  CHECK(quiet_max < 0.9999);
  CHECK(caught >= 5);  // moments where the load is far enough from its mean to show it
  CHECK(blame_requests_cpu > 10 * blame_memory);
  MetricBatch stats;
  service.appendStats(stats);
  bool counted = false;
  for (const auto& f : stats.families()) {
    counted = counted || (f.name == "vigil_anomaly_multivariate_observations_total" &&
                          f.samples[0].value > 500);
  }
  CHECK(counted);
}

TEST_CASE("Anomaly service: off, it runs no cycles until a reload turns it on",
          "[anomaly][agent]") {
  auto store = makeMemStore();
  SnapshotRegistry snapshots;
  AnomalyConfig off = config({"node_load1"});
  off.enabled = false;
  off.interval = Duration(10);
  AnomalyService service(*store, snapshots, off, Duration(10));
  auto cycles = [&] {
    MetricBatch stats;
    service.appendStats(stats);
    return test::flattenBatch(stats).at("vigil_anomaly_cycles_total");
  };
  service.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(cycles() == 0);
  // The sleeping loop wakes for the reload, not only after an interval.
  AnomalyConfig on = off;
  on.enabled = true;
  service.reconfigure(on, Duration(10));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (cycles() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  CHECK(cycles() > 0);
  service.stop();
}
