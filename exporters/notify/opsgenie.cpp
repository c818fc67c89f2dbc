// The OpsGenie notifier: the Alert API as Alertmanager 0.25 calls it. One alert per group, its
// alias the group key's SHA-256 (so OpsGenie deduplicates repeats of a group), created while
// anything fires and closed by alias once everything is resolved; with update_alerts, each create
// is followed by updates of the alert's message and description.
#include <nlohmann/json.hpp>

#include "notifier.h"
#include "vigil/exporters/notify.h"

namespace vigil::exporters {

namespace {

using json = nlohmann::json;

// OpsGenie refuses longer messages; Alertmanager keeps the first 129 characters and adds "…".
constexpr std::size_t kMaxMessageChars = 130;

std::string truncateMessage(const std::string& s) {
  std::size_t chars = 0;
  std::size_t cut = 0;  // where the first kMaxMessageChars - 1 characters end
  for (std::size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) {
      if (chars == kMaxMessageChars - 1) {
        cut = i;
      }
      if (++chars > kMaxMessageChars) {
        return s.substr(0, cut) + "…";
      }
    }
  }
  return s;
}

std::string trimmed(std::string_view s) {
  const auto begin = s.find_first_not_of(" \t\n\r");
  if (begin == std::string_view::npos) {
    return "";
  }
  return std::string(s.substr(begin, s.find_last_not_of(" \t\n\r") - begin + 1));
}

// A comma-separated list (tags, actions, team names) without its empty entries. Only the whole
// is trimmed, not each entry: Alertmanager sends " page " for "db, page ,x".
std::vector<std::string> splitList(const std::string& text) {
  std::vector<std::string> out;
  const std::string all = trimmed(text);
  std::size_t pos = 0;
  while (pos < all.size()) {
    const auto comma = std::min(all.find(',', pos), all.size());
    if (comma > pos) {
      out.push_back(all.substr(pos, comma - pos));
    }
    pos = comma + 1;
  }
  return out;
}

class OpsGenieNotifier : public Notifier {
 public:
  const char* kind() const override { return "opsgenie"; }
  void render(const alerting::Notification& n, const alerting::Receiver& receiver,
              const RenderContext& ctx, std::vector<OutgoingMessage>& out) const override {
    addMessages(kind(), receiver.opsgenie, n, out, [&](const alerting::OpsGenieConfig& c) {
      auto request = opsGenieRequest(n, c, ctx.external_url);
      OutgoingMessage m = messageTo(std::move(request.url), std::move(request.body), c.http);
      for (auto& update : request.updates) {
        m.then.push_back({"PUT", std::move(update.url), std::move(update.body)});
      }
      return m;
    });
  }
};

}  // namespace

OpsGenieRequest opsGenieRequest(const alerting::Notification& n,
                                const alerting::OpsGenieConfig& config,
                                const std::string& external_url) {
  const alerting::MessageContext m(n, external_url, config.send_resolved);
  auto field = [&](const std::string& text, std::string fallback, const char* name) {
    return expandOr(text, m, std::move(fallback), "opsgenie", name);
  };
  const std::string alias = pagerDutyDedupKey(n.group_key);
  const std::string source = field(config.source, external_url, "source");
  if (!m.firing()) {
    return {config.api_url + "v2/alerts/" + alias + "/close?identifierType=alias",
            json({{"source", source}}).dump(-1, ' ', false, json::error_handler_t::replace),
            {}};
  }
  // The common labels, then the configured details over them.
  json details = json::object();
  for (const auto& l : m.common_labels) {
    details[l.name] = l.value;
  }
  for (const auto& [name, text] : config.details) {
    details[name] = field(text, text, "details");
  }
  const std::string message =
      truncateMessage(field(config.message, alerting::defaultTitle(m), "message"));
  const std::string description =
      field(config.description, alerting::defaultText(m), "description");
  json body = {{"alias", alias}, {"message", message}, {"details", details}, {"source", source}};
  if (!description.empty()) {
    body["description"] = description;
  }
  json responders = json::array();
  for (const auto& r : config.responders) {
    const std::string type = field(r.type, r.type, "responders.type");
    const std::string name = field(r.name, r.name, "responders.name");
    if (type == "teams") {
      // One responder per team named, as Alertmanager does.
      for (const auto& team : splitList(name)) {
        responders.push_back({{"name", team}, {"type", "team"}});
      }
      continue;
    }
    json responder = {{"type", type}};
    if (auto id = field(r.id, r.id, "responders.id"); !id.empty()) {
      responder["id"] = id;
    }
    if (!name.empty()) {
      responder["name"] = name;
    }
    if (auto user = field(r.username, r.username, "responders.username"); !user.empty()) {
      responder["username"] = user;
    }
    responders.push_back(std::move(responder));
  }
  if (!responders.empty()) {
    body["responders"] = responders;
  }
  if (auto tags = splitList(field(config.tags, "", "tags")); !tags.empty()) {
    body["tags"] = tags;
  }
  if (auto actions = splitList(field(config.actions, "", "actions")); !actions.empty()) {
    body["actions"] = actions;
  }
  for (const auto& [key, text] :
       {std::pair{"note", &config.note}, std::pair{"priority", &config.priority},
        std::pair{"entity", &config.entity}}) {
    if (auto value = field(*text, "", key); !value.empty()) {
      body[key] = value;
    }
  }
  OpsGenieRequest request{
      config.api_url + "v2/alerts", body.dump(-1, ' ', false, json::error_handler_t::replace), {}};
  if (config.update_alerts) {
    // A create for an alias OpsGenie has open only counts it again: the new text needs these.
    const std::string by_alias = config.api_url + "v2/alerts/" + alias + "/";
    json new_message = json::object();
    if (!message.empty()) {
      new_message["message"] = message;
    }
    json new_description = json::object();
    if (!description.empty()) {
      new_description["description"] = description;
    }
    for (const auto& [what, update] :
         {std::pair{"message", &new_message}, std::pair{"description", &new_description}}) {
      request.updates.push_back({by_alias + what + "?identifierType=alias",
                                 update->dump(-1, ' ', false, json::error_handler_t::replace)});
    }
  }
  return request;
}

std::unique_ptr<Notifier> makeOpsGenieNotifier() { return std::make_unique<OpsGenieNotifier>(); }

}  // namespace vigil::exporters
