#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>
#include "tests/support/labels.h"

#include "vigil/store.h"

using namespace vigil;

using vigil::test::L;

namespace {

LabelMatcher M(MatchType type, const char* name, const char* value) {
  auto m = LabelMatcher::create(type, name, value);
  REQUIRE(m.isOk());
  return *m;
}

std::string label(const LabelSet& ls, const std::string& name) {
  for (const auto& l : ls) {
    if (l.name == name) {
      return l.value;
    }
  }
  return "";
}

std::string tempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("vigil-store-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

}  // namespace

TEST_CASE("Store: samples come back in order within the requested range", "[store]") {
  StoreOptions options;
  options.max_samples_per_chunk = 16;  // several chunks
  auto store = makeMemStore(options);
  const auto labels = L({{"__name__", "up"}, {"job", "node"}});
  for (int i = 0; i < 100; ++i) {
    REQUIRE(store->append(labels, 1000 * i, i * 0.5).isOk());
  }
  auto all = store->select({M(MatchType::kEqual, "__name__", "up")}, 0, 1000000);
  REQUIRE(all.size() == 1);
  CHECK(*all[0].labels == labels);
  REQUIRE(all[0].samples.size() == 100);
  CHECK(all[0].samples[99].t == 99000);
  CHECK(all[0].samples[99].v == 49.5);
  auto range = store->select({M(MatchType::kEqual, "job", "node")}, 20500, 40000);
  REQUIRE(range.size() == 1);
  REQUIRE(range[0].samples.size() == 20);
  CHECK(range[0].samples.front().t == 21000);
  CHECK(range[0].samples.back().t == 40000);
  CHECK(store->select({M(MatchType::kEqual, "job", "node")}, 200000, 300000).empty());
}

TEST_CASE("Store: selectNewest gives each series' newest sample within the window", "[store]") {
  StoreOptions options;
  options.max_samples_per_chunk = 16;  // several chunks
  auto store = makeMemStore(options);
  const auto a = L({{"__name__", "up"}, {"job", "a"}});
  const auto b = L({{"__name__", "up"}, {"job", "b"}});
  const auto c = L({{"__name__", "up"}, {"job", "c"}});
  for (int i = 0; i < 100; ++i) {
    REQUIRE(store->append(a, 1000 * i, i).isOk());
  }
  REQUIRE(store->append(b, 5000, 1).isOk());
  REQUIRE(store->append(b, 9000, std::bit_cast<double>(kStaleNaNBits)).isOk());
  REQUIRE(store->append(c, 1000, 7).isOk());
  const std::vector<LabelMatcher> up{M(MatchType::kEqual, "__name__", "up")};

  // At the end of the data: the newest sample of each series, a staleness marker as it is,
  // nothing for a series whose newest sample is older than the window.
  auto newest = store->selectNewest(up, 2000, 200000);
  REQUIRE(newest.size() == 2);
  CHECK(label(*newest[0].labels, "job") == "a");
  REQUIRE(newest[0].samples.size() == 1);
  CHECK(newest[0].samples[0].t == 99000);
  CHECK(newest[0].samples[0].v == 99);
  CHECK(label(*newest[1].labels, "job") == "b");
  REQUIRE(newest[1].samples.size() == 1);
  CHECK(isStaleNaN(newest[1].samples[0].v));

  // In the past (decoded from the chunks): the newest sample at or before the window's end.
  auto past = store->selectNewest(up, 1000, 40500);
  REQUIRE(past.size() == 3);
  REQUIRE(past[0].samples.size() == 1);
  CHECK(past[0].samples[0].t == 40000);
  CHECK(past[0].samples[0].v == 40);
  REQUIRE(past[1].samples.size() == 1);
  CHECK(isStaleNaN(past[1].samples[0].v));
  REQUIRE(past[2].samples.size() == 1);
  CHECK(past[2].samples[0].v == 7);
  auto before_b = store->selectNewest(up, 4000, 6000);
  REQUIRE(before_b.size() == 2);
  CHECK(before_b[1].samples.at(0).t == 5000);
}

TEST_CASE("Store: out-of-order and duplicate samples are rejected and counted", "[store]") {
  auto store = makeMemStore();
  const auto labels = L({{"__name__", "x"}});
  REQUIRE(store->append(labels, 2000, 1).isOk());
  Status ooo = store->append(labels, 1000, 2);
  CHECK(ooo.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(ooo.message(), Catch::Contains("out-of-order sample for x{} at 1000"));
  CHECK_FALSE(store->append(labels, 2000, 3).isOk());
  CHECK(store->stats().rejected_out_of_order == 1);
  CHECK(store->stats().rejected_duplicate == 1);
  auto got = store->select({}, 0, 10000);
  REQUIRE(got.size() == 1);
  REQUIRE(got[0].samples.size() == 1);
  CHECK(got[0].samples[0].v == 1);
  CHECK_FALSE(store->append({{"b", "1"}, {"a", "2"}}, 1, 1).isOk());  // unsorted labels
}

TEST_CASE("Store: a series missing from a source's next batch gets one stale marker",
          "[store][staleness]") {
  auto store = makeMemStore();
  auto source = store->registerSource("collector/test");
  auto batch = [](std::vector<std::string> devices) {
    MetricBatch b;
    auto& f = b.family("node_network_receive_bytes_total", "h", MetricType::kCounter);
    for (const auto& d : devices) {
      MetricBatch::add(f, {{"device", d}}, 1);
    }
    return b;
  };
  store->appendBatch(source, 1000, batch({"eth0", "eth1"}));
  store->appendBatch(source, 2000, batch({"eth0"}));
  store->appendBatch(source, 3000, batch({"eth0"}));
  auto eth1 = store->select({M(MatchType::kEqual, "device", "eth1")}, 0, 10000);
  REQUIRE(eth1.size() == 1);
  REQUIRE(eth1[0].samples.size() == 2);
  CHECK(eth1[0].samples[1].t == 2000);
  CHECK(isStaleNaN(eth1[0].samples[1].v));
  // It comes back: appended normally after the marker.
  store->appendBatch(source, 4000, batch({"eth0", "eth1"}));
  eth1 = store->select({M(MatchType::kEqual, "device", "eth1")}, 0, 10000);
  REQUIRE(eth1[0].samples.size() == 3);
  CHECK(eth1[0].samples[2].v == 1);
  auto eth0 = store->select({M(MatchType::kEqual, "device", "eth0")}, 0, 10000);
  CHECK(eth0[0].samples.size() == 4);
  CHECK(*eth0[0].labels ==
        L({{"__name__", "node_network_receive_bytes_total"}, {"device", "eth0"}}));
}

TEST_CASE("Store: matchers select exactly what a brute-force filter selects (property)",
          "[store][index]") {
  auto store = makeMemStore();
  std::mt19937 rng(7);
  const char* names[] = {"cpu", "mem", "disk"};
  const char* jobs[] = {"node", "api", "db", ""};
  std::vector<LabelSet> all;
  std::set<std::string> seen;
  for (int i = 0; i < 400; ++i) {
    LabelSet ls;
    ls.push_back({"__name__", names[rng() % 3]});
    std::string job = jobs[rng() % 4];
    if (!job.empty()) {
      ls.push_back({"job", job});
    }
    if (rng() % 2) {
      ls.push_back({"mode", "m" + std::to_string(rng() % 5)});
    }
    ls.push_back({"zone", "z" + std::to_string(i % 7)});
    std::sort(ls.begin(), ls.end(), [](const Label& a, const Label& b) { return a.name < b.name; });
    if (!seen.insert(labelsToString(ls)).second) {
      continue;
    }
    REQUIRE(store->append(ls, 1000, i).isOk());
    all.push_back(ls);
  }
  const std::vector<std::vector<LabelMatcher>> queries = {
      {M(MatchType::kEqual, "__name__", "cpu")},
      {M(MatchType::kEqual, "job", "")},
      {M(MatchType::kNotEqual, "job", "node")},
      {M(MatchType::kRegexMatch, "job", "api|db")},
      {M(MatchType::kRegexMatch, "job", ".*")},
      {M(MatchType::kRegexMatch, "job", ".+")},
      {M(MatchType::kRegexNoMatch, "mode", "m[0-2]")},
      {M(MatchType::kRegexMatch, "mode", "m")},  // anchored: matches nothing
      {M(MatchType::kEqual, "__name__", "mem"), M(MatchType::kRegexMatch, "zone", "z[135]"),
       M(MatchType::kNotEqual, "mode", "m4")},
      {M(MatchType::kEqual, "nosuchlabel", "")},
      {M(MatchType::kEqual, "nosuchlabel", "x")},
      {M(MatchType::kRegexMatch, "__name__", "(?i)CPU|disk")},
  };
  for (const auto& q : queries) {
    std::set<std::string> expected;
    for (const auto& ls : all) {
      bool ok = true;
      for (const auto& m : q) {
        ok = ok && m.matches(label(ls, m.name()));
      }
      if (ok) {
        expected.insert(labelsToString(ls));
      }
    }
    std::set<std::string> got;
    for (const auto& s : store->select(q, 0, 2000)) {
      got.insert(labelsToString(*s.labels));
    }
    std::string qs;
    for (const auto& m : q) {
      qs += m.toString() + " ";
    }
    INFO("query " << qs);
    CHECK(got == expected);
    CHECK(store->series(q).size() == expected.size());
  }
  CHECK(store->labelNames() == std::vector<std::string>{"__name__", "job", "mode", "zone"});
  CHECK(store->labelValues("job") == std::vector<std::string>{"api", "db", "node"});
  CHECK_FALSE(LabelMatcher::create(MatchType::kRegexMatch, "a", "(unclosed").isOk());
}

TEST_CASE("Store: retention drops old samples and forgets empty series", "[store][retention]") {
  StoreOptions options;
  options.retention = std::chrono::milliseconds(60000);
  options.max_samples_per_chunk = 10;
  auto store = makeMemStore(options);
  for (int i = 0; i < 100; ++i) {
    REQUIRE(store->append(L({{"__name__", "old"}}), i * 1000, i).isOk());
  }
  for (int i = 0; i < 200; ++i) {
    REQUIRE(store->append(L({{"__name__", "live"}}), i * 1000, i).isOk());
  }
  CHECK(store->stats().series == 2);
  CHECK(store->stats().samples == 300);
  store->enforceRetention(200000);  // keep t >= 140000
  auto live = store->select({M(MatchType::kEqual, "__name__", "live")}, 0, 1000000);
  REQUIRE(live.size() == 1);
  // Whole chunks go: the oldest sample kept belongs to the first chunk ending after the cutoff.
  CHECK(live[0].samples.front().t == 140000);
  CHECK(store->select({M(MatchType::kEqual, "__name__", "old")}, 0, 1000000).empty());
  CHECK(store->stats().series == 1);
  CHECK(store->stats().samples == 60);
  CHECK(store->labelValues("__name__") == std::vector<std::string>{"live"});
}

TEST_CASE("Store: after the clock went back, samples stamped later are dropped and appends resume",
          "[store][clock]") {
  StoreOptions options;
  options.max_samples_per_chunk = 10;  // the cut falls inside a closed chunk
  auto store = makeMemStore(options);
  for (int i = 0; i < 100; ++i) {
    REQUIRE(store->append(L({{"__name__", "cut"}}), i * 1000, i).isOk());
  }
  for (int i = 60; i < 100; ++i) {
    REQUIRE(store->append(L({{"__name__", "all_later"}}), i * 1000, i).isOk());
  }
  REQUIRE(store->append(L({{"__name__", "earlier"}}), 1000, 7).isOk());
  const std::size_t chunk_bytes_before = store->stats().chunk_bytes;

  CHECK(store->clockSteppedBack(100000, 44500) == 55 + 40);
  CHECK(store->stats().samples == 45 + 1);
  CHECK(store->stats().series == 2);  // all_later is empty now, and forgotten
  CHECK(store->stats().chunk_bytes < chunk_bytes_before);
  auto cut = store->select({M(MatchType::kEqual, "__name__", "cut")}, 0, 1000000);
  REQUIRE(cut.size() == 1);
  REQUIRE(cut[0].samples.size() == 45);
  CHECK(cut[0].samples.back().t == 44000);
  CHECK(cut[0].samples.back().v == 44);
  // The series takes samples again from the new time on, and they read back after the old ones.
  REQUIRE(store->append(L({{"__name__", "cut"}}), 45000, -1).isOk());
  REQUIRE(store->append(L({{"__name__", "all_later"}}), 45000, -2).isOk());
  cut = store->select({M(MatchType::kEqual, "__name__", "cut")}, 43000, 1000000);
  REQUIRE(cut.size() == 1);
  REQUIRE(cut[0].samples.size() == 3);
  CHECK(cut[0].samples[2].v == -1);
  CHECK(store->select({}, 0, 1000000).size() == 3);
  CHECK(store->clockSteppedBack(2000000, 1000000) == 0);
}

TEST_CASE(
    "Store: after a step back of the wall clock, a batch stamped before it and appended late is "
    "refused, and its series take the new time's samples",
    "[store][clock]") {
  // The wall clock as the store sees it: an hour ahead, then stepped back.
  constexpr int64_t kHour = 3'600'000;
  constexpr int64_t kNewTime = 1'700'000'000'000;
  int64_t wall = kNewTime + kHour;
  StoreOptions options;
  options.wall_clock_ms = [&wall] { return wall; };
  auto store = makeMemStore(options);
  auto source = store->registerSource("collector/test");
  auto batch = [](double v) {
    MetricBatch b;
    auto& f = b.family("node_load1", "h", MetricType::kGauge);
    MetricBatch::add(f, {}, v);
    auto& g = b.family("node_load5", "h", MetricType::kGauge);
    MetricBatch::add(g, {}, v);
    return b;
  };
  auto samples = [&] {
    auto got = store->select({M(MatchType::kEqual, "__name__", "node_load1")}, 0, 2 * kNewTime);
    return got.empty() ? std::vector<Sample>{} : got[0].samples;
  };
  store->appendBatch(source, wall - 1000, batch(1));
  store->appendBatch(source, wall, batch(2));

  wall = kNewTime;
  CHECK(store->clockSteppedBack(kNewTime + kHour, kNewTime) == 2 * 2);
  CHECK(samples().empty());
  // A round that read the clock before the step (an hour ahead) appends after the drop: had it
  // been taken, every later sample would be out of order for an hour.
  store->appendBatch(source, kNewTime + kHour - 5, batch(3));
  CHECK(samples().empty());
  CHECK(store->stats().rejected_clock_step == 2);
  CHECK(store->append(L({{"__name__", "pushed"}}), kNewTime + kHour - 5, 1).code() ==
        StatusCode::kInvalidArgument);
  CHECK(store->stats().rejected_clock_step == 3);
  // The new time's rounds go in, as does a sample within the slack of drift.
  store->appendBatch(source, kNewTime + 10, batch(4));
  wall += 1000;
  store->appendBatch(source, wall + kClockStepTolerance.count(), batch(5));
  REQUIRE(samples().size() == 2);
  CHECK(samples()[1].v == 5);
  CHECK(store->stats().rejected_out_of_order == 0);
  CHECK(store->stats().rejected_clock_step == 3);
  // The guard lasts until the clock is back where it stepped from, kClockStepGuard at most.
  wall = kNewTime + kClockStepGuard.count();
  REQUIRE(store->append(L({{"__name__", "pushed"}}), wall + kHour, 1).isOk());
  CHECK(store->stats().rejected_clock_step == 3);
}

TEST_CASE("Store: over the memory budget the oldest chunks go first", "[store][retention]") {
  StoreOptions options;
  options.max_samples_per_chunk = 20;
  options.memory_budget_bytes = 4000;
  auto store = makeMemStore(options);
  std::mt19937_64 rng(1);
  for (int i = 0; i < 400; ++i) {
    for (int s = 0; s < 3; ++s) {
      // Random values: incompressible, so chunks are big and the budget bites.
      REQUIRE(store
                  ->append(L({{"__name__", "m"}, {"s", std::to_string(s).c_str()}}), i * 1000,
                           std::bit_cast<double>(rng() >> 2))
                  .isOk());
    }
  }
  const auto before = store->stats();
  REQUIRE(before.chunk_bytes > 4000);
  store->enforceRetention(400000);  // nothing is past the 2h retention
  const auto after = store->stats();
  CHECK(after.chunk_bytes <= 4000);
  CHECK(after.evictions > 0);
  // What is left is the newest data of every series.
  for (const auto& s : store->select({}, 0, 1000000)) {
    CHECK(s.samples.back().t == 399000);
  }
}

TEST_CASE("Store: checkpoints round-trip and corrupt ones are refused", "[store][checkpoint]") {
  StoreOptions options;
  options.max_samples_per_chunk = 32;
  auto store = makeMemStore(options);
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100; ++i) {
    for (int s = 0; s < 5; ++s) {
      double v = s == 4 ? std::bit_cast<double>(rng()) : i * 1.25 + s;
      REQUIRE(
          store->append(L({{"__name__", "m"}, {"series", std::to_string(s).c_str()}}), i * 15000, v)
              .isOk());
    }
  }
  const std::string path = tempPath("checkpoint");
  REQUIRE(store->saveCheckpoint(path).isOk());

  auto restored = makeMemStore(options);
  REQUIRE(restored->loadCheckpoint(path).isOk());
  auto a = store->select({}, 0, INT64_MAX);
  auto b = restored->select({}, 0, INT64_MAX);
  REQUIRE(a.size() == b.size());
  std::sort(a.begin(), a.end(), [](auto& x, auto& y) { return *x.labels < *y.labels; });
  std::sort(b.begin(), b.end(), [](auto& x, auto& y) { return *x.labels < *y.labels; });
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(*a[i].labels == *b[i].labels);
    REQUIRE(a[i].samples.size() == b[i].samples.size());
    for (std::size_t j = 0; j < a[i].samples.size(); ++j) {
      CHECK(a[i].samples[j].t == b[i].samples[j].t);
      CHECK(std::bit_cast<uint64_t>(a[i].samples[j].v) ==
            std::bit_cast<uint64_t>(b[i].samples[j].v));
    }
  }
  CHECK(restored->stats().samples == store->stats().samples);
  // The head chunk is restored without the spare capacity it had grown.
  CHECK(restored->stats().chunk_bytes <= store->stats().chunk_bytes);
  CHECK(restored->stats().chunk_bytes > store->stats().chunk_bytes * 9 / 10);
  // Appends go on in place after a restore.
  REQUIRE(restored->append(L({{"__name__", "m"}, {"series", "0"}}), 100 * 15000, 7).isOk());
  CHECK_FALSE(restored->append(L({{"__name__", "m"}, {"series", "0"}}), 10, 7).isOk());

  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  SECTION("truncated") {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
    Status st = restored->loadCheckpoint(path);
    CHECK(st.code() == StatusCode::kInvalidArgument);
    CHECK_THAT(st.message(), Catch::Contains("corrupt"));
  }
  SECTION("one flipped byte") {
    bytes[bytes.size() / 3] ^= 0x10;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    CHECK_THAT(restored->loadCheckpoint(path).message(), Catch::Contains("checksum mismatch"));
  }
  SECTION("not a checkpoint") {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << "hello";
    CHECK(restored->loadCheckpoint(path).code() == StatusCode::kInvalidArgument);
  }
  // A refused checkpoint leaves what was loaded before untouched.
  CHECK(restored->stats().series == 5);
  std::filesystem::remove(path);
}

