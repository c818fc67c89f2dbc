#pragma once
// The StatsD listener: a UDP socket on `listen_address` (Boost.Asio, its own thread) feeding a
// StatsdAggregator; each collection publishes what it holds. Without a listen_address the
// collector does nothing.

#include "vigil/collector.h"

namespace vigil::collectors {

Result<CollectorPtr> makeStatsdCollector(const CollectorSettings& settings, const HostPaths& paths);

}  // namespace vigil::collectors
