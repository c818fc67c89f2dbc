#pragma once
// The notifiers and their delivery: each notification is rendered for every integration of
// its receiver (webhook, Slack, PagerDuty, file), written to a persistent outbox (fsync)
// before anything is sent, and removed only after the receiver took it (2xx). Failed sends are
// retried with exponential back-off and jitter (429's Retry-After honoured); other 4xx are
// dropped and logged with the response body. At start the outbox is replayed, so a restart in
// the middle of delivery loses nothing (at-least-once; the Idempotency-Key header and
// PagerDuty's dedup_key let a receiver drop the duplicates this can cause).

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "vigil/alerting/dispatcher.h"
#include "vigil/alerting/message.h"
#include "vigil/metric.h"
#include "vigil/status.h"

namespace vigil::exporters {

/// Alertmanager 0.25's webhook JSON (version "4") for one webhook configuration. With
/// send_resolved false resolved alerts are left out; past max_alerts (if > 0) the rest are
/// counted in truncatedAlerts.
std::string webhookPayload(const alerting::Notification& n, const alerting::WebhookConfig& config,
                           const std::string& external_url);
/// A Slack incoming-webhook message: `text` (the title, for notifications), the title as a
/// header, and an attachment coloured by status with the alert name, severity, the alerts'
/// summaries and links.
std::string slackPayload(const alerting::Notification& n, const alerting::SlackConfig& config,
                         const std::string& external_url);
/// A PagerDuty Events API v2 event: trigger while anything fires, resolve after, with a
/// dedup_key stable for the group.
std::string pagerDutyEvent(const alerting::Notification& n, const alerting::PagerDutyConfig& config,
                           const std::string& external_url, const std::string& source);
/// The dedup_key of a group: the SHA-256 of its group key, hex (as Alertmanager computes it).
std::string pagerDutyDedupKey(const std::string& group_key);
/// An OpsGenie Alert API request: create (POST API_URL/v2/alerts) while anything fires, close
/// by alias (the group key's SHA-256) once resolved.
struct OpsGenieRequest {
  std::string url;
  std::string body;  // JSON
  /// With update_alerts, after a create: PUT the message, then the description, by alias.
  struct Update {
    std::string url;
    std::string body;  // JSON
  };
  std::vector<Update> updates;
};
OpsGenieRequest opsGenieRequest(const alerting::Notification& n,
                                const alerting::OpsGenieConfig& config,
                                const std::string& external_url);

struct NotificationServiceOptions {
  std::string outbox_dir;  // required: where pending messages are kept
  std::string external_url;
  std::size_t max_pending = 10000;  // messages; past it the oldest is dropped
  std::chrono::milliseconds max_age = std::chrono::hours(24);    // older ones are dropped
  std::chrono::milliseconds timeout = std::chrono::seconds(10);  // per attempt
  std::chrono::milliseconds backoff_initial = std::chrono::seconds(1);
  std::chrono::milliseconds backoff_max = std::chrono::minutes(5);
  int workers = 2;  // receivers sent to in parallel
};

class NotificationService : public alerting::NotificationSink {
 public:
  /// Opens (creating) the outbox, loads what it holds and starts delivering.
  static Result<std::shared_ptr<NotificationService>> open(NotificationServiceOptions options);
  ~NotificationService() override;

  /// Writes the notification's messages to the outbox; true once they are on disk.
  bool deliver(const alerting::Notification& n) override;
  void receiversChanged(const std::vector<alerting::Receiver>& receivers) override;
  /// vigil_notifications_total and vigil_notification_latency_seconds for each notifier that
  /// a configured receiver uses or that was sent to (at 0 from then on, so that rate() sees
  /// the first failure), and vigil_outbox_*.
  void appendStats(MetricBatch& out) const override;
  /// Stops the workers; what is pending stays in the outbox for the next start.
  void shutdown();

  std::size_t pending() const;
  /// Waits until nothing is pending (tests, graceful stop); false on timeout.
  bool waitIdle(std::chrono::milliseconds timeout) const;

  struct Impl;

 private:
  explicit NotificationService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

/// The body Alertmanager's `POST /api/v2/alerts` takes for these alerts.
std::string alertmanagerAlertsPayload(const std::vector<alerting::Alert>& alerts);

struct AlertmanagerForwarderOptions {
  std::size_t queue_capacity = 10000;  // alerts; past it the oldest are dropped
  std::size_t max_batch = 64;          // alerts per request
  std::chrono::milliseconds resend_delay = std::chrono::minutes(1);
};

/// Sends the rule alerts to Alertmanagers as Prometheus's notifier does: an alert goes out when
/// it is new, when it resolves, and again every resend_delay (its end a lease in the future,
/// so an Alertmanager resolves it by itself if this node goes away); batches go to every
/// Alertmanager, and a failed batch is not retried (the next resend covers it) but counted.
class AlertmanagerForwarder : public alerting::AlertForwarder {
 public:
  explicit AlertmanagerForwarder(AlertmanagerForwarderOptions options = {});
  ~AlertmanagerForwarder() override;

  void setTargets(std::vector<alerting::AlertmanagerTarget> targets) override;
  void forward(const std::vector<alerting::Alert>& alerts, int64_t now) override;
  /// vigil_alertmanager_notifications_* (Prometheus's prometheus_notifications_* names).
  void appendStats(MetricBatch& out) const override;
  /// Waits until the queue is empty and no batch is in flight (tests); false on timeout.
  bool waitIdle(std::chrono::milliseconds timeout) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace vigil::exporters
