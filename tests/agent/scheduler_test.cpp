// The collector scheduler hands a collector back a batch it published earlier, once nothing
// reads it any more: as a spare to collectors that take one (scrapes, which overwrite values
// instead of rebuilding label sets), recycled to the others (whose add() takes back last
// cycle's label sets).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "agent/core/scheduler.h"
#include "tests/support/collect.h"

using namespace vigil;
using namespace std::chrono_literals;

namespace {

// Counts the spares it is offered and takes them (moving their samples into its batch), if it
// takes spares; else counts the batches handed to it recycled (last cycle's samples kept aside).
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
    auto& family = out.family(metric_, "A value.", MetricType::kGauge);
    if (!take_ && !family.previous.empty()) {
      ++reused_;
    }
    MetricBatch::add(family, cycles_);
    if (take_) {
      out.setLayout(42);
    }
    return Status::ok();
  }
  bool takesSpareBatches() const override { return take_; }

 private:
  std::string metric_;
  bool take_;
  std::atomic<int>& cycles_;
  std::atomic<int>& offered_;
  std::atomic<int>& reused_;
};

// Every cycle, families of two different shapes in turn: the odd cycles "odd" and "both",
// the even ones "both" and "even" (a device appearing and going away).
class ShapeShifter : public Collector {
 public:
  explicit ShapeShifter(std::atomic<int>& cycles) : cycles_(cycles) {}
  Status collect(const CollectContext&, MetricBatch& out) override {
    const int cycle = ++cycles_;
    if (!out.empty()) {
      wrong_ = true;  // a batch must come empty
    }
    if (cycle % 2 == 1) {
      out.addSingle("shape_odd", "Odd.", MetricType::kGauge, cycle);
    }
    MetricBatch::add(
        out.family("shape_both", cycle % 2 == 1 ? "Odd help." : "Even help.", MetricType::kGauge),
        {{"cycle", std::to_string(cycle)}}, cycle);
    if (cycle % 2 == 0) {
      out.addSingle("shape_even", "Even.", MetricType::kCounter, cycle);
    }
    return Status::ok();
  }
  bool wrong() const { return wrong_; }

 private:
  std::atomic<int>& cycles_;
  std::atomic<bool> wrong_{false};
};

// Counts its cycles; on the cycle `hang_on` it blocks until released (a dead NFS mount).
class Hanger : public Collector {
 public:
  Hanger(int hang_on, std::atomic<int>& cycles, std::atomic<bool>& release)
      : hang_on_(hang_on), cycles_(cycles), release_(release) {}
  Status collect(const CollectContext&, MetricBatch& out) override {
    if (++cycles_ == hang_on_) {
      hanging.store(true);
      while (!release_.load()) {
        std::this_thread::sleep_for(1ms);
      }
      hanging.store(false);
    }
    out.addSingle("hanger_cycles", "Cycles.", MetricType::kCounter, cycles_);
    return Status::ok();
  }
  std::atomic<bool> hanging{false};

 private:
  int hang_on_;
  std::atomic<int>& cycles_;
  std::atomic<bool>& release_;
};

// A collector's health series, e.g. "vigil_collector_skipped_total" of "hanger"; -1 if absent.
double selfMetric(const SelfMetrics& self_metrics, const std::string& name,
                  const std::string& collector) {
  MetricBatch batch;
  self_metrics.snapshot(batch);
  const auto samples = test::flattenBatch(batch);
  const auto it = samples.find(name + "|collector=" + collector);
  return it == samples.end() ? -1 : it->second;
}

