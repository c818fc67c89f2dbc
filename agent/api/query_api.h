#pragma once
// The Prometheus HTTP query API (/api/v1/query, query_range, series, labels, label values,
// status/buildinfo), with Prometheus's JSON shapes and error types, so that Grafana's
// Prometheus data source can point at a node.

#include <string>

#include "../http/http_server.h"
#include "vigil/store.h"

namespace vigil {

struct QueryApiOptions {
  std::string version;
  std::string revision;
  std::chrono::milliseconds lookback{5 * 60 * 1000};
  std::size_t max_samples = 50'000'000;
  std::size_t max_points_per_series = 11000;  // Prometheus's limit on range query resolution
  /// Longest a query may take (Prometheus's --query.timeout); a request's `timeout` parameter
  /// can only shorten it.
  std::chrono::milliseconds timeout{2 * 60 * 1000};
};

/// Registers the API's routes on `http`; `store` must outlive the server.
void registerQueryApi(HttpServer& http, const Store& store, QueryApiOptions options);

/// Decodes an application/x-www-form-urlencoded string (a query string or a POST body) into
/// name/value pairs, in order, repeated names kept.
std::vector<std::pair<std::string, std::string>> parseForm(std::string_view text);

}  // namespace vigil
