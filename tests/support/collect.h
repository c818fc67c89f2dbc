#pragma once
// Runs one collection cycle of a service collector against a target and flattens the batch into
// "name|label=value|..." keys (the labels named in `key_labels`, in label order), summing the
// samples that share a key.
#include <catch2/catch.hpp>
#include <chrono>
#include <map>
#include <set>
#include <string>

#include "vigil/collector.h"

namespace vigil::test {

using CollectorMaker = Result<CollectorPtr> (*)(const CollectorSettings&, const HostPaths&);

/// The node collectors the recorded tree under tests/fixtures/node feeds: those that read files
/// under the procfs, sysfs and rootfs roots, and time, whose clock is live but whose clocksource
/// series come from the tree.
inline constexpr const char* kFixtureNodeCollectors[] = {
    "cpu",      "meminfo", "loadavg",      "stat",       "vmstat",   "filefd",    "pressure",
    "netdev",   "time",    "diskstats",    "netstat",    "sockstat", "conntrack", "os",
    "netclass", "entropy", "softnet",      "udp_queues", "arp",      "schedstat", "cpufreq",
    "hwmon",    "dmi",     "thermal_zone", "edac",       "nvme",     "rapl"};

#ifdef VIGIL_FIXTURES
/// The roots of the recorded tree (see kFixtureNodeCollectors).
inline HostPaths nodeFixturePaths() {
  HostPaths p;
  p.procfs = VIGIL_FIXTURES "/node/proc";
  p.sysfs = VIGIL_FIXTURES "/node/sys";
  p.rootfs = VIGIL_FIXTURES "/node/root";
  return p;
}
#endif

/// The built-in collector `name` (as the configuration names it), enabled, reading `paths`.
inline CollectorPtr makeBuiltinCollector(const std::string& name, const HostPaths& paths) {
  for (const auto& f : builtinCollectors()) {
    if (f.name == name) {
      CollectorSettings s;
      s.name = name;
      s.enabled = true;
      auto c = f.create(s, paths);
      REQUIRE(c.isOk());
      return std::move(c).value();
    }
  }
  FAIL("no collector " << name);
  return nullptr;
}

inline std::map<std::string, double> collectOnce(CollectorMaker make, const ServiceTarget& target,
                                                 const std::set<std::string>& key_labels,
                                                 Status* status = nullptr) {
  CollectorSettings settings;
  settings.targets = {target};
  auto collector = make(settings, HostPaths{});
  REQUIRE(collector);
  MetricBatch batch;
  CollectContext ctx;
  ctx.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  Status st = (*collector)->collect(ctx, batch);
  if (status != nullptr) {
    *status = st;
  }
  std::map<std::string, double> out;
  for (const auto& f : batch.families()) {
    for (const auto& s : f.samples) {
      std::string key = f.name;
      for (const auto& l : s.labels) {
        if (key_labels.count(l.name) != 0) {
          key += "|" + l.name + "=" + l.value;
        }
      }
      out[key] += s.value;
    }
  }
  return out;
}

/// Every sample of a batch as "name+suffix|label=value|..." (all labels) -> value.
inline std::map<std::string, double> flattenBatch(const MetricBatch& batch) {
  std::map<std::string, double> out;
  for (const auto& f : batch.families()) {
    for (const auto& s : f.samples) {
      std::string key = f.name + s.suffix;
      for (const auto& l : s.labels) {
        key += "|" + l.name + "=" + l.value;
      }
      out[key] = s.value;
    }
  }
  return out;
}

/// One cycle of `collector` with `allowed` before its deadline; the cycle must succeed.
inline MetricBatch collectBatch(Collector& collector, std::chrono::milliseconds allowed) {
  MetricBatch batch;
  CollectContext ctx;
  ctx.deadline = std::chrono::steady_clock::now() + allowed;
  REQUIRE(collector.collect(ctx, batch).isOk());
  return batch;
}

}  // namespace vigil::test
