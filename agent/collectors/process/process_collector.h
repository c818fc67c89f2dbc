#pragma once
// process_* metrics about vigil itself, named like every Prometheus client library names them.

#include "vigil/collector.h"

namespace vigil::collectors {

Result<CollectorPtr> makeProcessCollector(const CollectorSettings& settings,
                                          const HostPaths& paths);

}  // namespace vigil::collectors
