#pragma once
// Alertmanager's API v2 on vigil's alert pipeline: POST/GET /api/v2/alerts,
// /api/v2/alerts/groups, GET/POST /api/v2/silences, GET/DELETE /api/v2/silence/ID,
// /api/v2/receivers and /api/v2/status, in Alertmanager 0.25's JSON shapes, so that a
// Prometheus can send alerts to vigil and amtool can query it and manage silences.

#include <string>

#include "../core/alerting_service.h"
#include "../http/http_server.h"

namespace vigil {

struct AlertmanagerApiOptions {
  std::string version;
  std::string revision;
  int64_t started_at_ms = 0;
};

/// Registers the routes; `service` must outlive the server.
void registerAlertmanagerApi(HttpServer& http, AlertingService& service,
                             AlertmanagerApiOptions options);

}  // namespace vigil
