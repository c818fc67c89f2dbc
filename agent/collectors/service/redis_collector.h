#pragma once
// Redis servers over RESP: INFO mapped to redis_exporter's metric names (enough for the
// cache-hit-rate and cache-health rules), redis_up, and the round trip of a PING. Each
// target's series carry `target="host:port"`.

#include "vigil/collector.h"

namespace vigil::collectors {

Result<CollectorPtr> makeRedisCollector(const CollectorSettings& settings, const HostPaths& paths);

}  // namespace vigil::collectors
