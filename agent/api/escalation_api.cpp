#include "escalation_api.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include "api_envelope.h"
#include "api_time.h"
#include "vigil/clock.h"
#include "vigil/duration.h"

namespace vigil {

namespace {

using json = nlohmann::json;

json ackJson(const alerting::Acknowledgement& a) {
  return {{"by", a.by},
          {"comment", a.comment},
          {"at", formatRfc3339(a.at)},
          {"expiresAt", a.expires_at == 0 ? json() : json(formatRfc3339(a.expires_at))}};
}

// The body of an acknowledgement: who, why, and until when.
Result<alerting::Acknowledgement> parseAck(const std::string& body, int64_t now) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return invalidArgument("the body must be a JSON object, e.g. {\"by\": \"alice\"}");
  }
  alerting::Acknowledgement ack;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    if (key == "by" || key == "comment" || key == "expires_in" || key == "expires_at") {
      if (!it.value().is_string()) {
        return invalidArgument(key + ": expected a string");
      }
    } else if (key == "until_resolved") {
      if (!it.value().is_boolean()) {
        return invalidArgument("until_resolved: expected true or false");
      }
    } else {
      return invalidArgument(key +
                             ": unknown field (expected by, comment, expires_in, expires_at, "
                             "until_resolved)");
    }
  }
  ack.by = j.value("by", "");
  if (ack.by.empty()) {
    return invalidArgument("by: who acknowledges is required");
  }
  ack.comment = j.value("comment", "");
  const int given = (j.contains("expires_in") ? 1 : 0) + (j.contains("expires_at") ? 1 : 0) +
                    (j.value("until_resolved", false) ? 1 : 0);
  if (given > 1) {
    return invalidArgument("give at most one of expires_in, expires_at and until_resolved");
  }
  if (j.contains("expires_in")) {
    auto d = parseDuration(j["expires_in"].get<std::string>());
    if (!d || d->count() <= 0) {
      return invalidArgument("expires_in: expected a positive duration such as 30m");
    }
    ack.expires_at = now + d->count();
  } else if (j.contains("expires_at")) {
    auto t = parseApiTime(j["expires_at"].get<std::string>());
    if (!t || *t <= now) {
      return invalidArgument("expires_at: expected a future RFC 3339 time");
    }
    ack.expires_at = *t;
  } else if (j.value("until_resolved", false)) {
    ack.expires_at = -1;  // the escalator's "until resolved"
  }
  return ack;
}

void reply(HttpResponse& res, const Status& st) {
  if (st.isOk()) {
    respondData(res, json::object());
  } else {
    respondError(res, st.code() == StatusCode::kNotFound ? 404 : 500, "", st.message());
  }
}

// A group named by its escalation id or by its (percent-encoded) group key.
std::string groupId(const AlertingService& service, const std::string& segment) {
  const std::string key = percentDecode(segment);
  for (const auto& e : service.escalations()) {
    if (e.id == segment || e.group_key == key) {
      return e.id;
    }
  }
  return segment;
}

// "/api/v1/groups/ID/ack" -> ID; empty when the path has another shape.
std::string idIn(const std::string& path, const std::string& prefix) {
  const std::string suffix = "/ack";
  if (path.size() <= prefix.size() + suffix.size() || !path.ends_with(suffix)) {
    return "";
  }
  std::string id = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
  return id.find('/') == std::string::npos ? id : "";
}

}  // namespace

void registerEscalationApi(HttpServer& http, AlertingService& service) {
  http.route("/api/v1/escalations", {"GET"}, [&service](const HttpRequest&, HttpResponse& res) {
    const int64_t now = unixNowMs();
    json out = json::array();
    for (const auto& e : service.escalations()) {
      json labels = json::object();
      for (const auto& l : e.group_labels) {
        labels[l.name] = l.value;
      }
      out.push_back(
          {{"id", e.id},
           {"receiver", e.receiver},
           {"groupKey", e.group_key},
           {"groupLabels", labels},
           {"policy", e.policy},
           {"level", e.level + 1},
           {"repeat", e.run},
           {"startedAt", formatRfc3339(e.started_at)},
           {"nextEscalationAt", e.next_at == 0 ? json() : json(formatRfc3339(e.next_at))},
           {"notified", e.notified},
           {"acknowledgement", e.ack ? ackJson(*e.ack) : json()},
           {"acknowledged", e.ack && (e.ack->expires_at == 0 || e.ack->expires_at > now)}});
    }
    respondData(res, out);
  });
  http.routePrefix("/api/v1/groups/", {"POST", "DELETE"},
                   [&service](const HttpRequest& req, HttpResponse& res) {
                     const std::string id = groupId(service, idIn(req.path, "/api/v1/groups/"));
                     if (id.empty()) {
                       return respondError(res, 404, "",
                                           "expected /api/v1/groups/ID/ack (ID: the id or the "
                                           "percent-encoded group key)");
                     }
                     if (req.method == "DELETE") {
                       return reply(res, service.unacknowledge(id));
                     }
                     auto ack = parseAck(req.body, unixNowMs());
                     if (!ack) {
                       return respondError(res, 400, "", ack.status().message());
                     }
                     reply(res, service.acknowledge(id, std::move(ack).value()));
                   });
  http.routePrefix("/api/v1/alerts/", {"POST", "DELETE"},
                   [&service](const HttpRequest& req, HttpResponse& res) {
                     const std::string fp = idIn(req.path, "/api/v1/alerts/");
                     if (fp.empty()) {
                       return respondError(res, 404, "", "expected /api/v1/alerts/FINGERPRINT/ack");
                     }
                     if (req.method == "DELETE") {
                       return reply(res, service.unacknowledgeAlert(fp));
                     }
                     auto ack = parseAck(req.body, unixNowMs());
                     if (!ack) {
                       return respondError(res, 400, "", ack.status().message());
                     }
                     if (ack->expires_at < 0) {
                       ack->expires_at = 0;  // an alert acknowledgement lasts until withdrawn
                     }
                     reply(res, service.acknowledgeAlert(fp, std::move(ack).value()));
                   });
}

}  // namespace vigil
