// StatsD ingest on one core: the aggregator vigil's UDP listener feeds, over a realistic mix of
// counters, gauges and timers with tags and sample rates (one line per datagram, as most
// clients send), 2 million datagrams. Target: at least 500,000 datagrams per second.
//
//   build/bench/statsd_bench
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "agent/collectors/push/statsd.h"

int main() {
  std::vector<std::string> packets;
  for (int i = 0; i < 1000; ++i) {
    const std::string n = std::to_string(i % 50);
    packets.push_back("api.requests:1|c|#route:/r" + n + ",code:200");
    packets.push_back("api.latency:" + std::to_string(5 + i % 200) + "|ms|@0.5|#route:/r" + n);
    packets.push_back("queue.depth:" + std::to_string(i % 30) + "|g|#queue:q" +
                      std::to_string(i % 5));
    packets.push_back("checkout.total:" + std::to_string(10 + i % 90) + ".5|h|#shop:eu");
  }
  vigil::collectors::StatsdAggregator agg;
  constexpr int kDatagrams = 2'000'000;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kDatagrams; ++i) {
    agg.ingestPacket(packets[static_cast<std::size_t>(i) % packets.size()]);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const auto stats = agg.stats();
  std::printf(
      "statsd: %d datagrams in %.3f s: %.0f datagrams/s on one core (target >= 500000); "
      "lines ok %llu, bad %llu\n",
      kDatagrams, seconds, kDatagrams / seconds, static_cast<unsigned long long>(stats.lines_ok),
      static_cast<unsigned long long>(stats.lines_bad));
  return 0;
}
