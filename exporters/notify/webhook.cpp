// The webhook notifier: Alertmanager's webhook payload (version "4"), so that every existing
// Alertmanager webhook receiver works with vigil.
#include <nlohmann/json.hpp>

#include "notifier.h"
#include "vigil/exporters/notify.h"
#include "vigil/labels_json.h"

namespace vigil::exporters {

namespace {

using json = nlohmann::json;

class WebhookNotifier : public Notifier {
 public:
  const char* kind() const override { return "webhook"; }
  void render(const alerting::Notification& n, const alerting::Receiver& receiver,
              const RenderContext& ctx, std::vector<OutgoingMessage>& out) const override {
    if (n.acknowledgement) {
      return;  // Alertmanager's payload has no way to say it; the log has it
    }
    addMessages(kind(), receiver.webhooks, n, out, [&](const alerting::WebhookConfig& hook) {
      return messageTo(hook.url, webhookPayload(n, hook, ctx.external_url), hook.http);
    });
  }
};

}  // namespace

std::string webhookPayload(const alerting::Notification& n, const alerting::WebhookConfig& config,
                           const std::string& external_url) {
  const alerting::MessageContext m(n, external_url, config.send_resolved);
  json list = json::array();
  std::size_t truncated = 0;
  for (const auto& a : m.alerts) {
    if (config.max_alerts > 0 && list.size() >= static_cast<std::size_t>(config.max_alerts)) {
      ++truncated;
      continue;
    }
    list.push_back({{"status", a.ends_at == 0 ? "firing" : "resolved"},
                    {"labels", labelsJson(a.labels)},
                    {"annotations", labelsJson(a.annotations)},
                    {"startsAt", alerting::goTime(a.starts_at)},
                    {"endsAt", alerting::goTime(a.ends_at)},
                    {"generatorURL", a.generator_url},
                    {"fingerprint", alerting::fingerprintHex(a.fingerprint())}});
  }
  const json body = {{"receiver", alerting::quoteMeta(n.receiver)},
                     {"status", m.firing() ? "firing" : "resolved"},
                     {"alerts", list},
                     {"groupLabels", labelsJson(n.group_labels)},
                     {"commonLabels", labelsJson(m.common_labels)},
                     {"commonAnnotations", labelsJson(m.common_annotations)},
                     {"externalURL", external_url},
                     {"version", "4"},
                     {"groupKey", n.group_key},
                     {"truncatedAlerts", truncated}};
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::unique_ptr<Notifier> makeWebhookNotifier() { return std::make_unique<WebhookNotifier>(); }

}  // namespace vigil::exporters
