// Store benchmark: compression on real node metrics, append throughput, range decode.
//
//   build/bench/store_bench [RECORDING]
//
// RECORDING is a file written by record_node_metrics (plain or .gz); by default the one under
// bench/data. It replays the recording at its native 1 s interval and subsampled to 10 s and
// 15 s (which is exactly what collecting at those intervals yields), then measures appends
// and range decodes on 10,000 synthetic node-like series.
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "vigil/store.h"

using namespace vigil;
using Clock = std::chrono::steady_clock;

namespace {

struct Recording {
  std::vector<LabelSet> series;
  // cycles[i] = samples of cycle i: (series index, value); all share one timestamp.
  std::vector<int64_t> cycle_ts;
  std::vector<std::vector<std::pair<uint32_t, double>>> cycles;
};

// "name{a=\"b\",c=\"d\",}" -> sorted LabelSet with __name__.
LabelSet parseSeries(const std::string& key) {
  LabelSet out;
  auto brace = key.find('{');
  out.push_back({"__name__", key.substr(0, brace)});
  std::size_t pos = brace + 1;
  while (pos < key.size() && key[pos] != '}') {
    auto eq = key.find('=', pos);
    std::string name = key.substr(pos, eq - pos);
    std::string value;
    std::size_t i = eq + 2;
    for (; i < key.size() && key[i] != '"'; ++i) {
      if (key[i] == '\\' && i + 1 < key.size()) {
        ++i;
      }
      value += key[i];
    }
    out.push_back({name, value});
    pos = i + 2;  // past '",'
  }
  std::sort(out.begin(), out.end(), [](const Label& a, const Label& b) { return a.name < b.name; });
  return out;
}

bool loadRecording(const std::string& path, Recording& rec) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    return false;
  }
  char line[8192];
  std::map<int64_t, std::size_t> cycle_of_ts;
  while (gzgets(f, line, sizeof line) != nullptr) {
    std::string s(line);
    if (!s.empty() && s.back() == '\n') {
      s.pop_back();
    }
    if (s.rfind("S ", 0) == 0) {
      auto sp = s.find(' ', 2);
      rec.series.push_back(parseSeries(s.substr(sp + 1)));
      continue;
    }
    unsigned id = 0;
    long long ts = 0;
    char value[64];
    if (std::sscanf(s.c_str(), "%u %lld %63s", &id, &ts, value) != 3) {
      continue;
    }
    // Collectors of one cycle run within a few ms: group by the cycle's first timestamp.
    std::size_t cycle;
    if (!rec.cycle_ts.empty() && ts - rec.cycle_ts.back() < 500) {
      cycle = rec.cycles.size() - 1;
    } else {
      rec.cycle_ts.push_back(ts);
      rec.cycles.emplace_back();
      cycle = rec.cycles.size() - 1;
    }
    rec.cycles[cycle].emplace_back(id, std::strtod(value, nullptr));
  }
  gzclose(f);
  return !rec.cycles.empty();
}

uint16_t chunkSamples() {
  const char* env = std::getenv("VIGIL_BENCH_CHUNK_SAMPLES");
  return env != nullptr ? static_cast<uint16_t>(std::atoi(env))
                        : StoreOptions{}.max_samples_per_chunk;
}

StoreOptions benchOptions() {
  StoreOptions o;
  o.max_samples_per_chunk = chunkSamples();
  return o;
}

void compression(const Recording& rec, int step_cycles, int interval_s) {
  auto store = makeMemStore(benchOptions());
  std::size_t appended = 0;
  for (std::size_t c = 0; c < rec.cycles.size(); c += step_cycles) {
    const int64_t t = rec.cycle_ts[0] + static_cast<int64_t>(c / step_cycles) * interval_s * 1000;
    for (const auto& [id, v] : rec.cycles[c]) {
      if (store->append(rec.series[id], t, v).isOk()) {
        ++appended;
      }
    }
  }
  const StoreStats st = store->stats();
  std::printf(
      "compression  interval=%2ds  series=%zu samples=%zu (%.0f per series)  "
      "bytes/sample=%.3f  index+bookkeeping bytes/series=%.0f\n",
      interval_s, st.series, st.samples,
      static_cast<double>(st.samples) / static_cast<double>(st.series),
      static_cast<double>(st.chunk_bytes) / static_cast<double>(st.samples),
      static_cast<double>(st.index_bytes) / static_cast<double>(st.series));
}

