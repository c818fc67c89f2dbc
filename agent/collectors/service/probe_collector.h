#pragma once
// Blackbox-style probes: HTTP(S) GETs with blackbox_exporter's metrics (probe_success,
// probe_duration_seconds, probe_http_status_code, probe_http_duration_seconds{phase},
// probe_ssl_earliest_cert_expiry over the whole presented chain) and TCP connects. How the
// deployment's TLS certificates are watched. Each probe's series carry `target`.

#include "vigil/collector.h"

namespace vigil::collectors {

Result<CollectorPtr> makeProbeCollector(const CollectorSettings& settings, const HostPaths& paths);

}  // namespace vigil::collectors
