// The PagerDuty notifier: Events API v2. One incident per group (the dedup_key is the group
// key's SHA-256, as Alertmanager computes it), triggered while anything fires and resolved
// when nothing does.
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "notifier.h"
#include "vigil/exporters/notify.h"

namespace vigil::exporters {

namespace {

using json = nlohmann::json;

constexpr std::size_t kMaxSummary = 1024;  // PagerDuty refuses longer summaries

// PagerDuty knows four severities; map the usual label values onto them.
std::string severityFor(const std::string& label) {
  std::string s;
  for (char c : label) {
    s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (s == "critical" || s == "page" || s == "p1" || s == "fatal" || s == "emergency") {
    return "critical";
  }
  if (s == "warning" || s == "warn" || s == "p3" || s == "medium") {
    return "warning";
  }
  if (s == "info" || s == "informational" || s == "low" || s == "p4" || s == "p5" || s == "none") {
    return "info";
  }
  return "error";  // error, high, p2, and anything unknown: Alertmanager's default
}

std::string truncateSummary(std::string s) {
  if (s.size() <= kMaxSummary) {
    return s;
  }
  std::size_t cut = kMaxSummary - 3;  // room for "…" (3 bytes)
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) {
    --cut;
  }
  return s.substr(0, cut) + "…";
}

class PagerDutyNotifier : public Notifier {
 public:
  const char* kind() const override { return "pagerduty"; }
  void render(const alerting::Notification& n, const alerting::Receiver& receiver,
              const RenderContext& ctx, std::vector<OutgoingMessage>& out) const override {
    addMessages(kind(), receiver.pagerduty, n, out, [&](const alerting::PagerDutyConfig& c) {
      return messageTo(c.url, pagerDutyEvent(n, c, ctx.external_url, ctx.hostname), c.http);
    });
  }
};

}  // namespace

std::string pagerDutyDedupKey(const std::string& group_key) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(group_key.data(), group_key.size(), digest, &len, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

std::string pagerDutyEvent(const alerting::Notification& n, const alerting::PagerDutyConfig& config,
                           const std::string& external_url, const std::string& source) {
  const alerting::MessageContext m(n, external_url, config.send_resolved);
  const char* action = n.acknowledgement ? "acknowledge" : m.firing() ? "trigger" : "resolve";
  json event = {{"routing_key", config.routing_key},
                {"event_action", action},
                {"dedup_key", pagerDutyDedupKey(n.group_key)},
                {"client", config.client}};
  const std::string client_url =
      expandOr(config.client_url, m, external_url, "pagerduty", "client_url");
  if (!client_url.empty()) {
    event["client_url"] = client_url;
  }
  if (!m.firing() || n.acknowledgement) {
    return event.dump(-1, ' ', false, json::error_handler_t::replace);
  }
  std::string summary = alerting::defaultTitle(m);
  if (auto s = labelOr(m.common_annotations, "summary", ""); !s.empty()) {
    summary += ": " + s;
  }
  summary = expandOr(config.description, m, summary, "pagerduty", "description");
  const std::string severity =
      expandOr(config.severity, m, severityFor(labelOr(m.common_labels, "severity", "")),
               "pagerduty", "severity");

  // Where: the alerts' instance, else this node.
  json payload = {{"summary", truncateSummary(summary)},
                  {"source", labelOr(m.common_labels, "instance", source)},
                  {"severity", severity}};
  if (!config.component.empty()) {
    payload["component"] = config.component;
  }
  if (!config.group.empty()) {
    payload["group"] = config.group;
  }
  if (!config.class_.empty()) {
    payload["class"] = config.class_;
  }
  std::string firing_text;
  std::string resolved_text;
  for (const auto& a : m.alerts) {
    std::string& t = a.ends_at == 0 ? firing_text : resolved_text;
    t += alerting::groupLabelsString(a.labels) + "\n";
  }
  payload["custom_details"] = {{"firing", firing_text},
                               {"resolved", resolved_text},
                               {"num_firing", std::to_string(m.numFiring())},
                               {"num_resolved", std::to_string(m.alerts.size() - m.numFiring())},
                               {"details", alerting::defaultText(m)}};
  event["payload"] = payload;
  json links = json::array();
  if (auto runbook = labelOr(m.common_annotations, "runbook_url", ""); !runbook.empty()) {
    links.push_back({{"href", runbook}, {"text", "Runbook"}});
  }
  if (!m.alerts.empty() && !m.alerts.front().generator_url.empty()) {
    links.push_back({{"href", m.alerts.front().generator_url}, {"text", "Source"}});
  }
  if (!links.empty()) {
    event["links"] = links;
  }
  return event.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::unique_ptr<Notifier> makePagerDutyNotifier() { return std::make_unique<PagerDutyNotifier>(); }

}  // namespace vigil::exporters
