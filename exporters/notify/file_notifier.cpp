// The file notifier: each notification appended to a file as one line of webhook JSON, for
// setups without any receiver and for audits.
#include "notifier.h"
#include "vigil/exporters/notify.h"

namespace vigil::exporters {

namespace {

class FileNotifier : public Notifier {
 public:
  const char* kind() const override { return "file"; }
  void render(const alerting::Notification& n, const alerting::Receiver& receiver,
              const RenderContext& ctx, std::vector<OutgoingMessage>& out) const override {
    if (n.acknowledgement) {
      return;  // Alertmanager's payload has no way to say it; the log has it
    }
    addMessages(kind(), receiver.files, n, out, [&](const alerting::FileConfig& c) {
      alerting::WebhookConfig as_webhook;
      as_webhook.send_resolved = c.send_resolved;
      return messageTo(c.path, webhookPayload(n, as_webhook, ctx.external_url));
    });
  }
};

}  // namespace

std::unique_ptr<Notifier> makeFileNotifier() { return std::make_unique<FileNotifier>(); }

}  // namespace vigil::exporters