TEST_CASE("Store: concurrent appends, batches and queries", "[store][concurrency]") {
  StoreOptions options;
  options.max_samples_per_chunk = 50;
  auto store = makeMemStore(options);
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int w = 0; w < 3; ++w) {
    writers.emplace_back([&, w] {
      auto source = store->registerSource("w" + std::to_string(w));
      for (int i = 1; i <= 400; ++i) {
        MetricBatch b;
        auto& f = b.family("m", "h", MetricType::kGauge);
        for (int s = 0; s < 20; ++s) {
          if ((i + s) % 17 != 0) {  // series come and go: staleness on the way
            MetricBatch::add(f, {{"w", std::to_string(w)}, {"s", std::to_string(s)}}, i);
          }
        }
        store->appendBatch(source, i * 1000, b);
      }
    });
  }
  std::thread reader([&] {
    while (!stop.load()) {
      for (const auto& s : store->select({M(MatchType::kRegexMatch, "s", "1.*")}, 0, INT64_MAX)) {
        for (std::size_t i = 1; i < s.samples.size(); ++i) {
          REQUIRE(s.samples[i].t > s.samples[i - 1].t);
        }
      }
      store->enforceRetention(0);
      (void)store->labelValues("s");
    }
  });
  for (auto& t : writers) {
    t.join();
  }
  stop = true;
  reader.join();
  CHECK(store->stats().series == 60);
  CHECK(store->stats().rejected_duplicate == 0);
  CHECK(store->stats().rejected_out_of_order == 0);
}

