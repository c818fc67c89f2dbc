#pragma once
// The notifier kinds (webhook, Slack, PagerDuty, OpsGenie, file): each turns a notification into
// the messages its receiver's configurations ask for. Messages are complete requests so that the
// outbox can hold them across a restart and the transport can send them without knowing the
// kind.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vigil/alerting/config.h"
#include "vigil/alerting/dispatcher.h"
#include "vigil/alerting/message.h"

namespace vigil::exporters {

/// One request to one integration. `id` is the outbox entry's name and goes out as the
/// Idempotency-Key header, so a receiver can drop a duplicate sent again after a crash.
struct OutgoingMessage {
  std::string id;
  std::string notifier;  // "webhook", "slack", "pagerduty", "opsgenie", "file"
  std::string receiver;
  std::string group_key;
  std::string target;  // the URL, or the path for "file"
  std::string body;    // JSON
  /// Requests that follow the first (a POST to target), in order, each once the one before
  /// succeeded (OpsGenie's update_alerts). The message is delivered when all are; a failure
  /// sends it again from the first, as Alertmanager retries a notification.
  struct FollowUp {
    std::string method;
    std::string target;
    std::string body;  // JSON
  };
  std::vector<FollowUp> then;
  alerting::HttpClientConfig http;
  int64_t created_at = 0;  // ms since the epoch
};

struct RenderContext {
  std::string external_url;
  std::string hostname;  // this node, where the alert comes from
};

class Notifier {
 public:
  virtual ~Notifier() = default;
  /// The metric label and the configuration key without "_configs".
  virtual const char* kind() const = 0;
  /// Appends one message per configuration of this kind in the receiver (none when the
  /// configuration does not want this notification, e.g. resolved-only without send_resolved).
  virtual void render(const alerting::Notification& n, const alerting::Receiver& receiver,
                      const RenderContext& ctx, std::vector<OutgoingMessage>& out) const = 0;
};

/// Whether an integration with this send_resolved setting has anything to say about `n`
/// (a notification of resolved alerts only goes to integrations that want them).
bool wantsNotification(const alerting::Notification& n, bool send_resolved);
/// A message to `target` (its kind, ids and times are filled in by who sends it).
inline OutgoingMessage messageTo(std::string target, std::string body,
                                 alerting::HttpClientConfig http = {}) {
  OutgoingMessage m;
  m.target = std::move(target);
  m.body = std::move(body);
  m.http = std::move(http);
  return m;
}

/// One message per configuration that wants the notification; `make(config)` gives its
/// target, body and HTTP settings.
template <typename Config, typename Make>
void addMessages(const char* kind, const std::vector<Config>& configs,
                 const alerting::Notification& n, std::vector<OutgoingMessage>& out, Make make) {
  for (const Config& c : configs) {
    if (wantsNotification(n, c.send_resolved)) {
      OutgoingMessage m = make(c);
      m.notifier = kind;
      out.push_back(std::move(m));
    }
  }
}

/// The value of label `name`, or `fallback`.
std::string labelOr(const LabelSet& labels, std::string_view name, std::string fallback);
/// A configured template expanded over the message, or `fallback` when none is configured or
/// it fails (logged with the notifier and field: a broken template must not stop the page).
std::string expandOr(const std::string& text, const alerting::MessageContext& m,
                     std::string fallback, const char* notifier, const char* field);
/// Writes all of `data` to `fd` and fsyncs it; the error names `path`.
Status writeAndSync(int fd, std::string_view data, const std::string& path);

/// Every notifier kind vigil sends to, registered in one place (notifiers.cpp).
const std::vector<std::unique_ptr<Notifier>>& notifiers();

std::unique_ptr<Notifier> makeWebhookNotifier();
std::unique_ptr<Notifier> makeSlackNotifier();
std::unique_ptr<Notifier> makePagerDutyNotifier();
std::unique_ptr<Notifier> makeOpsGenieNotifier();
std::unique_ptr<Notifier> makeFileNotifier();

enum class DeliveryResult {
  kDelivered,  // 2xx
  kRetry,      // 5xx, 429, or no answer: worth trying again later
  kRejected,   // any other status: trying again will not help
};

struct Delivery {
  DeliveryResult result = DeliveryResult::kRetry;
  int status = 0;                            // HTTP status, 0 without an answer
  std::string detail;                        // the error or the start of the response body
  std::chrono::milliseconds retry_after{0};  // from a Retry-After header, 0 without
};

/// Sends one message: an HTTP POST (https verified against the system's CAs or the configured
/// ca_file) within `timeout`, or for "file" an append and fsync.
Delivery sendMessage(const OutgoingMessage& m, std::chrono::milliseconds timeout);

}  // namespace vigil::exporters
