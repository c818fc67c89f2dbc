// StatsD and DogStatsD datagrams -> the aggregator, then its snapshot.
#include <cstdint>
#include <string_view>

#include "agent/collectors/push/statsd.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vigil::collectors::StatsdAggregator aggregator;
  aggregator.ingestPacket(std::string_view(reinterpret_cast<const char*>(data), size));
  vigil::MetricBatch out;
  aggregator.snapshot(out);
  return 0;
}