TEST_CASE("Store: a retired source's series go stale, its name maps to the same id",
          "[store][staleness]") {
  auto store = makeMemStore();
  auto a = store->registerSource("collector/cpu");
  CHECK(store->registerSource("collector/cpu") == a);
  CHECK(store->registerSource("collector/mem") != a);
  MetricBatch b;
  b.addSingle("x", "h", MetricType::kGauge, 1);
  store->appendBatch(a, 1000, b);
  store->retireSource(a, 2000);
  auto got = store->select({}, 0, 10000);
  REQUIRE(got.size() == 1);
  REQUIRE(got[0].samples.size() == 2);
  CHECK(isStaleNaN(got[0].samples[1].v));
  // No longer pinned by the source: retention may now forget it.
  store->enforceRetention(2000 + 3 * 3600 * 1000);
  CHECK(store->stats().series == 0);
}

TEST_CASE("Store: scan gives each series what is newer than the reader's cursor", "[store]") {
  StoreOptions options;
  options.max_samples_per_chunk = 8;  // several chunks
  auto store = makeMemStore(options);
  const auto a = L({{"__name__", "a"}});
  const auto b = L({{"__name__", "b"}, {"x", "1"}});
  for (int i = 1; i <= 20; ++i) {
    REQUIRE(store->append(a, i * 1000, i).isOk());
    REQUIRE(store->append(b, i * 1000, -i).isOk());
  }
  std::map<uint64_t, int64_t> cursor{{labelsHash(a), 17000}, {labelsHash(b), 3000}};
  auto scanOnce = [&](int64_t mint, int64_t maxt) {
    std::map<std::string, std::vector<Sample>> got;
    store->scan(
        mint, maxt, [&](uint32_t, uint64_t h) { return cursor.count(h) ? cursor[h] : INT64_MIN; },
        [&](uint64_t h, std::span<const Sample> samples, const std::function<LabelSet()>& labels) {
          CHECK(h == labelsHash(labels()));
          got[labelsToString(labels())].assign(samples.begin(), samples.end());
          cursor[h] = samples.back().t;
        });
    return got;
  };
  auto got = scanOnce(0, 100000);
  REQUIRE(got.size() == 2);
  CHECK(got["a{}"].size() == 3);  // 18, 19, 20 s
  CHECK(got["a{}"].front().t == 18000);
  REQUIRE(got["b{x=\"1\"}"].size() == 17);
  CHECK(got["b{x=\"1\"}"].back().v == -20);
  // Up to date: nothing. One new sample each: taken without decoding, value exact.
  CHECK(scanOnce(0, 100000).empty());
  REQUIRE(store->append(a, 21000, 0.1).isOk());
  got = scanOnce(0, 100000);
  REQUIRE(got.size() == 1);
  REQUIRE(got["a{}"].size() == 1);
  CHECK(got["a{}"][0].v == 0.1);
  // mint bounds how far back a new reader goes; maxt holds back what is newer.
  cursor.clear();
  got = scanOnce(19500, 20500);
  CHECK(got["a{}"].size() == 1);
  CHECK(got["b{x=\"1\"}"].size() == 1);

  // After a checkpoint load the previous-sample time is unknown: the chunk is decoded.
  const std::string path = tempPath("scan-checkpoint");
  REQUIRE(store->saveCheckpoint(path).isOk());
  REQUIRE(store->loadCheckpoint(path).isOk());
  std::filesystem::remove(path);
  cursor = {{labelsHash(a), 15000}};
  got = scanOnce(0, 100000);
  CHECK(got["a{}"].size() == 6);
}