// 10,000 node-like series: 25 metric names x 400 label combinations.
MetricBatch syntheticBatch(int cycle, std::mt19937_64& rng) {
  MetricBatch b;
  static std::vector<double> state(10000, 0);
  for (int m = 0; m < 25; ++m) {
    auto& f = b.family("node_metric_" + std::to_string(m) + "_total", "h", MetricType::kCounter);
    for (int i = 0; i < 400; ++i) {
      double& v = state[static_cast<std::size_t>(m * 400 + i)];
      // Counters growing at varied rates; a fifth of them idle.
      v += (i % 5 == 0) ? 0 : static_cast<double>(rng() % 10000) / 100.0;
      MetricBatch::add(f,
                       {{"cpu", std::to_string(i % 16)},
                        {"device", "dev" + std::to_string(i / 16)},
                        {"instance", "node-1:9100"},
                        {"job", "node"}},
                       v);
    }
  }
  (void)cycle;
  return b;
}

struct DecodeTiming {
  std::size_t decoded = 0;
  double median_ms = 0;
  double best_ms = 0;
};

// Decodes every series over [mint, maxt] seven times; the median is what we quote.
DecodeTiming timeRangeDecode(Store& store, int64_t mint, int64_t maxt) {
  std::vector<double> runs;
  DecodeTiming timing;
  for (int r = 0; r < 7; ++r) {
    const auto s = Clock::now();
    auto result = store.select({}, mint, maxt);
    runs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
    timing.decoded = 0;
    for (const auto& ss : result) {
      timing.decoded += ss.samples.size();
    }
  }
  std::sort(runs.begin(), runs.end());
  timing.median_ms = runs[runs.size() / 2];
  timing.best_ms = runs[0];
  return timing;
}

