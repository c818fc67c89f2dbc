// CPU time of each node collector per cycle, measured in the collecting thread:
//
//   build/bench/collector_bench [CYCLES] [PAUSE_MS]
//
// Runs node_exporter's collectors (those node_bench compares) in rounds on this machine, as the
// scheduler does (one batch per collector, recycled, two in turn), and prints each one's CPU
// time per cycle. With PAUSE_MS (say 100 or 1000) between rounds the caches go cold as they do
// between real cycles, which costs about twice the warm figure: the figure to look at for
// vigil's CPU per scrape; without a pause, the collector's own work. Each batch then goes into
// a store, as in the agent, and the store's appends are timed on their own line.
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "vigil/collector.h"
#include "vigil/store.h"

namespace {

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

struct Measured {
  std::string name;
  vigil::CollectorPtr collector;
  vigil::MetricBatch batches[2];
  vigil::Store::SourceId source = 0;
  double seconds = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const int cycles = argc > 1 ? std::atoi(argv[1]) : 1000;
  const int pause_ms = argc > 2 ? std::atoi(argv[2]) : 0;
  constexpr int kWarmUp = 20;
  const vigil::HostPaths paths;
  const auto store = vigil::makeMemStore();
  double store_seconds = 0;
  std::vector<Measured> measured;
  for (const char* name : {"cpu", "meminfo", "loadavg", "stat", "vmstat", "filefd", "pressure",
                           "netdev", "netclass", "netstat", "sockstat", "conntrack", "diskstats",
                           "filesystem", "uname", "time", "os", "timex"}) {
    for (const auto& factory : vigil::builtinCollectors()) {
      if (factory.name != name) {
        continue;
      }
      vigil::CollectorSettings settings;
      settings.name = name;
      settings.enabled = true;
      auto collector = factory.create(settings, paths);
      if (!collector) {
        std::fprintf(stderr, "%s: %s\n", name, collector.status().message().c_str());
        return 1;
      }
      measured.emplace_back();
      measured.back().name = name;
      measured.back().collector = std::move(collector).value();
      measured.back().source = store->registerSource(name);
    }
  }
  for (int round = 0; round < kWarmUp + cycles; ++round) {
    const int64_t timestamp_ms = 1'700'000'000'000 + round * 1000LL;
    for (Measured& m : measured) {
      const double start = threadCpuSeconds();
      vigil::MetricBatch& batch = m.batches[round % 2];
      batch.recycle();
      vigil::CollectContext ctx{std::chrono::steady_clock::now() + std::chrono::seconds(5), &paths};
      ctx.timestamp_ms = timestamp_ms;
      ctx.round = static_cast<uint64_t>(round) + 1;
      (void)m.collector->collect(ctx, batch);  // a failing collector costs what it costs
      batch.sealLayout();
      const double collected = threadCpuSeconds();
      store->appendBatch(m.source, timestamp_ms, batch);
      if (round >= kWarmUp) {
        m.seconds += collected - start;
        store_seconds += threadCpuSeconds() - collected;
      }
    }
    if (pause_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
  }
  double total_us = 0;
  for (const Measured& m : measured) {
    const double us = m.seconds / cycles * 1e6;
    total_us += us;
    std::printf("%-11s %8.1f us/cycle  %4zu series\n", m.name.c_str(), us,
                m.batches[0].seriesCount());
  }
  std::printf("%-11s %8.1f us/cycle  (%d cycles, %d ms apart)\n", "all", total_us, cycles,
              pause_ms);
  std::printf("%-11s %8.1f us/round  (every collector's batch appended)\n", "store",
              store_seconds / cycles * 1e6);
  return 0;
}
