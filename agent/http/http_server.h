#pragma once
// vigil's HTTP server (Boost.Beast on its own Asio threads). Every input is bounded: header
// bytes, body bytes, time to send a request, idle keep-alive time and concurrent connections.
// Beast and Asio stay inside http_server.cpp so that nothing else compiles their headers.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../core/self_metrics.h"
#include "access.h"
#include "vigil/config.h"
#include "vigil/status.h"

namespace vigil {

struct HttpRequest {
  std::string method;                          // "GET", "POST", ...
  std::string path;                            // without the query string, not percent-decoded
  std::string query;                           // raw, without '?'
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string client;  // the peer's address, without its port
  std::string header(const std::string& lower_name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

using HttpHandler = std::function<void(const HttpRequest&, HttpResponse&)>;

struct HttpServerOptions {
  ListenAddress address;
  /// HTTPS with this certificate (reloaded when its files change); plain HTTP without.
  std::optional<WebConfig::Tls> tls;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 1024 * 1024;
  /// Time a client has to send a whole request, and vigil to send a response.
  std::chrono::milliseconds request_timeout{10000};
  /// How long an idle keep-alive connection stays open.
  std::chrono::milliseconds idle_timeout{30000};
  std::size_t max_connections = 256;
  /// Per client IP: a bucket of `burst` requests refilled at this rate; 0 for no limit.
  double requests_per_second_per_client = 0;
  double burst = 200;
  std::size_t threads = 2;
  /// Compress responses of 1 KiB or more with gzip for clients that accept it (see setGzip).
  bool gzip = true;
};

class HttpServer {
 public:
  HttpServer(HttpServerOptions options, SelfMetrics& self_metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Routes `path` exactly. `methods` lists the methods it accepts; others get 405 with Allow.
  /// `access` says which token a caller needs (see AccessPolicy).
  void route(const std::string& path, std::vector<std::string> methods, HttpHandler handler,
             Access access = Access::kByMethod);
  /// Routes every path that starts with `prefix` and has no exact route of its own.
  void routePrefix(const std::string& prefix, std::vector<std::string> methods, HttpHandler handler,
                   Access access = Access::kByMethod);
  /// The tokens accepted from now on (at start, and on a reload). Until set: reading is open,
  /// changing is refused.
  void setAccessPolicy(AccessPolicy policy);
  /// Whether responses are compressed for clients that accept gzip, from now on (a reload).
  void setGzip(bool gzip);

  /// Answers `req` as a connection would after reading it (routes, methods, access), without
  /// a socket: for callers in the same process, such as the fuzzers of the JSON APIs.
  void handle(const HttpRequest& req, HttpResponse& res) const;

  /// Binds the address (port 0 picks a free port) and starts serving.
  Status start();
  uint16_t port() const;
  /// Closes the listener and every connection; waits for handlers that are running.
  void stop();

  struct Impl;  // public so that the connection sessions in the .cpp can name it

 private:
  std::shared_ptr<Impl> impl_;
};

/// A path segment with its %XX escapes decoded ('+' stays '+', unlike form encoding).
std::string percentDecode(std::string_view segment);

/// Whether an Accept-Encoding header value allows gzip (a "gzip" token without q=0).
bool acceptsGzip(const std::string& accept_encoding);
/// Gzip-compresses `data`; empty on failure.
std::string gzipCompress(const std::string& data);
/// Decompresses a gzip body (one member or several, one after another), refusing one that
/// would decompress to more than `max_bytes`. Errors say what is wrong with it.
Result<std::string> gzipDecompress(std::string_view data, std::size_t max_bytes);

}  // namespace vigil
