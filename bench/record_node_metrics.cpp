// Records real node metrics with vigil's own collectors, for the store benchmark:
//   record_node_metrics SECONDS OUT_FILE [INTERVAL_MS]
// Writes one line per series ("S id labels") when first seen and one line per sample
// ("id timestamp_ms value"), so that the benchmark can replay the recording at 1s, or
// subsample it to 10s and 15s intervals.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "vigil/collector.h"
#include "vigil/exporters/text_format.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: record_node_metrics SECONDS OUT_FILE [INTERVAL_MS]\n";
    return 2;
  }
  const int seconds = std::atoi(argv[1]);
  const int interval_ms = argc > 3 ? std::atoi(argv[3]) : 1000;
  std::ofstream out(argv[2]);
  vigil::HostPaths paths;
  std::vector<vigil::CollectorPtr> collectors;
  for (const auto& f : vigil::builtinCollectors()) {
    if (f.name == "process") {
      continue;  // the recorder's own process metrics are not node metrics
    }
    vigil::CollectorSettings s;
    s.name = f.name;
    auto c = f.create(s, paths);
    if (c) {
      collectors.push_back(std::move(c).value());
    }
  }
  std::map<std::string, int> ids;
  auto next = std::chrono::system_clock::now();
  const int cycles = seconds * 1000 / interval_ms;
  for (int i = 0; i < cycles; ++i) {
    const int64_t ts = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
    for (auto& c : collectors) {
      vigil::MetricBatch batch;
      vigil::CollectContext ctx{std::chrono::steady_clock::now() + std::chrono::seconds(1), &paths};
      (void)c->collect(ctx, batch);
      for (const auto& family : batch.families()) {
        for (const auto& sample : family.samples) {
          std::string key = family.name + sample.suffix + "{";
          for (const auto& l : sample.labels) {
            key += l.name + "=\"";
            vigil::exporters::appendEscapedLabelValue(key, l.value);
            key += "\",";
          }
          key += "}";
          auto [it, inserted] = ids.try_emplace(key, static_cast<int>(ids.size()));
          if (inserted) {
            out << "S " << it->second << ' ' << key << '\n';
          }
          std::string value;
          vigil::exporters::appendFloat(value, sample.value);
          out << it->second << ' ' << ts << ' ' << value << '\n';
        }
      }
    }
    next += std::chrono::milliseconds(interval_ms);
    std::this_thread::sleep_until(next);
  }
  return 0;
}