TEST_CASE("Store: an empty label is an absent one, as in Prometheus", "[store]") {
  auto store = makeMemStore();
  // A collector's batch (node_exporter-style ifalias="") and a single append (a recording
  // rule whose result has an empty label) land in the series without the label.
  const Store::SourceId source = store->registerSource("collector/netclass");
  MetricBatch batch;
  auto& info = batch.family("node_network_info", "", MetricType::kGauge);
  MetricBatch::add(info, {{"device", "eth0"}, {"ifalias", ""}}, 1);
  for (int64_t t = 1000; t <= 3000; t += 1000) {
    store->appendBatch(source, t, batch);  // the second and third take the fast path
  }
  REQUIRE(store
              ->append(L({{"__name__", "node_network_info"}, {"device", "eth0"}, {"ifalias", ""}}),
                       4000, 1)
              .isOk());
  auto got = store->select({M(MatchType::kEqual, "__name__", "node_network_info")}, 0, 10000);
  REQUIRE(got.size() == 1);
  CHECK(*got[0].labels == L({{"__name__", "node_network_info"}, {"device", "eth0"}}));
  CHECK(got[0].samples.size() == 4);
  CHECK(store->labelValues("ifalias").empty());
  // The batch's next cycle without the series still marks it stale.
  store->appendBatch(source, 5000, MetricBatch{});
  got = store->select({M(MatchType::kEqual, "device", "eth0")}, 5000, 5000);
  REQUIRE(got.size() == 1);
  CHECK(isStaleNaN(got[0].samples[0].v));
}

