#pragma once
// vigil's HTTP endpoints: /metrics, /-/healthy, /-/ready and /-/reload. The HTTP library stays
// inside http_server.cpp so that nothing else compiles its header.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "../core/self_metrics.h"
#include "vigil/config.h"

namespace vigil {

struct HttpHandlers {
  /// Appends the exposition text to `body`.
  std::function<void(std::string& body)> metrics;
  std::function<bool()> ready;
  /// Reloads the configuration; an error Status carries the reasons it was rejected.
  std::function<Status()> reload;
};

class HttpServer {
 public:
  /// Binds `address` (port 0 picks a free port) and serves on a background thread.
  static Result<std::unique_ptr<HttpServer>> start(const ListenAddress& address,
                                                   HttpHandlers handlers,
                                                   SelfMetrics& self_metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  uint16_t port() const;
  /// Stops accepting and waits for in-flight requests (bounded by the keep-alive timeout).
  void stop();

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil
