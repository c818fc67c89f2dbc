#pragma once
// Internal to exporters: what every HTTP request vigil sends out shares — TLS trust and
// timeouts from an HttpClientConfig, its configured headers and Authorization, the URL split
// httplib wants, and the Retry-After of an answer. Only for translation units that use
// httplib already.

#include <httplib.h>

#include <chrono>
#include <string>

#include "vigil/alerting/config.h"
#include "vigil/status.h"

namespace vigil::exporters {

/// "scheme://host[:port]" and the path ("/" when the URL has none).
struct UrlParts {
  std::string origin;
  std::string path;
};
UrlParts splitUrl(const std::string& url);

/// https verified against the system's CAs or the configured ca_file (unless
/// insecure_skip_verify); connect, read and write each bounded by `timeout`.
void configureClient(httplib::Client& client, const alerting::HttpClientConfig& http,
                     std::chrono::milliseconds timeout);

/// Adds the configured headers and the Authorization header (credential files read now, so a
/// rotated secret is picked up); fails when a credentials file cannot be read.
Status addConfiguredHeaders(const alerting::HttpClientConfig& http, httplib::Headers& headers);

/// The Authorization header value for the configuration; empty without authentication.
Result<std::string> authorizationHeader(const alerting::HttpClientConfig& http);

/// A Retry-After header: seconds, or an HTTP date; 0 when absent or unreadable.
std::chrono::milliseconds parseRetryAfter(const std::string& value);

}  // namespace vigil::exporters