// Records the round of each of its cycles.
class RoundRecorder : public Collector {
 public:
  explicit RoundRecorder(std::vector<uint64_t>& rounds, std::mutex& mu)
      : rounds_(rounds), mu_(mu) {}
  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    std::lock_guard lock(mu_);
    rounds_.push_back(ctx.round);
    out.addSingle("rounds", "Rounds.", MetricType::kGauge, 1);
    return Status::ok();
  }

 private:
  std::vector<uint64_t>& rounds_;
  std::mutex& mu_;
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
  // The other is never offered one; from the third cycle on, it gets the batch of two cycles
  // before, recycled.
  CHECK(other_offered.load() == 0);
  CHECK(other_reused.load() >= other_cycles.load() - 3);
  // And the store got each cycle's values through the reused batches: one series, rising.
  auto series = store->select({*LabelMatcher::create(MatchType::kEqual, "__name__", "taker_value")},
                              0, INT64_MAX);
  REQUIRE(series.size() == 1);
  CHECK(series[0].samples.size() >= 30);
  for (std::size_t i = 1; i < series[0].samples.size(); ++i) {
    CHECK(series[0].samples[i].v > series[0].samples[i - 1].v);
  }
}

TEST_CASE("Scheduler: what is published each cycle is that cycle's batch, batches recycled",
          "[agent][scheduler]") {
  auto store = makeMemStore();
  SnapshotRegistry snapshots;
  SelfMetrics self_metrics("test", "test");
  std::atomic<int> cycles{0};
  auto collector = std::make_unique<ShapeShifter>(cycles);
  const ShapeShifter* shifter = collector.get();
  std::vector<CollectorScheduler::Entry> entries;
  entries.push_back(entry("shifter", std::move(collector)));
  CollectorScheduler scheduler(std::move(entries), HostPaths{}, *store, snapshots, self_metrics);
  scheduler.start();
  int checked = 0;
  while (cycles.load() < 40) {
    for (const auto& batch : snapshots.all()) {
      // Read while the scheduler keeps collecting: a published batch is never refilled.
      std::vector<std::string> names;
      for (const auto& f : batch->families()) {
        names.push_back(f.name + "|" + f.help + "|" + std::to_string(f.samples.size()));
      }
      REQUIRE(batch->families().size() == 2);
      const auto& both = batch->families()[batch->families()[0].name == "shape_odd" ? 1 : 0];
      REQUIRE(both.samples.size() == 1);
      const int cycle = static_cast<int>(both.samples[0].value);
      CHECK(both.samples[0].labels == LabelSet{{"cycle", std::to_string(cycle)}});
      if (cycle % 2 == 1) {
        CHECK(names == std::vector<std::string>{"shape_odd|Odd.|1", "shape_both|Odd help.|1"});
      } else {
        CHECK(names == std::vector<std::string>{"shape_both|Even help.|1", "shape_even|Even.|1"});
      }
      ++checked;
    }
    std::this_thread::sleep_for(5ms);
  }
  scheduler.stop(1000ms);
  CHECK(checked > 20);
  CHECK_FALSE(shifter->wrong());
  // The store saw each family in the cycles that had it (and a staleness marker in the others).
  auto odd = store->select({*LabelMatcher::create(MatchType::kEqual, "__name__", "shape_odd")}, 0,
                           INT64_MAX);
  REQUIRE(odd.size() == 1);
  int values = 0;
  for (const auto& sample : odd[0].samples) {
    if (!std::isnan(sample.v)) {
      CHECK(static_cast<int>(sample.v) % 2 == 1);
      ++values;
    }
  }
  CHECK(values >= 15);
}

namespace {

// A hanger and, behind it in the same round, another collector.
struct HangerAndOther {
  std::unique_ptr<Store> store = makeMemStore();
  SnapshotRegistry snapshots;
  SelfMetrics self_metrics{"test", "test"};
  std::atomic<int> hanger_cycles{0}, other_cycles{0}, offered{0}, reused{0};
  std::atomic<bool> release{false};
  const Hanger* hanger = nullptr;

  CollectorScheduler scheduler(int hang_on, std::chrono::milliseconds interval) {
    auto h = std::make_unique<Hanger>(hang_on, hanger_cycles, release);
    hanger = h.get();
    std::vector<CollectorScheduler::Entry> entries;
    entries.push_back(entry("hanger", std::move(h)));
    entries.push_back(entry("other", std::make_unique<SpareCounter>(
                                         "other_value", false, other_cycles, offered, reused)));
    for (auto& e : entries) {
      e.settings.interval = interval;
    }
    return CollectorScheduler(std::move(entries), HostPaths{}, *store, snapshots, self_metrics);
  }
};

}  // namespace

TEST_CASE("Scheduler: a hung collector holds up only itself, not those that share its interval",
          "[agent][scheduler]") {
  HangerAndOther t;
  auto scheduler = t.scheduler(5, 50ms);
  scheduler.start();
  while (!t.hanger->hanging.load()) {
    std::this_thread::sleep_for(1ms);
  }
  // Two seconds of hanging: 40 rounds. The other misses the round the hanger hung in until the
  // watchdog hands it over (after 250 ms), then runs in every round.
  const int before = t.other_cycles.load();
  std::this_thread::sleep_for(2000ms);
  const int during = t.other_cycles.load() - before;
  CHECK(during >= 20);
  CHECK(t.hanger_cycles.load() == 5);
  // The hanger's rounds were skipped and counted, and it timed out once.
  CHECK(selfMetric(t.self_metrics, "vigil_collector_skipped_total", "hanger") >= 30);
  CHECK(selfMetric(t.self_metrics, "vigil_collector_timeouts_total", "hanger") == 1);
  // The other at most misses a round or two around the hand-over (its cycle on the pool may
  // still run when the next round comes).
  CHECK(selfMetric(t.self_metrics, "vigil_collector_skipped_total", "other") <= 2);
  // Released, it runs again in its rounds.
  t.release.store(true);
  while (t.hanger_cycles.load() < 10) {
    std::this_thread::sleep_for(5ms);
  }
  scheduler.stop(1000ms);
  // What the other stored while the hanger hung: a sample every round.
  auto series = t.store->select(
      {*LabelMatcher::create(MatchType::kEqual, "__name__", "other_value")}, 0, INT64_MAX);
  REQUIRE(series.size() == 1);
  CHECK(series[0].samples.size() >= static_cast<std::size_t>(before + during));
}

TEST_CASE("Scheduler: the rest of a hung collector's round is handed to another thread",
          "[agent][scheduler]") {
  // A 60 s interval: the next round is up to 60 s away (its start is jittered), so the other
  // collector, behind the hanger in the first round, runs soon only if it is handed over.
  HangerAndOther t;
  auto scheduler = t.scheduler(1, 60s);
  const auto started = std::chrono::steady_clock::now();
  scheduler.start();
  while (t.other_cycles.load() == 0 && std::chrono::steady_clock::now() - started < 5s) {
    std::this_thread::sleep_for(5ms);
  }
  const auto waited = std::chrono::steady_clock::now() - started;
  t.release.store(true);
  scheduler.stop(1000ms);
  CHECK(t.other_cycles.load() == 1);
  // The watchdog wakes when the hanger has hung for 250 ms and hands the rest over then.
  CHECK(waited < 1000ms);
}

TEST_CASE("Scheduler: collectors of one round see the same round, other rounds another",
          "[agent][scheduler]") {
  // What lets collectors of a round share a file read: cpu and stat both parse /proc/stat.
  auto store = makeMemStore();
  SnapshotRegistry snapshots;
  SelfMetrics self_metrics("test", "test");
  std::mutex mu;
  std::vector<uint64_t> first, second, slower;
  std::vector<CollectorScheduler::Entry> entries;
  entries.push_back(entry("first", std::make_unique<RoundRecorder>(first, mu)));
  entries.push_back(entry("second", std::make_unique<RoundRecorder>(second, mu)));
  auto other_interval = entry("slower", std::make_unique<RoundRecorder>(slower, mu));
  other_interval.settings.interval = 70ms;
  entries.push_back(std::move(other_interval));
  CollectorScheduler scheduler(std::move(entries), HostPaths{}, *store, snapshots, self_metrics);
  scheduler.start();
  for (;;) {
    std::this_thread::sleep_for(10ms);
    std::lock_guard lock(mu);
    if (first.size() >= 10 && second.size() >= 10 && slower.size() >= 10) {
      break;
    }
  }
  scheduler.stop(1000ms);
  std::lock_guard lock(mu);
  // Each round once per collector, the same for both (but for a round that stop() cut in two).
  const std::set<uint64_t> first_rounds(first.begin(), first.end());
  const std::set<uint64_t> second_rounds(second.begin(), second.end());
  CHECK(first_rounds.size() == first.size());
  CHECK(second_rounds.size() == second.size());
  CHECK(first_rounds.count(0) == 0);
  std::vector<uint64_t> shared;
  std::set_intersection(first_rounds.begin(), first_rounds.end(), second_rounds.begin(),
                        second_rounds.end(), std::back_inserter(shared));
  CHECK(shared.size() + 1 >= std::max(first.size(), second.size()));
  // Another interval is another group: none of its rounds is one of theirs.
  for (uint64_t round : slower) {
    CHECK(round != 0);
    CHECK(std::find(first.begin(), first.end(), round) == first.end());
  }
  CHECK(std::set<uint64_t>(slower.begin(), slower.end()).size() == slower.size());
}

namespace {

// Records each cycle's timestamp and the wall clock when the cycle ran.
class StampRecorder : public Collector {
 public:
  StampRecorder(std::vector<std::pair<int64_t, int64_t>>& stamps, std::mutex& mu)
      : stamps_(stamps), mu_(mu) {}
  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    std::lock_guard lock(mu_);
    stamps_.emplace_back(ctx.timestamp_ms, now);
    out.addSingle("stamps", "Stamps.", MetricType::kGauge, 1);
    return Status::ok();
  }

 private:
  std::vector<std::pair<int64_t, int64_t>>& stamps_;
  std::mutex& mu_;
};

// Runs before StampRecorder in its round, taking 0, 0.7 or 1.4 ms in turn: the jitter of the
// collectors that run first in a round.
class Jitter : public Collector {
 public:
  Status collect(const CollectContext&, MetricBatch& out) override {
    std::this_thread::sleep_for(std::chrono::microseconds(700 * (cycles_++ % 3)));
    out.addSingle("jitter", "Jitter.", MetricType::kGauge, 1);
    return Status::ok();
  }

 private:
  int cycles_ = 0;
};

}  // namespace

TEST_CASE("Scheduler: cycles within 2 ms of their interval are stamped exactly one interval apart",
          "[agent][scheduler]") {
  // As Prometheus aligns scrape timestamps: regular timestamps cost the store a bit a sample.
  auto store = makeMemStore();
  SnapshotRegistry snapshots;
  SelfMetrics self_metrics("test", "test");
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> stamps;
  std::vector<CollectorScheduler::Entry> entries;
  entries.push_back(entry("jitter", std::make_unique<Jitter>()));
  entries.push_back(entry("stamps", std::make_unique<StampRecorder>(stamps, mu)));
  for (auto& e : entries) {
    e.settings.interval = 200ms;
  }
  CollectorScheduler scheduler(std::move(entries), HostPaths{}, *store, snapshots, self_metrics);
  scheduler.start();
  for (;;) {
    std::this_thread::sleep_for(20ms);
    std::lock_guard lock(mu);
    if (stamps.size() >= 8) {
      break;
    }
  }
  scheduler.stop(1000ms);
  std::lock_guard lock(mu);
  int aligned = 0;
  for (std::size_t i = 0; i < stamps.size(); ++i) {
    INFO("cycle " << i << " stamped " << stamps[i].first << " ran at " << stamps[i].second);
    // Never later than the tolerance after the cycle began (plus the millisecond the clock
    // ticked on); the collector runs a little after that, later still on a slow machine.
    CHECK(stamps[i].first - stamps[i].second <= 3);
    CHECK(stamps[i].second - stamps[i].first <= 50);
    if (i > 0) {
      const int64_t step = stamps[i].first - stamps[i - 1].first;
      CHECK(step > 0);
      // A cycle within 2 ms of its time is stamped on it; a later one (a busy machine) as it is.
      CHECK((step == 200 || std::abs(step - 200) > 2));
      aligned += step == 200 ? 1 : 0;
    }
  }
  CHECK(aligned >= 1);
}