namespace {
// rx_bytes_total of these devices, all at `value`, in a batch of this layout.
MetricBatch deviceBatch(const std::vector<std::string>& devices, double value, uint64_t layout) {
  MetricBatch b;
  auto& f = b.family("rx_bytes_total", "h", MetricType::kCounter);
  for (const auto& d : devices) {
    MetricBatch::add(f, {{"device", d}}, value);
  }
  b.setLayout(layout);
  return b;
}
}  // namespace

TEST_CASE("Store: batches of one layout land in the same series without their labels compared",
          "[store]") {
  auto store = makeMemStore();
  auto source = store->registerSource("collector/scrape");
  const uint64_t layout = MetricBatch::newLayout();
  store->appendBatch(source, 1000, deviceBatch({"eth0", "eth1"}, 1, layout));
  store->appendBatch(source, 2000, deviceBatch({"eth0", "eth1"}, 2, layout));
  // A batch that claims the layout but has another number of samples is looked at in full.
  store->appendBatch(source, 3000, deviceBatch({"eth0"}, 3, layout));
  // A new layout: eth1 is back, eth2 is new.
  store->appendBatch(source, 4000,
                     deviceBatch({"eth0", "eth1", "eth2"}, 4, MetricBatch::newLayout()));
  auto all = store->select({M(MatchType::kEqual, "__name__", "rx_bytes_total")}, 0, 10000);
  REQUIRE(all.size() == 3);
  std::map<std::string, std::vector<Sample>> by_device;
  for (auto& s : all) {
    by_device[label(*s.labels, "device")] = s.samples;
  }
  REQUIRE(by_device["eth0"].size() == 4);
  CHECK(by_device["eth0"][1].v == 2);
  CHECK(by_device["eth0"][3].v == 4);
  REQUIRE(by_device["eth1"].size() == 4);
  CHECK(by_device["eth1"][1].v == 2);
  CHECK(isStaleNaN(by_device["eth1"][2].v));  // missing at 3000
  CHECK(by_device["eth2"].size() == 1);
  // A retired source forgets its layout: the next batch is matched by labels again.
  store->retireSource(source, 5000);
  store->appendBatch(source, 6000, deviceBatch({"eth0", "eth1", "eth2"}, 6, layout));
  CHECK(store->select({M(MatchType::kEqual, "device", "eth2")}, 0, 10000)[0].samples.size() == 3);
  CHECK(store->stats().series == 3);
}

