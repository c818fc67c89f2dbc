#pragma once
// The webhook notifier: Alertmanager's webhook payload (version "4") POSTed to each of a
// receiver's webhook_configs, so that every existing Alertmanager webhook receiver works with
// vigil.

#include <chrono>
#include <string>

#include "vigil/alerting/dispatcher.h"

namespace vigil::exporters {

/// The JSON Alertmanager 0.25 sends to a webhook for this notification. With send_resolved
/// false resolved alerts are left out; past max_alerts (if > 0) the rest are counted in
/// truncatedAlerts.
std::string webhookPayload(const alerting::Notification& n, const alerting::WebhookConfig& config,
                           const std::string& external_url);

enum class DeliveryResult {
  kDelivered,  // 2xx
  kRetry,      // 5xx, 429, or no answer: worth trying again later
  kFailed,     // any other status: trying again will not help
};

struct Delivery {
  DeliveryResult result = DeliveryResult::kRetry;
  int status = 0;      // HTTP status, 0 without an answer
  std::string detail;  // the error or the start of the response body
};

/// POSTs `json_body` to `url` (http or https, certificates verified) within `timeout`.
Delivery postJson(const std::string& url, const std::string& json_body,
                  std::chrono::milliseconds timeout);

/// Sends notifications to their receivers' webhooks. A notification counts as delivered when
/// every webhook took it or failed for good; a webhook that should be retried makes the group
/// try again at its next flush, as Alertmanager does.
class WebhookSink : public alerting::NotificationSink {
 public:
  explicit WebhookSink(std::string external_url = "",
                       std::chrono::milliseconds timeout = std::chrono::seconds(10))
      : external_url_(std::move(external_url)), timeout_(timeout) {}
  bool deliver(const alerting::Notification& n) override;

 private:
  std::string external_url_;
  std::chrono::milliseconds timeout_;
};

}  // namespace vigil::exporters
