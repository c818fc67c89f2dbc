#pragma once
// The running daemon: the active configuration, its collectors and the HTTP server. Reload
// swaps in a new configuration only when it is valid in full; otherwise the old one stays.

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>

#include "vigil/config.h"
#include "vigil/metric.h"

namespace vigil {

class HttpServer;
class RemoteWriter;
namespace alerting {
class AlertForwarder;
class NotificationSink;
}  // namespace alerting

struct AgentOptions {
  std::optional<std::string> config_path;       // unset: the embedded default configuration
  std::optional<ListenAddress> listen_address;  // --listen-address, overrides the file
  std::optional<std::string> data_dir;          // --data-dir, overrides the file
  std::string version;
  std::string revision;
  /// Makes the notifiers (which keep their outbox in the data directory and link to this
  /// agent's external URL); unset: notifications are only logged.
  std::function<Result<std::shared_ptr<alerting::NotificationSink>>(
      const std::string& data_dir, const std::string& external_url)>
      notifier_factory;
  /// Sends the rule alerts to the configured `alertmanagers` too; null: not forwarded.
  std::shared_ptr<alerting::AlertForwarder> alert_forwarder;
  /// Sends the store's samples to the configured `remote_write` endpoints; null: not sent.
  std::shared_ptr<RemoteWriter> remote_writer;
};

/// Renders batches as exposition text; supplied by the composition root so that agent/ does not
/// depend on exporters/.
using ExpositionRenderer = std::function<void(std::span<const MetricBatch* const>, std::string&)>;

class Agent {
 public:
  /// Loads and validates the configuration; returns every error found.
  static Result<std::unique_ptr<Agent>> create(AgentOptions options, ExpositionRenderer render);
  ~Agent();

  /// Prepares the data directory, starts the collectors and binds the HTTP server.
  Status start();
  /// Re-reads the configuration. On any error the running configuration stays in force.
  Status reload();
  /// Graceful stop, bounded by `grace`.
  void stop(std::chrono::milliseconds grace);

  uint16_t httpPort() const;
  const Config& config() const;

 private:
  struct Impl;
  explicit Agent(std::unique_ptr<Impl> impl);
  void registerRoutes(HttpServer& http);
  std::unique_ptr<Impl> impl_;
};

/// Parses the configuration the options point at and applies the command-line overrides.
/// Errors are formatted as FILE:LINE:COL: message.
Result<Config> loadAgentConfig(const AgentOptions& options);

}  // namespace vigil
