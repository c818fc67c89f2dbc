// The Slack notifier: an incoming-webhook message that reads well on a phone — the title as
// the notification text and header, then, in an attachment whose bar is red while anything
// fires and green once resolved (as Alertmanager's), blocks with the alert name, severity, what
// is wrong and a link.
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <set>

#include "notifier.h"
#include "vigil/exporters/notify.h"

namespace vigil::exporters {

namespace {

using json = nlohmann::json;

// Slack's limits: header text 150 characters, section text 3000. Cut at a UTF-8 character
// boundary and say that something was cut.
std::string truncateText(const std::string& s, std::size_t max_chars) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == max_chars - 1) {
        // Is there more than this one character left?
        std::size_t next = i + 1;
        while (next < s.size() && (static_cast<unsigned char>(s[next]) & 0xC0) == 0x80) {
          ++next;
        }
        if (next < s.size()) {
          return s.substr(0, i) + "…";
        }
        return s;
      }
      ++chars;
    }
  }
  return s;
}

// A label's value across the alerts: the common one, or the distinct values.
std::string valuesOf(const alerting::MessageContext& m, std::string_view name) {
  std::set<std::string> values;
  for (const auto& a : m.alerts) {
    values.insert(labelOr(a.labels, name, ""));
  }
  values.erase("");
  std::string out;
  for (const auto& v : values) {
    out += (out.empty() ? "" : ", ") + v;
  }
  return out.empty() ? "-" : out;
}

class SlackNotifier : public Notifier {
 public:
  const char* kind() const override { return "slack"; }
  void render(const alerting::Notification& n, const alerting::Receiver& receiver,
              const RenderContext& ctx, std::vector<OutgoingMessage>& out) const override {
    addMessages(kind(), receiver.slack, n, out, [&](const alerting::SlackConfig& c) {
      return messageTo(c.api_url, slackPayload(n, c, ctx.external_url), c.http);
    });
  }
};

}  // namespace

std::string slackPayload(const alerting::Notification& n, const alerting::SlackConfig& config,
                         const std::string& external_url) {
  const alerting::MessageContext m(n, external_url, config.send_resolved);
  std::string title = expandOr(config.title, m, alerting::defaultTitle(m), "slack", "title");
  if (n.acknowledgement) {
    title = "[ACK] " + title + " — acknowledged by " + n.acknowledgement->by;
  }
  std::string text = expandOr(config.text, m, alerting::defaultText(m), "slack", "text");
  if (const auto& ack = n.acknowledgement) {
    std::string line = "Acknowledged by " + ack->by;
    if (!ack->comment.empty()) {
      line += ": " + ack->comment;
    }
    line += ack->expires_at == 0 ? " (until resolved)"
                                 : " (until " + alerting::goTime(ack->expires_at) + ")";
    text = line + "\n" + text;
  }
  std::string link = expandOr(config.title_link, m, "", "slack", "title_link");
  const std::string runbook = labelOr(m.common_annotations, "runbook_url", "");
  if (link.empty() && !m.alerts.empty()) {
    link = m.alerts.front().generator_url;
  }

  // The title leads the message; what follows goes in the attachment with the coloured bar.
  // With blocks of its own the message's text is only the notification's.
  json head = json::array();
  if (const std::string pretext = expandOr(config.pretext, m, "", "slack", "pretext");
      !pretext.empty()) {
    head.push_back({{"type", "section"},
                    {"text", {{"type", "mrkdwn"}, {"text", truncateText(pretext, 3000)}}}});
  }
  head.push_back(
      {{"type", "header"}, {"text", {{"type", "plain_text"}, {"text", truncateText(title, 150)}}}});
  json blocks = json::array();
  std::vector<std::string> field_texts = {
      "*Alert:*\n" + valuesOf(m, "alertname"), "*Severity:*\n" + valuesOf(m, "severity"),
      std::string("*Status:*\n") + (m.firing() ? "firing" : "resolved"),
      "*Receiver:*\n" + n.receiver};
  for (const auto& f : config.fields) {
    const std::string name = expandOr(f.title, m, f.title, "slack", "fields.title");
    const std::string value = expandOr(f.value, m, f.value, "slack", "fields.value");
    // A field whose value expands to nothing keeps its title, as in Alertmanager's messages.
    field_texts.push_back("*" + name + ":*" + (value.empty() ? "" : "\n" + value));
  }
  // A section holds at most ten fields, each at most 2000 characters.
  for (std::size_t i = 0; i < field_texts.size(); i += 10) {
    json fields = json::array();
    for (std::size_t j = i; j < std::min(i + 10, field_texts.size()); ++j) {
      fields.push_back({{"type", "mrkdwn"}, {"text", truncateText(field_texts[j], 2000)}});
    }
    blocks.push_back({{"type", "section"}, {"fields", fields}});
  }
  if (!text.empty()) {
    blocks.push_back(
        {{"type", "section"}, {"text", {{"type", "mrkdwn"}, {"text", truncateText(text, 3000)}}}});
  }
  std::string links;
  if (!link.empty()) {
    links += "<" + link + "|Source>";
  }
  if (!runbook.empty()) {
    links += std::string(links.empty() ? "" : " · ") + "<" + runbook + "|Runbook>";
  }
  if (!links.empty()) {
    blocks.push_back(
        {{"type", "context"}, {"elements", json::array({{{"type", "mrkdwn"}, {"text", links}}})}});
  }
  if (const std::string footer = expandOr(config.footer, m, "", "slack", "footer");
      !footer.empty()) {
    blocks.push_back(
        {{"type", "context"},
         {"elements", json::array({{{"type", "mrkdwn"}, {"text", truncateText(footer, 3000)}}})}});
  }

  const std::string fallback = expandOr(config.fallback, m, title, "slack", "fallback");
  const std::string color =
      expandOr(config.color, m, m.firing() ? "danger" : "good", "slack", "color");
  json body = {{"text", truncateText(fallback.empty() ? title : fallback, 3000)},
               {"blocks", head},
               {"attachments", json::array({{{"color", color}, {"blocks", blocks}}})}};
  if (!config.channel.empty()) {
    body["channel"] = config.channel;
  }
  if (!config.username.empty()) {
    body["username"] = config.username;
  }
  if (!config.icon_emoji.empty()) {
    body["icon_emoji"] = config.icon_emoji;
  }
  if (!config.icon_url.empty()) {
    body["icon_url"] = config.icon_url;
  }
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::unique_ptr<Notifier> makeSlackNotifier() { return std::make_unique<SlackNotifier>(); }

}  // namespace vigil::exporters