TEST_CASE("Store: a series' memory follows its compressed size, not a doubled buffer",
          "[store][memory]") {
  // A CPU-seconds counter at 15 s for 50 minutes: one full chunk and a head of 80 samples.
  auto store = makeMemStore();
  const LabelSet labels =
      L({{"__name__", "node_cpu_seconds_total"}, {"cpu", "0"}, {"mode", "user"}});
  double v = 1234.56;
  for (int i = 0; i < 200; ++i) {
    v += 0.37 + (i % 7) * 0.01;
    v = std::round(v * 100) / 100;
    REQUIRE(store->append(labels, 1700000000000 + i * 15000, v).isOk());
  }
  const StoreStats st = store->stats();
  CHECK(st.samples == 200);
  // Headers of two chunks (48 + 32 bytes) plus about a byte per sample: well under 1.5.
  CHECK(static_cast<double>(st.chunk_bytes) / 200 < 1.5);
}

TEST_CASE("Store: windows read again and again, as rules do, return every sample in them",
          "[store]") {
  // Reads resume decoding where the last window started rather than at the start of its
  // chunk: windows sliding forward, jumping back, growing, across chunks closing, and after a
  // clock step rewrote the series must all still see exactly what was appended.
  StoreOptions options;
  options.max_samples_per_chunk = 50;
  auto store = makeMemStore(options);
  std::mt19937_64 rng(11);
  std::map<std::string, std::vector<Sample>> appended;
  auto append = [&](int i) {
    const int64_t t = i * 15000;
    const double counter = i * 1.25;
    const double gauge = std::bit_cast<double>(rng() >> 2);  // XOR-encoded chunks
    for (const auto& [name, v] : {std::pair{"counter", counter}, std::pair{"gauge", gauge}}) {
      REQUIRE(store->append(L({{"__name__", name}}), t, v).isOk());
      appended[name].push_back({t, v});
    }
  };
  auto check = [&](int64_t mint, int64_t maxt) {
    for (const auto& [name, samples] : appended) {
      std::vector<Sample> want;
      for (const auto& s : samples) {
        if (s.t >= mint && s.t <= maxt) {
          want.push_back(s);
        }
      }
      auto got = store->select({M(MatchType::kEqual, "__name__", name.c_str())}, mint, maxt);
      REQUIRE(got.size() == (want.empty() ? 0U : 1U));
      if (got.empty()) {
        continue;
      }
      REQUIRE(got[0].samples.size() == want.size());
      for (std::size_t j = 0; j < want.size(); ++j) {
        CHECK(got[0].samples[j].t == want[j].t);
        CHECK(std::bit_cast<uint64_t>(got[0].samples[j].v) == std::bit_cast<uint64_t>(want[j].v));
      }
    }
  };
  int i = 0;
  for (; i < 300; ++i) {
    append(i);
    const int64_t now = i * 15000;
    check(now - 300000, now);  // a [5m] window every cycle
    if (i % 7 == 0) {
      check(now - 3600000, now);          // a longer one now and then
      check(now - 600000, now - 300000);  // and one in the past
    }
  }
  REQUIRE(store->clockSteppedBack(i * 15000, (i - 40) * 15000) > 0);  // the clock stepped back
  for (auto& [name, samples] : appended) {
    samples.resize(samples.size() - 39);
  }
  for (int j = i - 39; j < i + 60; ++j) {
    append(j);
    check(j * 15000 - 300000, j * 15000);
  }
}

