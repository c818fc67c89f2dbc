#pragma once
// /api/v1/rules and /api/v1/alerts in Prometheus's JSON shapes.

#include <functional>
#include <vector>

#include "../core/rule_manager.h"
#include "../http/http_server.h"

namespace vigil {

void registerRulesApi(HttpServer& http, std::function<std::vector<RuleGroupView>()> snapshot);

}  // namespace vigil