namespace {

// Records when each of its cycles ran.
class StartRecorder : public Collector {
 public:
  struct Start {
    std::chrono::steady_clock::time_point at;
    std::thread::id thread;
  };
  StartRecorder(std::vector<Start>& starts, std::mutex& mu) : starts_(starts), mu_(mu) {}
  Status collect(const CollectContext&, MetricBatch& out) override {
    {
      std::lock_guard lock(mu_);
      starts_.push_back({std::chrono::steady_clock::now(), std::this_thread::get_id()});
    }
    out.addSingle("starts", "Starts.", MetricType::kGauge, 1);
    return Status::ok();
  }

 private:
  std::vector<Start>& starts_;
  std::mutex& mu_;
};

// A collector every `interval` (200 ms) that follows a scraper, which scrapes `scrapes` times
// every `scrape_interval` and then stops, and, when `serve`, runs the rounds due on its scrapes
// as /metrics does; then `after` more of the collector's rounds.
struct FollowedRun {
  std::vector<StartRecorder::Start> starts;
  std::vector<std::chrono::steady_clock::time_point> scrapes;
  std::thread::id scraper;
};
FollowedRun runFollowingScrapes(std::chrono::milliseconds scrape_interval, int scrapes, bool serve,
                                std::chrono::milliseconds after = 0ms,
                                std::chrono::milliseconds interval = 200ms) {
  auto store = makeMemStore();
  SnapshotRegistry snapshots;
  SelfMetrics self_metrics("test", "test");
  std::mutex mu;
  FollowedRun run;
  run.scraper = std::this_thread::get_id();
  std::vector<CollectorScheduler::Entry> entries;
  entries.push_back(entry("starts", std::make_unique<StartRecorder>(run.starts, mu)));
  entries[0].settings.interval = interval;
  entries[0].settings.timeout = interval;
  auto phase = std::make_shared<ScrapePhase>();
  CollectorScheduler scheduler(std::move(entries), HostPaths{}, *store, snapshots, self_metrics);
  scheduler.followScrapes(phase);
  scheduler.start();
  // The scrapes as /metrics reports them, at a phase of their own.
  const auto first = std::chrono::steady_clock::now() + 50ms;
  for (int i = 0; i < scrapes; ++i) {
    const auto at = first + i * scrape_interval;
    std::this_thread::sleep_until(at);
    if (phase->observe("127.0.0.1", at) && serve) {
      scheduler.scrapeArrived();
    }
    run.scrapes.push_back(at);
  }
  std::this_thread::sleep_for(after);
  scheduler.stop(1000ms);
  std::lock_guard lock(mu);
  return run;
}

// The rounds of `run` from its tenth scrape (the interval learned and the rounds moved) to its
// last: how long after the last scrape each started, whether on the scraping thread, and the
// lot as text for a failure's message.
struct PlacedRounds {
  struct Round {
    std::chrono::steady_clock::duration after;
    bool on_scraper;
  };
  std::vector<Round> rounds;
  std::string text;
};
PlacedRounds placeRounds(const FollowedRun& run) {
  PlacedRounds placed;
  for (const auto& start : run.starts) {
    if (start.at < run.scrapes[9] || start.at > run.scrapes.back()) {
      continue;
    }
    const auto scrape = std::find_if(run.scrapes.rbegin(), run.scrapes.rend(),
                                     [&](const auto& s) { return s <= start.at; });
    const bool on_scraper = start.thread == run.scraper;
    placed.rounds.push_back({start.at - *scrape, on_scraper});
    placed.text +=
        std::to_string(std::chrono::duration<double, std::milli>(start.at - *scrape).count()) +
        (on_scraper ? " " : " (timer) ");
  }
  return placed;
}

}  // namespace

