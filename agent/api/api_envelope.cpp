#include "api_envelope.h"

#include <nlohmann/json.hpp>

#include "../http/http_server.h"

namespace vigil {

using json = nlohmann::json;

void respondData(HttpResponse& res, const json& data) {
  res.content_type = "application/json";
  res.body = json{{"status", "success"}, {"data", data}}.dump(-1, ' ', false,
                                                              json::error_handler_t::replace);
}

void respondError(HttpResponse& res, int status, std::string_view type,
                  const std::string& message) {
  json body{{"status", "error"}, {"error", message}};
  if (!type.empty()) {
    body["errorType"] = type;
  }
  res.status = status;
  res.content_type = "application/json";
  res.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace vigil
