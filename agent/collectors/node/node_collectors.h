#pragma once
// node_exporter 1.5-compatible collectors, one per node_exporter collector name. Each reads
// from the configured procfs/sysfs roots so that vigil in a container reads the host.

#include <chrono>
#include <functional>

#include "vigil/collector.h"

struct statfs;

namespace vigil::collectors::node {

Result<CollectorPtr> makeCpuCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeMeminfoCollector(const CollectorSettings& settings,
                                          const HostPaths& paths);
Result<CollectorPtr> makeLoadavgCollector(const CollectorSettings& settings,
                                          const HostPaths& paths);
Result<CollectorPtr> makeStatCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeVmstatCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeFilefdCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makePressureCollector(const CollectorSettings& settings,
                                           const HostPaths& paths);
Result<CollectorPtr> makeNetdevCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeUnameCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeTextfileCollector(const CollectorSettings& settings,
                                           const HostPaths& paths);
Result<CollectorPtr> makeTimeCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeDiskstatsCollector(const CollectorSettings& settings,
                                            const HostPaths& paths);
Result<CollectorPtr> makeFilesystemCollector(const CollectorSettings& settings,
                                             const HostPaths& paths);
Result<CollectorPtr> makeNetclassCollector(const CollectorSettings& settings,
                                           const HostPaths& paths);
Result<CollectorPtr> makeNetstatCollector(const CollectorSettings& settings,
                                          const HostPaths& paths);
Result<CollectorPtr> makeSockstatCollector(const CollectorSettings& settings,
                                           const HostPaths& paths);
Result<CollectorPtr> makeConntrackCollector(const CollectorSettings& settings,
                                            const HostPaths& paths);
Result<CollectorPtr> makeOsCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeTimexCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeEntropyCollector(const CollectorSettings& settings,
                                          const HostPaths& paths);
Result<CollectorPtr> makeSoftnetCollector(const CollectorSettings& settings,
                                          const HostPaths& paths);
Result<CollectorPtr> makeUdpQueuesCollector(const CollectorSettings& settings,
                                            const HostPaths& paths);
Result<CollectorPtr> makeArpCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeSchedstatCollector(const CollectorSettings& settings,
                                            const HostPaths& paths);
Result<CollectorPtr> makeCpufreqCollector(const CollectorSettings& settings,
                                          const HostPaths& paths);
Result<CollectorPtr> makeHwmonCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeDmiCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeThermalZoneCollector(const CollectorSettings& settings,
                                              const HostPaths& paths);
Result<CollectorPtr> makeEdacCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeNvmeCollector(const CollectorSettings& settings, const HostPaths& paths);
Result<CollectorPtr> makeRaplCollector(const CollectorSettings& settings, const HostPaths& paths);

/// The filesystem collector with statfs(2) replaced, to simulate hung mounts in tests.
CollectorPtr makeFilesystemCollectorForTest(
    const HostPaths& paths, std::function<int(const std::string&, struct statfs&)> stat,
    std::chrono::milliseconds mount_timeout);

}  // namespace vigil::collectors::node