TEST_CASE("Scheduler: a steady scraper's scrapes run the rounds that fall on them",
          "[agent][scheduler]") {
  const FollowedRun run = runFollowingScrapes(200ms, 20, true);
  // Once the scraper's interval is learned (seven scrapes) and the rounds moved onto its phase,
  // each round runs as a scrape arrives, on the thread that serves it: one wake-up a round, and
  // samples taken as the scrape came.
  const PlacedRounds placed = placeRounds(run);
  const int checked = static_cast<int>(placed.rounds.size());
  const int on_scrape =
      static_cast<int>(std::count_if(placed.rounds.begin(), placed.rounds.end(),
                                     [](const PlacedRounds::Round& r) { return r.on_scraper; }));
  INFO("rounds started these many ms after the last scrape: " << placed.text);
  REQUIRE(checked >= 8);
  // A scrape that comes late on a busy machine (a sanitizer build beside others) leaves its
  // round to the timer. At a random phase, none would run on the scrapes.
  CHECK(on_scrape >= checked - 2);
}

TEST_CASE("Scheduler: rounds between a scraper's scrapes stay on the timer", "[agent][scheduler]") {
  // Rounds every 100 ms against scrapes every 200 ms: every other round falls on a scrape and
  // runs on it; the ones between run on the collecting thread's timer.
  const FollowedRun run = runFollowingScrapes(200ms, 20, true, 0ms, 100ms);
  const PlacedRounds placed = placeRounds(run);
  int on_scrapes = 0;
  int between = 0;
  for (const auto& round : placed.rounds) {
    on_scrapes += round.on_scraper ? 1 : 0;
    between += !round.on_scraper && round.after >= 80ms && round.after <= 120ms ? 1 : 0;
  }
  INFO("rounds started these many ms after the last scrape: " << placed.text);
  // Scrapes 9 to 19, and the ten gaps between them; on a busy machine a late scrape leaves its
  // round to the timer.
  CHECK(on_scrapes >= 9);
  CHECK(between >= 8);
}

TEST_CASE("Scheduler: a round left for a scrape runs on its timer when the scrape does not come",
          "[agent][scheduler]") {
  // The scrapes come at a steady interval but /metrics is never served (or the scraper stops
  // after the last one): the rounds still run, each at most a little after its time.
  const FollowedRun run = runFollowingScrapes(200ms, 14, false, 1000ms);
  std::string gaps;
  int off = 0;
  int counted = 0;
  for (std::size_t i = 2; i < run.starts.size(); ++i) {
    REQUIRE(run.starts[i].thread != run.scraper);
    const auto gap = run.starts[i].at - run.starts[i - 1].at;
    gaps += std::to_string(std::chrono::duration<double, std::milli>(gap).count()) + " ";
    ++counted;
    // Moved once onto the scrapes' phase (at least half an interval on), and a late timer
    // makes a long gap, then a short one.
    off += (gap < 170ms || gap > 260ms) ? 1 : 0;
  }
  INFO("rounds these many ms apart: " << gaps);
  // 50 ms + 13 scrapes * 200 ms + 1 s of rounds every 200 ms.
  CHECK(counted >= 14);
  CHECK(off <= 3);
}

TEST_CASE("Scheduler: rounds keep their interval when a scraper's does not fit it",
          "[agent][scheduler]") {
  // Scrapes every 300 ms against rounds every 200 ms: no phase puts a round before each, and
  // the rounds are not moved back and forth chasing them.
  const FollowedRun run = runFollowingScrapes(300ms, 14, true);
  REQUIRE(run.starts.size() >= 15);
  int moved = 0;
  // From the second round: the first runs at once, the second at the random phase.
  for (std::size_t i = 2; i < run.starts.size(); ++i) {
    REQUIRE(run.starts[i].thread != run.scraper);
    const auto gap = run.starts[i].at - run.starts[i - 1].at;
    const double gap_ms = std::chrono::duration<double, std::milli>(gap).count();
    INFO("rounds " << gap_ms << " ms apart");
    moved += (gap < 170ms || gap > 230ms) ? 1 : 0;
  }
  // A late round makes two gaps odd (a long one, then a short one).
  CHECK(moved <= 2);
}
