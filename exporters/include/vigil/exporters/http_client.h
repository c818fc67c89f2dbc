#pragma once
// The HTTP client every request vigil sends out goes through (notifications, remote write,
// `vigil query`): TLS trust and a deadline from an HttpClientConfig, its configured headers and
// Authorization, the Retry-After of an answer. Boost.Beast does the protocol; it stays in
// http_client.cpp, behind this small header.
//
// Not cpp-httplib, although it would be less code: Debian's libcpp-httplib.so initialises
// OpenSSL with all its error strings from a constructor as soon as it is loaded, which cost
// every vigil about 2 MiB of resident memory whether or not it ever spoke TLS. Here OpenSSL is
// touched only by the first https request.

#include <chrono>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vigil/alerting/config.h"
#include "vigil/status.h"

namespace vigil::exporters {

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

/// "scheme://host[:port]" and the path ("/" when the URL has none).
struct UrlParts {
  std::string origin;
  std::string path;
};
UrlParts splitUrl(const std::string& url);

struct HttpAnswer {
  int status = 0;
  std::string body;         // at most HttpClient::kMaxBody bytes
  std::string retry_after;  // the Retry-After header, empty without one
};

/// HTTP/1.1 to one origin ("http://host:port", "https://host", "http://[::1]:port"), the
/// connection kept open for the next request. https is verified against the system's CAs or
/// the configured ca_file, and the server's name or address, unless insecure_skip_verify.
/// One thread uses a client at a time; cancel() may come from any thread.
class HttpClient {
 public:
  static constexpr std::size_t kMaxBody = 1 << 20;

  HttpClient(const std::string& origin, alerting::HttpClientConfig http,
             std::chrono::milliseconds timeout);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// One request, connecting (again) if needed; the whole exchange ends within the timeout.
  /// An error names what failed: an invalid origin (kInvalidArgument), or the connection, the
  /// TLS handshake (an untrusted certificate says to set tls_config.ca_file) or the exchange
  /// (kUnavailable).
  Result<HttpAnswer> request(const std::string& method, const std::string& target,
                             const HttpHeaders& headers, const std::string& body,
                             const std::string& content_type);
  Result<HttpAnswer> post(const std::string& target, const HttpHeaders& headers,
                          const std::string& body, const std::string& content_type) {
    return request("POST", target, headers, body, content_type);
  }
  /// Ends a request in flight (it fails) and refuses further ones.
  void cancel();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Adds the configured headers and the Authorization header (credential files read now, so a
/// rotated secret is picked up); fails when a credentials file cannot be read.
Status addConfiguredHeaders(const alerting::HttpClientConfig& http, HttpHeaders& headers);

/// The Authorization header value for the configuration; empty without authentication.
Result<std::string> authorizationHeader(const alerting::HttpClientConfig& http);

/// A Retry-After header: seconds, or an HTTP date; 0 when absent or unreadable.
std::chrono::milliseconds parseRetryAfter(const std::string& value);

/// application/x-www-form-urlencoded: name=value pairs joined by '&', percent-encoded.
std::string formEncode(const HttpHeaders& fields);

}  // namespace vigil::exporters