TEST_CASE("Store: two batches filled in turn keep their layouts until the series change",
          "[store]") {
  // A collector fills two batches in turn (readers hold the other), each with its own layout:
  // both stay known while the series are the same, and neither once they change.
  auto store = makeMemStore();
  auto source = store->registerSource("collector/netdev");
  const uint64_t a = MetricBatch::newLayout();
  const uint64_t b = MetricBatch::newLayout();
  store->appendBatch(source, 1000, deviceBatch({"eth0", "eth1"}, 1, a));
  store->appendBatch(source, 2000, deviceBatch({"eth0", "eth1"}, 2, b));
  store->appendBatch(source, 3000, deviceBatch({"eth0", "eth1"}, 3, a));
  store->appendBatch(source, 4000, deviceBatch({"eth0", "eth1"}, 4, b));
  // b's shape changes (eth1 replaced by eth2, as many series): a new layout for it...
  store->appendBatch(source, 5000, deviceBatch({"eth0", "eth2"}, 5, MetricBatch::newLayout()));
  // ...and a, still claiming eth0 and eth1, is no longer trusted to match: its labels are
  // looked at, so eth1 comes back instead of its value landing in eth2.
  store->appendBatch(source, 6000, deviceBatch({"eth0", "eth1"}, 6, a));

  std::map<std::string, std::vector<Sample>> by_device;
  for (auto& s : store->select({M(MatchType::kEqual, "__name__", "rx_bytes_total")}, 0, 10000)) {
    by_device[label(*s.labels, "device")] = s.samples;
  }
  REQUIRE(by_device.size() == 3);
  REQUIRE(by_device["eth0"].size() == 6);
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(by_device["eth0"][i].v == static_cast<double>(i + 1));
  }
  REQUIRE(by_device["eth1"].size() == 6);
  CHECK(by_device["eth1"][3].v == 4);
  CHECK(isStaleNaN(by_device["eth1"][4].v));
  CHECK(by_device["eth1"][5].v == 6);
  REQUIRE(by_device["eth2"].size() == 2);
  CHECK(by_device["eth2"][0].v == 5);
  CHECK(isStaleNaN(by_device["eth2"][1].v));
  CHECK(store->stats().appended == 6 * 2 + 2);  // and the two stale markers
}