void appendThroughput() {
  auto store = makeMemStore(benchOptions());
  auto source = store->registerSource("bench");
  std::mt19937_64 rng(42);
  const int cycles = 600;
  std::vector<MetricBatch> batches;
  for (int c = 0; c < 50; ++c) {
    batches.push_back(syntheticBatch(c, rng));
  }
  // First cycle creates the series; time the steady state that follows.
  store->appendBatch(source, 0, batches[0]);
  const auto start = Clock::now();
  for (int c = 1; c <= cycles; ++c) {
    store->appendBatch(source, c * 15000LL, batches[static_cast<std::size_t>(c % 50)]);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const double samples = 10000.0 * cycles;
  std::printf(
      "append       10000 series x %d cycles on one thread: %.2f M samples/s (%.0f ns "
      "per sample)\n",
      cycles, samples / secs / 1e6, secs / samples * 1e9);

  // Range decode: every series over the last hour (240 samples each at 15 s).
  const int64_t maxt = cycles * 15000LL;
  const int64_t mint = maxt - 3600 * 1000;
  const DecodeTiming timing = timeRangeDecode(*store, mint, maxt);
  std::printf(
      "range decode 10000 synthetic high-entropy series x 1h at 15s (%zu samples): "
      "median %.1f ms, best %.1f ms\n",
      timing.decoded, timing.median_ms, timing.best_ms);
  const StoreStats st = store->stats();
  std::printf("synthetic    bytes/sample=%.3f  index+bookkeeping bytes/series=%.0f\n",
              static_cast<double>(st.chunk_bytes) / static_cast<double>(st.samples),
              static_cast<double>(st.index_bytes) / static_cast<double>(st.series));
}

// Range decode on real values: 10,000 series, each replaying one recorded series (the
// recording's series times 67 instances), 1 h at 15 s. The recorded 1 s values are replayed as
// consecutive 15 s samples, so values change a little less per step than a real 15 s scrape.
void realDecode(const Recording& rec) {
  auto store = makeMemStore(benchOptions());
  const std::size_t nseries = 10000;
  std::vector<LabelSet> labels(nseries);
  for (std::size_t i = 0; i < nseries; ++i) {
    labels[i] = rec.series[i % rec.series.size()];
    labels[i].push_back({"instance", "node-" + std::to_string(i / rec.series.size())});
    std::sort(labels[i].begin(), labels[i].end(),
              [](const Label& a, const Label& b) { return a.name < b.name; });
  }
  // Latest value of each recorded series per cycle.
  std::vector<double> current(rec.series.size(), 0);
  const int cycles = std::min<int>(static_cast<int>(rec.cycles.size()), 2 * 240);
  for (int c = 0; c < cycles; ++c) {
    for (const auto& [id, v] : rec.cycles[static_cast<std::size_t>(c)]) {
      current[id] = v;
    }
    for (std::size_t i = 0; i < nseries; ++i) {
      (void)store->append(labels[i], c * 15000LL, current[i % rec.series.size()]);
    }
  }
  const int64_t maxt = (cycles - 1) * 15000LL;
  const int64_t mint = maxt - 3600 * 1000 + 1;
  const DecodeTiming timing = timeRangeDecode(*store, mint, maxt);
  const StoreStats st = store->stats();
  std::printf(
      "range decode 10000 real-valued series x 1h at 15s (%zu samples, %.2f bytes/sample "
      "stored): median %.1f ms, best %.1f ms\n",
      timing.decoded, static_cast<double>(st.chunk_bytes) / static_cast<double>(st.samples),
      timing.median_ms, timing.best_ms);
}

// Whether a recorded series is a counter by its name (the _total suffix): what the checkpoint
// benchmark carries on from one pass of the recording to the next.
bool isCounter(const LabelSet& labels) {
  return std::any_of(labels.begin(), labels.end(), [](const Label& l) {
    return l.name == "__name__" && l.value.ends_with("_total");
  });
}

// A node's store at steady state, full to the default retention (2 h at 1 s: the recording
// replayed over and over, each pass's counters carried on from the last's end), written as a
// checkpoint, as vigil does every storage.checkpoint_interval: the CPU time that costs (the
// calling thread's, median of five), which a short run of node_bench never reaches.
void checkpointCost(const Recording& rec) {
  auto store = makeMemStore(benchOptions());
  const int64_t cycles = StoreOptions{}.retention.count() / 1000;
  const std::size_t recorded = rec.cycles.size();
  // Each series' last value in the recording and its first: what a pass adds to a counter.
  std::vector<double> first(rec.series.size(), 0);
  std::vector<double> last(rec.series.size(), 0);
  for (std::size_t c = recorded; c-- > 0;) {
    for (const auto& [id, v] : rec.cycles[c]) {
      first[id] = v;
    }
  }
  for (const auto& cycle : rec.cycles) {
    for (const auto& [id, v] : cycle) {
      last[id] = v;
    }
  }
  for (int64_t c = 0; c < cycles; ++c) {
    const auto pass = static_cast<double>(static_cast<std::size_t>(c) / recorded);
    const int64_t t = rec.cycle_ts[0] + c * 1000;
    for (const auto& [id, v] : rec.cycles[static_cast<std::size_t>(c) % recorded]) {
      const bool counter = isCounter(rec.series[id]);
      (void)store->append(rec.series[id], t, counter ? v + pass * (last[id] - first[id]) : v);
    }
  }
  const std::string path =
      (std::filesystem::temp_directory_path() / "vigil_store_bench.checkpoint").string();
  std::vector<double> cpu_ms;
  for (int i = 0; i < 5; ++i) {
    timespec a{};
    timespec b{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    if (Status st = store->saveCheckpoint(path); !st.isOk()) {
      std::printf("checkpoint   failed: %s\n", st.toString().c_str());
      return;
    }
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
    cpu_ms.push_back(static_cast<double>(b.tv_sec - a.tv_sec) * 1e3 +
                     static_cast<double>(b.tv_nsec - a.tv_nsec) / 1e6);
  }
  std::sort(cpu_ms.begin(), cpu_ms.end());
  FILE* f = std::fopen(path.c_str(), "rb");
  long bytes = 0;
  if (f != nullptr) {
    std::fseek(f, 0, SEEK_END);
    bytes = std::ftell(f);
    std::fclose(f);
  }
  std::remove(path.c_str());
  const StoreStats st = store->stats();
  std::printf(
      "checkpoint   %zu series, %zu samples (2 h at 1 s): %.1f MiB written in %.2f ms of CPU "
      "(median of 5); every 1m that is %.3f ms a second\n",
      st.series, st.samples, static_cast<double>(bytes) / 1048576.0, cpu_ms[2], cpu_ms[2] / 60);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : VIGIL_BENCH_DATA "/node_recording_1s.txt.gz";
  Recording rec;
  if (loadRecording(path, rec)) {
    std::printf("recording    %s: %zu series, %zu cycles at 1 s\n", path.c_str(), rec.series.size(),
                rec.cycles.size());
    compression(rec, 1, 1);
    compression(rec, 10, 10);
    compression(rec, 15, 15);
    realDecode(rec);
    checkpointCost(rec);
  } else {
    std::printf("recording    %s not readable: compression on real data skipped\n", path.c_str());
  }
  appendThroughput();
  return 0;
}
