#pragma once
// The JSON envelope of the Prometheus-style API answers (`/api/v1/...`), shared by the
// handlers that answer in it, so that they answer alike.

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace vigil {

struct HttpResponse;

/// `{"status":"success","data":DATA}`, as Prometheus's HTTP API answers.
void respondData(HttpResponse& res, const nlohmann::json& data);
/// `{"status":"error","errorType":TYPE,"error":MESSAGE}` with HTTP `status`; without
/// errorType when `type` is empty.
void respondError(HttpResponse& res, int status, std::string_view type, const std::string& message);

}  // namespace vigil
