#pragma once
// Metrics pushed over HTTP (see push_registry.h), collected every cycle.

#include "vigil/collector.h"

namespace vigil::collectors {

Result<CollectorPtr> makePushCollector(const CollectorSettings& settings, const HostPaths& paths);

}  // namespace vigil::collectors
