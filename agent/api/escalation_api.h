#pragma once
// Escalation and acknowledgement over HTTP (vigil's own API, JSON):
//   GET    /api/v1/escalations                  escalating groups, their level and ack
//   POST   /api/v1/groups/ID/ack                (ID: the id, or the percent-encoded group key)
//                                               {"by": "alice", "comment": "...",
//                                                "expires_in": "1h" | "expires_at": RFC 3339 |
//                                                "until_resolved": true}
//   DELETE /api/v1/groups/ID/ack                withdraw; the current level is told again
//   POST   /api/v1/alerts/FINGERPRINT/ack       the same body, for one alert
//   DELETE /api/v1/alerts/FINGERPRINT/ack

#include "../core/alerting_service.h"
#include "../http/http_server.h"

namespace vigil {

/// Registers the routes; `service` must outlive the server.
void registerEscalationApi(HttpServer& http, AlertingService& service);

}  // namespace vigil
