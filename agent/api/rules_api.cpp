#include "rules_api.h"

#include "api_envelope.h"
#include "api_time.h"
#include "vigil/labels_json.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <ctime>

namespace vigil {

namespace {

using json = nlohmann::json;

// Prometheus writes alert values with Go's %e, shortest digits: "1e+00", "9.5e-01".
std::string alertValue(double v) {
  if (std::isnan(v)) {
    return "NaN";
  }
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  return std::string(buf, end);
}

json pairsJson(const std::vector<std::pair<std::string, std::string>>& pairs) {
  json m = json::object();
  for (const auto& [k, v] : pairs) {
    m[k] = v;
  }
  return m;
}

json alertJson(const promql::Alert& a) {
  return json{{"labels", labelsJson(a.labels)},
              {"annotations", pairsJson(a.annotations)},
              {"state", promql::alertStateName(a.state)},
              {"activeAt", formatRfc3339(a.active_at)},
              {"value", alertValue(a.value)}};
}

}  // namespace

void registerRulesApi(HttpServer& http, std::function<std::vector<RuleGroupView>()> snapshot) {
  http.route("/api/v1/alerts", {"GET"}, [snapshot](const HttpRequest&, HttpResponse& res) {
    json alerts = json::array();
    for (const auto& g : snapshot()) {
      for (const auto& rule_alerts : g.alerts) {
        for (const auto& a : rule_alerts) {
          if (a.state != promql::AlertState::kInactive) {
            alerts.push_back(alertJson(a));
          }
        }
      }
    }
    respondData(res, json{{"alerts", std::move(alerts)}});
  });
  http.route("/api/v1/rules", {"GET"}, [snapshot](const HttpRequest&, HttpResponse& res) {
    json groups = json::array();
    for (const auto& g : snapshot()) {
      json rules = json::array();
      for (std::size_t i = 0; i < g.group.rules.size(); ++i) {
        const auto& r = g.group.rules[i];
        json rule{
            {"name", r.name},
            {"query", r.expr_text},
            {"labels", pairsJson(r.labels)},
            {"health", g.last_error.empty() ? (g.last_evaluation_ms ? "ok" : "unknown") : "err"},
            {"lastError", g.last_error},
            {"lastEvaluation", formatRfc3339(g.last_evaluation_ms)},
            {"evaluationTime", g.evaluation_seconds}};
        if (r.alerting) {
          json alerts = json::array();
          std::string state = "inactive";
          for (const auto& a : g.alerts[i]) {
            if (a.state == promql::AlertState::kInactive) {
              continue;
            }
            alerts.push_back(alertJson(a));
            if (a.state == promql::AlertState::kFiring) {
              state = "firing";
            } else if (state != "firing") {
              state = "pending";
            }
          }
          rule["type"] = "alerting";
          rule["duration"] = static_cast<double>(r.for_ms) / 1000;
          rule["keepFiringFor"] = static_cast<double>(r.keep_firing_for_ms) / 1000;
          rule["annotations"] = pairsJson(r.annotations);
          rule["alerts"] = alerts;
          rule["state"] = state;
        } else {
          rule["type"] = "recording";
        }
        rules.push_back(rule);
      }
      groups.push_back({{"name", g.group.name},
                        {"file", g.group.file},
                        {"rules", rules},
                        {"interval", static_cast<double>(g.interval_ms) / 1000},
                        {"limit", g.group.limit},
                        {"evaluationTime", g.evaluation_seconds},
                        {"lastEvaluation", formatRfc3339(g.last_evaluation_ms)}});
    }
    respondData(res, json{{"groups", std::move(groups)}});
  });
}

}  // namespace vigil
