#pragma once
// PostgreSQL servers through libpq: postgres_exporter's names for what the connection-pool and
// database-health rules need — pg_up, pg_stat_database_*, pg_stat_activity_count,
// pg_settings_max_connections, replication lag on a replica — and the round trip of a trivial
// query. Each target's series carry `target="host:port"`.

#include "vigil/collector.h"

namespace vigil::collectors {

Result<CollectorPtr> makePostgresCollector(const CollectorSettings& settings,
                                           const HostPaths& paths);

}  // namespace vigil::collectors
