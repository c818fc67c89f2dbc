// Alertmanager 0.25's configuration format and validation rules, with vigil's error positions.
#include <glob.h>

#include <cctype>
#include <charconv>
#include <filesystem>
#include <map>
#include <set>

#include "alerting_yaml.h"
#include "vigil/alerting/message.h"
#include "vigil/rules/template.h"

namespace vigil::alerting {

namespace {

constexpr std::string_view kGlobalKeys[] = {"resolve_timeout",    "http_config",
                                            "smtp_from",          "smtp_hello",
                                            "smtp_smarthost",     "smtp_auth_username",
                                            "smtp_auth_password", "smtp_auth_secret",
                                            "smtp_auth_identity", "smtp_require_tls",
                                            "slack_api_url",      "slack_api_url_file",
                                            "pagerduty_url",      "opsgenie_api_url",
                                            "opsgenie_api_key",   "opsgenie_api_key_file",
                                            "wechat_api_url",     "wechat_api_secret",
                                            "wechat_api_corp_id", "victorops_api_url",
                                            "victorops_api_key",  "victorops_api_key_file",
                                            "telegram_api_url",   "webex_api_url"};

// The notifier kinds Alertmanager 0.25 knows; which of them vigil sends to is up to the
// notifiers (a receiver naming one vigil does not implement is reported when notifying).
constexpr std::string_view kIntegrationKeys[] = {
    "webhook_configs", "email_configs",    "pagerduty_configs", "slack_configs", "opsgenie_configs",
    "wechat_configs",  "pushover_configs", "victorops_configs", "sns_configs",   "telegram_configs",
    "webex_configs",   "discord_configs",  "file_configs"};  // vigil's own

constexpr const char* kWeekdays[] = {"sunday",   "monday", "tuesday", "wednesday",
                                     "thursday", "friday", "saturday"};
constexpr const char* kMonths[] = {"january",   "february", "march",    "april",
                                   "may",       "june",     "july",     "august",
                                   "september", "october",  "november", "december"};

class AlertingReader {
 public:
  explicit AlertingReader(YamlReader& r) : r_(r) {}

  void read(const YAML::Node& root, const std::string& field, AlertingConfig& out) {
    if (!r_.checkMap(
            root, field,
            {"global", "route", "receivers", "inhibit_rules", "templates", "time_intervals",
             "mute_time_intervals", "escalation_policies", "flap_detection"})) {
      return;
    }
    if (auto n = root["global"]; n && !n.IsNull()) {
      readGlobal(n, YamlReader::join(field, "global"), out);
    }
    if (auto n = root["receivers"]; n && !n.IsNull()) {
      readReceivers(n, YamlReader::join(field, "receivers"), out);
    }
    for (const char* key : {"mute_time_intervals", "time_intervals"}) {
      if (auto n = root[key]; n && !n.IsNull()) {
        readTimeIntervals(n, YamlReader::join(field, key), out);
      }
    }
    if (auto n = root["flap_detection"]; n && !n.IsNull()) {
      readFlapDetection(n, YamlReader::join(field, "flap_detection"), out.flap);
    }
    if (auto n = root["escalation_policies"]; n && !n.IsNull()) {
      readEscalationPolicies(n, YamlReader::join(field, "escalation_policies"), out);
    }
    for (const auto& [i, node] : receiver_policies_) {
      const Receiver& r = out.receivers[i];
      if (!r.escalation_policy.empty() && out.escalationPolicy(r.escalation_policy) == nullptr) {
        r_.error(node,
                 YamlReader::join(YamlReader::index(YamlReader::join(field, "receivers"), i),
                                  "escalation_policy"),
                 "undefined escalation policy \"" + r.escalation_policy + "\" used in receiver");
      }
    }
    if (auto n = root["templates"]; n && !n.IsNull()) {
      if (auto list = r_.stringList(n, YamlReader::join(field, "templates"))) {
        out.templates = *list;
        readTemplateFiles(n, YamlReader::join(field, "templates"), out);
      }
    }
    if (auto n = root["inhibit_rules"]; n && !n.IsNull()) {
      readInhibitRules(n, YamlReader::join(field, "inhibit_rules"), out);
    }
    auto route = root["route"];
    const std::string route_field = YamlReader::join(field, "route");
    if (!route || route.IsNull()) {
      r_.error(root, route_field, "no route provided in config");
      return;
    }
    RouteOptions defaults;
    defaults.receiver.clear();
    readRoute(route, route_field, defaults, "", out, out.route, true);
  }

 private:
  void readTemplateFiles(const YAML::Node& node, const std::string& field, AlertingConfig& out) {
    const std::string base =
        r_.file().empty() ? std::string() : std::filesystem::path(r_.file()).parent_path().string();
    std::vector<TemplateFileError> errors;
    out.template_library = loadTemplateFiles(out.templates, base, errors);
    for (const auto& e : errors) {
      r_.error(node, YamlReader::index(field, e.glob), e.message);
    }
  }

  void readGlobal(const YAML::Node& n, const std::string& field, AlertingConfig& out) {
    if (!n.IsMap()) {
      r_.error(n, field, "expected a mapping, got " + YamlReader::kindOf(n));
      return;
    }
    for (const auto& kv : n) {
      const std::string key = kv.first.Scalar();
      if (std::find(std::begin(kGlobalKeys), std::end(kGlobalKeys), key) == std::end(kGlobalKeys)) {
        r_.error(kv.first, YamlReader::join(field, key), "unknown key");
      }
    }
    if (auto d = n["resolve_timeout"]) {
      if (auto v = r_.duration(d, YamlReader::join(field, "resolve_timeout"))) {
        out.resolve_timeout = *v;
      }
    }
    if (n["slack_api_url"] || n["slack_api_url_file"]) {
      readUrl(n, field, "slack_api_url", "slack_api_url_file", out.slack_api_url, "");
    }
    if (n["pagerduty_url"]) {
      readUrl(n, field, "pagerduty_url", "pagerduty_url_file", out.pagerduty_url, "");
    }
    if (n["opsgenie_api_url"]) {
      readUrl(n, field, "opsgenie_api_url", "opsgenie_api_url_file", out.opsgenie_api_url, "");
    }
    if (readInlineOrFile(n, field, "opsgenie_api_key", "opsgenie_api_key_file",
                         out.opsgenie_api_key)) {
      opsgenie_api_key_file_ = secretFile(n, "opsgenie_api_key", "opsgenie_api_key_file");
    }
    readHttpConfig(n["http_config"], YamlReader::join(field, "http_config"), out.http);
    slack_api_url_ = out.slack_api_url;
    pagerduty_url_ = out.pagerduty_url;
    opsgenie_api_url_ = out.opsgenie_api_url;
    opsgenie_api_key_ = out.opsgenie_api_key;
    http_defaults_ = out.http;
  }

  void readReceivers(const YAML::Node& n, const std::string& field, AlertingConfig& out) {
    if (!r_.checkList(n, field)) {
      return;
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < n.size(); ++i) {
      const YAML::Node& rn = n[i];
      const std::string f = YamlReader::index(field, i);
      if (!rn.IsMap()) {
        r_.error(rn, f, "expected a mapping, got " + YamlReader::kindOf(rn));
        continue;
      }
      Receiver recv;
      YAML::Node policy_node;
      recv.line = rn.Mark().line + 1;
      for (const auto& kv : rn) {
        const std::string key = kv.first.Scalar();
        if (key == "name") {
          if (auto s = r_.scalar(kv.second, YamlReader::join(f, "name"))) {
            recv.name = *s;
          }
        } else if (key == "escalation_policy") {
          // Checked once the policies are read (they name receivers themselves).
          if (auto s = r_.scalar(kv.second, YamlReader::join(f, key))) {
            recv.escalation_policy = *s;
            policy_node = kv.second;
          }
        } else if (std::find(std::begin(kIntegrationKeys), std::end(kIntegrationKeys), key) !=
                   std::end(kIntegrationKeys)) {
          if (!kv.second.IsSequence() && !kv.second.IsNull()) {
            r_.error(kv.second, YamlReader::join(f, key), "expected a list of configurations");
            continue;
          }
          for (std::size_t k = 0; k < kv.second.size(); ++k) {
            recv.integrations.push_back(key);
            const std::string item = YamlReader::index(YamlReader::join(f, key), k);
            if (key == "webhook_configs") {
              readWebhook(kv.second[k], item, recv);
            } else if (key == "slack_configs") {
              readSlack(kv.second[k], item, recv);
            } else if (key == "pagerduty_configs") {
              readPagerDuty(kv.second[k], item, recv);
            } else if (key == "opsgenie_configs") {
              readOpsGenie(kv.second[k], item, recv);
            } else if (key == "file_configs") {
              readFile(kv.second[k], item, recv);
            }
          }
        } else {
          r_.error(kv.first, YamlReader::join(f, key), "unknown key");
        }
      }
      if (recv.name.empty()) {
        r_.error(rn, f, "missing name in receiver");
        continue;
      }
      if (!names.insert(recv.name).second) {
        r_.error(rn, YamlReader::join(f, "name"),
                 "notification config name \"" + recv.name + "\" is not unique");
        continue;
      }
      out.receivers.push_back(std::move(recv));
      if (policy_node) {
        receiver_policies_.emplace_back(out.receivers.size() - 1, policy_node);
      }
    }
  }

  // A secret or URL given inline (`key`) or in a file (`file_key`, read now and trimmed).
  // Returns false when neither is there.
  bool readInlineOrFile(const YAML::Node& n, const std::string& field, const char* key,
                        const char* file_key, std::string& out) {
    if (auto v = n[key]) {
      if (auto s = r_.scalar(v, YamlReader::join(field, key))) {
        out = *s;
      }
      return true;
    }
    if (auto file = n[file_key]) {
      if (auto path = r_.scalar(file, YamlReader::join(field, file_key))) {
        auto text = readConfigText(*path, 64 * 1024);
        if (!text) {
          r_.error(file, YamlReader::join(field, file_key), text.status().message());
        } else {
          out = *text;
          while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) {
            out.pop_back();
          }
        }
      }
      return true;
    }
    return false;
  }

  // The file a secret is read from when it is not inline (`key` absent, `file_key` given), for
  // the sender to read it again at each send, as Alertmanager does: a rotated key then needs no
  // reload. Empty for an inline secret. readInlineOrFile has checked the file and reported a
  // malformed entry already.
  static std::string secretFile(const YAML::Node& n, const char* key, const char* file_key) {
    const YAML::Node file = n[file_key];
    return !n[key] && file && file.IsScalar() ? file.Scalar() : std::string();
  }

  void readUrl(const YAML::Node& n, const std::string& field, const char* key, const char* file_key,
               std::string& out, const std::string& fallback) {
    if (!readInlineOrFile(n, field, key, file_key, out)) {
      if (fallback.empty()) {
        r_.error(n, field,
                 std::string("one of ") + key + " or " + file_key + " must be configured");
        return;
      }
      out = fallback;
    }
    if (!out.starts_with("http://") && !out.starts_with("https://")) {
      r_.error(n[key] ? n[key] : n, YamlReader::join(field, key),
               "expected an http:// or https:// URL");
    }
  }

  void readString(const YAML::Node& n, const std::string& field, const char* key,
                  std::string& out) {
    if (auto v = n[key]) {
      if (auto s = r_.scalar(v, YamlReader::join(field, key))) {
        out = *s;
      }
    }
  }

  void readBool(const YAML::Node& n, const std::string& field, const char* key, bool& out) {
    if (auto v = n[key]) {
      if (auto b = r_.boolean(v, YamlReader::join(field, key))) {
        out = *b;
      }
    }
  }

  // A file the notifier will read at every send: it must be readable now.
  void checkReadable(const YAML::Node& n, const std::string& field, const std::string& path) {
    if (path.empty()) {
      return;
    }
    if (auto text = readConfigText(path, 64 * 1024); !text) {
      r_.error(n, field, text.status().message());
    }
  }

 public:
  void readTargets(const YAML::Node& n, const std::string& field,
                   std::vector<AlertmanagerTarget>& out) {
    if (!r_.checkList(n, field)) {
      return;
    }
    for (std::size_t i = 0; i < n.size(); ++i) {
      const std::string f = YamlReader::index(field, i);
      if (!r_.checkMap(n[i], f, {"url", "timeout", "http_config"})) {
        continue;
      }
      AlertmanagerTarget t;
      readUrl(n[i], f, "url", "url_file", t.url, "");
      while (!t.url.empty() && t.url.back() == '/') {
        t.url.pop_back();
      }
      if (auto v = n[i]["timeout"]) {
        if (auto d = r_.duration(v, YamlReader::join(f, "timeout"))) {
          t.timeout = *d;
        }
      }
      readHttpConfig(n[i]["http_config"], YamlReader::join(f, "http_config"), t.http);
      out.push_back(std::move(t));
    }
  }

 private:
  void readHttpConfig(const YAML::Node& n, const std::string& field, HttpClientConfig& out) {
    if (!n || n.IsNull()) {
      return;
    }
    if (!r_.checkMap(n, field,
                     {"authorization", "basic_auth", "bearer_token", "bearer_token_file",
                      "tls_config", "headers", "follow_redirects", "enable_http2", "proxy_url"})) {
      return;
    }
    readHttpFields(n, field, out);
  }

 public:
  // The HTTP client keys of a mapping whose other keys the caller checks (Prometheus's
  // remote_write puts them beside url and queue_config rather than under http_config).
  void readHttpFields(const YAML::Node& n, const std::string& field, HttpClientConfig& out) {
    HttpClientConfig h;
    if (auto a = n["authorization"]) {
      const std::string f = YamlReader::join(field, "authorization");
      if (r_.checkMap(a, f, {"type", "credentials", "credentials_file"})) {
        h.auth_type = "Bearer";
        readString(a, f, "type", h.auth_type);
        readString(a, f, "credentials", h.credentials);
        readString(a, f, "credentials_file", h.credentials_file);
        checkReadable(a["credentials_file"], YamlReader::join(f, "credentials_file"),
                      h.credentials_file);
        if (!h.credentials.empty() && !h.credentials_file.empty()) {
          r_.error(a, f, "at most one of credentials and credentials_file must be configured");
        }
        if (h.auth_type == "Basic" || h.auth_type == "basic") {
          r_.error(a, YamlReader::join(f, "type"),
                   "authorization type cannot be set to \"basic\", use \"basic_auth\" instead");
        }
      }
    }
    if (auto b = n["basic_auth"]) {
      const std::string f = YamlReader::join(field, "basic_auth");
      if (!h.auth_type.empty()) {
        r_.error(b, f, "at most one of basic_auth, authorization and bearer_token must be set");
      } else if (r_.checkMap(b, f, {"username", "password", "password_file"})) {
        h.auth_type = "Basic";
        readString(b, f, "username", h.basic_username);
        readString(b, f, "password", h.basic_password);
        readString(b, f, "password_file", h.basic_password_file);
        checkReadable(b["password_file"], YamlReader::join(f, "password_file"),
                      h.basic_password_file);
      }
    }
    for (const char* key : {"bearer_token", "bearer_token_file"}) {
      if (auto v = n[key]) {
        if (!h.auth_type.empty()) {
          r_.error(v, YamlReader::join(field, key),
                   "at most one of basic_auth, authorization and bearer_token must be set");
          continue;
        }
        h.auth_type = "Bearer";
        if (std::string_view(key) == "bearer_token") {
          readString(n, field, key, h.credentials);
        } else {
          readString(n, field, key, h.credentials_file);
          checkReadable(v, YamlReader::join(field, key), h.credentials_file);
        }
      }
    }
    if (auto t = n["tls_config"]) {
      const std::string f = YamlReader::join(field, "tls_config");
      if (r_.checkMap(t, f,
                      {"ca_file", "cert_file", "key_file", "server_name", "insecure_skip_verify",
                       "min_version"})) {
        readString(t, f, "ca_file", h.ca_file);
        checkReadable(t["ca_file"], YamlReader::join(f, "ca_file"), h.ca_file);
        readBool(t, f, "insecure_skip_verify", h.insecure_skip_verify);
        for (const char* unsupported : {"cert_file", "key_file", "server_name", "min_version"}) {
          if (auto v = t[unsupported]) {
            r_.error(v, YamlReader::join(f, unsupported), "not supported by vigil's notifiers");
          }
        }
      }
    }
    if (auto v = n["headers"]) {
      const std::string f = YamlReader::join(field, "headers");
      if (!v.IsMap()) {
        r_.error(v, f,
                 "expected a mapping of header names to values, got " + YamlReader::kindOf(v));
      } else {
        for (const auto& kv : v) {
          const std::string name = kv.first.Scalar();
          const bool token = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
          });
          if (!token) {
            r_.error(kv.first, YamlReader::join(f, name), "not a valid HTTP header name");
          } else if (auto value = r_.scalar(kv.second, YamlReader::join(f, name))) {
            if (value->find_first_of("\r\n") != std::string::npos) {
              r_.error(kv.second, YamlReader::join(f, name), "header values cannot span lines");
            } else {
              h.headers.emplace_back(name, *value);
            }
          }
        }
      }
    }
    if (auto v = n["proxy_url"]) {
      r_.error(v, YamlReader::join(field, "proxy_url"), "not supported by vigil's notifiers");
    }
    out = std::move(h);
  }

 private:
  void readWebhook(const YAML::Node& n, const std::string& field, Receiver& recv) {
    if (!r_.checkMap(n, field, {"url", "url_file", "send_resolved", "max_alerts", "http_config"})) {
      return;
    }
    WebhookConfig w;
    w.http = http_defaults_;
    readUrl(n, field, "url", "url_file", w.url, "");
    readBool(n, field, "send_resolved", w.send_resolved);
    readHttpConfig(n["http_config"], YamlReader::join(field, "http_config"), w.http);
    if (auto v = n["max_alerts"]) {
      int max = -1;
      if (v.IsScalar()) {
        auto [end, ec] =
            std::from_chars(v.Scalar().data(), v.Scalar().data() + v.Scalar().size(), max);
        if (ec != std::errc() || end != v.Scalar().data() + v.Scalar().size()) {
          max = -1;
        }
      }
      if (max < 0) {
        r_.error(v, YamlReader::join(field, "max_alerts"), "expected a number, 0 or more");
      } else {
        w.max_alerts = max;
      }
    }
    recv.webhooks.push_back(std::move(w));
  }

  void readSlack(const YAML::Node& n, const std::string& field, Receiver& recv) {
    if (!r_.checkMap(n, field,
                     {"api_url",     "api_url_file", "send_resolved", "channel",    "username",
                      "icon_emoji",  "icon_url",     "title",         "title_link", "text",
                      "color",       "pretext",      "footer",        "fallback",   "http_config",
                      "link_names",  "short_fields", "mrkdwn_in",     "actions",    "fields",
                      "callback_id", "image_url",    "thumb_url"})) {
      return;
    }
    SlackConfig c;
    c.http = http_defaults_;
    readUrl(n, field, "api_url", "api_url_file", c.api_url, slack_api_url_);
    readBool(n, field, "send_resolved", c.send_resolved);
    readStrings(n, field,
                {{"channel", &c.channel},
                 {"username", &c.username},
                 {"icon_emoji", &c.icon_emoji},
                 {"icon_url", &c.icon_url}});
    readTemplates(n, field,
                  {{"title", &c.title},
                   {"title_link", &c.title_link},
                   {"text", &c.text},
                   {"color", &c.color},
                   {"pretext", &c.pretext},
                   {"footer", &c.footer},
                   {"fallback", &c.fallback}});
    if (auto list = n["fields"]; list && !list.IsNull()) {
      const std::string fields_field = YamlReader::join(field, "fields");
      if (!list.IsSequence()) {
        r_.error(list, fields_field, "expected a list of {title, value, short}");
      } else {
        for (std::size_t i = 0; i < list.size(); ++i) {
          const std::string item = YamlReader::index(fields_field, i);
          if (!r_.checkMap(list[i], item, {"title", "value", "short"})) {
            continue;
          }
          SlackConfig::Field f;
          readTemplates(list[i], item, {{"title", &f.title}, {"value", &f.value}});
          if (f.title.empty() || f.value.empty()) {
            r_.error(list[i], item, "a field needs a title and a value");
            continue;
          }
          c.fields.push_back(std::move(f));
        }
      }
    }
    readHttpConfig(n["http_config"], YamlReader::join(field, "http_config"), c.http);
    recv.slack.push_back(std::move(c));
  }

  void readPagerDuty(const YAML::Node& n, const std::string& field, Receiver& recv) {
    if (!r_.checkMap(n, field,
                     {"routing_key", "routing_key_file", "service_key", "service_key_file", "url",
                      "send_resolved", "severity", "client", "client_url", "description", "details",
                      "component", "group", "class", "links", "images", "http_config"})) {
      return;
    }
    PagerDutyConfig c;
    c.http = http_defaults_;
    for (const char* v1 : {"service_key", "service_key_file"}) {
      if (auto v = n[v1]) {
        r_.error(v, YamlReader::join(field, v1),
                 "the Events API v1 is not supported; use routing_key (Events API v2)");
      }
    }
    if (!readInlineOrFile(n, field, "routing_key", "routing_key_file", c.routing_key) &&
        !n["service_key"] && !n["service_key_file"]) {
      r_.error(n, field, "one of routing_key or routing_key_file must be configured");
    }
    readUrl(n, field, "url", "url_file", c.url, pagerduty_url_);
    readBool(n, field, "send_resolved", c.send_resolved);
    readStrings(n, field,
                {{"client", &c.client},
                 {"component", &c.component},
                 {"group", &c.group},
                 {"class", &c.class_}});
    readTemplates(n, field,
                  {{"severity", &c.severity},
                   {"client_url", &c.client_url},
                   {"description", &c.description}});
    readHttpConfig(n["http_config"], YamlReader::join(field, "http_config"), c.http);
    recv.pagerduty.push_back(std::move(c));
  }

  void readOpsGenie(const YAML::Node& n, const std::string& field, Receiver& recv) {
    if (!r_.checkMap(n, field,
                     {"api_key", "api_key_file", "api_url", "send_resolved", "message",
                      "description", "source", "details", "entity", "responders", "actions", "tags",
                      "note", "priority", "update_alerts", "http_config"})) {
      return;
    }
    OpsGenieConfig c;
    c.http = http_defaults_;
    std::string key;
    std::string key_file;
    if (readInlineOrFile(n, field, "api_key", "api_key_file", key)) {
      key_file = secretFile(n, "api_key", "api_key_file");
    } else {
      key = opsgenie_api_key_;
      key_file = opsgenie_api_key_file_;
      if (key.empty()) {
        r_.error(n, field, "one of api_key or api_key_file must be configured");
      }
    }
    readUrl(n, field, "api_url", "api_url_file", c.api_url, opsgenie_api_url_);
    if (!c.api_url.empty() && c.api_url.back() != '/') {
      c.api_url += '/';  // paths are appended to it, as Alertmanager does
    }
    readBool(n, field, "send_resolved", c.send_resolved);
    readBool(n, field, "update_alerts", c.update_alerts);
    readTemplates(n, field,
                  {{"message", &c.message},
                   {"description", &c.description},
                   {"source", &c.source},
                   {"tags", &c.tags},
                   {"actions", &c.actions},
                   {"note", &c.note},
                   {"priority", &c.priority},
                   {"entity", &c.entity}});
    if (auto d = n["details"]; d && !d.IsNull()) {
      const std::string details_field = YamlReader::join(field, "details");
      if (!d.IsMap()) {
        r_.error(d, details_field, "expected a mapping, got " + YamlReader::kindOf(d));
      } else {
        for (const auto& kv : d) {
          const std::string name = kv.first.Scalar();
          const std::string detail_field = YamlReader::join(details_field, name);
          if (auto value = r_.scalar(kv.second, detail_field)) {
            if (auto st = checkNotificationTemplate(*value); !st.isOk()) {
              r_.error(kv.second, detail_field, st.message());
            }
            c.details.emplace_back(name, *value);
          }
        }
      }
    }
    if (auto list = n["responders"]; list && !list.IsNull()) {
      const std::string responders_field = YamlReader::join(field, "responders");
      if (!list.IsSequence()) {
        r_.error(list, responders_field, "expected a list of {id, name, username, type}");
      } else {
        for (std::size_t i = 0; i < list.size(); ++i) {
          const std::string item = YamlReader::index(responders_field, i);
          if (!r_.checkMap(list[i], item, {"id", "name", "username", "type"})) {
            continue;
          }
          OpsGenieConfig::Responder r;
          readTemplates(
              list[i], item,
              {{"id", &r.id}, {"name", &r.name}, {"username", &r.username}, {"type", &r.type}});
          // Alertmanager 0.25's checks, so that a configuration it refuses is refused here.
          if (r.id.empty() && r.name.empty() && r.username.empty()) {
            r_.error(list[i], item, "has to have at least one of id, username or name specified");
            continue;
          }
          static const std::set<std::string> kTypes = {"team", "teams", "user", "escalation",
                                                       "schedule"};
          std::string type = r.type;
          for (char& ch : type) {
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
          }
          if (r.type.find("{{") == std::string::npos) {
            if (!kTypes.contains(type)) {
              r_.error(list[i]["type"], YamlReader::join(item, "type"),
                       "opsGenie responder type \"" + r.type +
                           "\" is not one of team, teams, user, escalation, schedule");
              continue;
            }
          }
          c.responders.push_back(std::move(r));
        }
      }
    }
    readHttpConfig(n["http_config"], YamlReader::join(field, "http_config"), c.http);
    // The key is sent as an Authorization header of OpsGenie's own scheme; a key from a file is
    // read from it at each send (and is not copied into the outbox on disk).
    c.http.auth_type = "GenieKey";
    c.http.credentials = key_file.empty() ? key : std::string();
    c.http.credentials_file = key_file;
    recv.opsgenie.push_back(std::move(c));
  }

  void readFile(const YAML::Node& n, const std::string& field, Receiver& recv) {
    if (!r_.checkMap(n, field, {"path", "send_resolved"})) {
      return;
    }
    FileConfig c;
    readString(n, field, "path", c.path);
    if (c.path.empty()) {
      r_.error(n, YamlReader::join(field, "path"), "a file path must be configured");
    }
    readBool(n, field, "send_resolved", c.send_resolved);
    recv.files.push_back(std::move(c));
  }

  void readStrings(const YAML::Node& n, const std::string& field,
                   std::initializer_list<std::pair<const char*, std::string*>> keys) {
    for (const auto& [key, out] : keys) {
      readString(n, field, key, *out);
    }
  }

  // Message templates are parsed when the configuration loads, so a typo is a configuration
  // error rather than a notification that never goes out.
  void readTemplates(const YAML::Node& n, const std::string& field,
                     std::initializer_list<std::pair<const char*, std::string*>> keys) {
    for (const auto& [key, out] : keys) {
      readString(n, field, key, *out);
      if (auto v = n[key]; v && v.IsScalar()) {
        if (auto st = checkNotificationTemplate(v.Scalar()); !st.isOk()) {
          r_.error(v, YamlReader::join(field, key), st.message());
        }
      }
    }
  }

  // match: {label: value} (equality) or match_re: {label: regex}.
  void readMatchMap(const YAML::Node& n, const std::string& field, MatchType type,
                    std::vector<LabelMatcher>& out) {
    if (!n.IsMap()) {
      r_.error(n, field, "expected a mapping, got " + YamlReader::kindOf(n));
      return;
    }
    for (const auto& kv : n) {
      const std::string name = kv.first.Scalar();
      const std::string f = YamlReader::join(field, name);
      if (!isValidLabelName(name)) {
        r_.error(kv.first, f, "invalid label name \"" + name + "\"");
        continue;
      }
      auto value = r_.scalar(kv.second, f);
      if (!value) {
        continue;
      }
      // Alertmanager stores match_re values anchored, and shows them so.
      const std::string v = type == MatchType::kRegexMatch ? "^(?:" + *value + ")$" : *value;
      auto m = LabelMatcher::create(type, name, v);
      if (!m) {
        r_.error(kv.second, f, m.status().message());
        continue;
      }
      out.push_back(std::move(*m));
    }
  }

  void readMatcherList(const YAML::Node& n, const std::string& field,
                       std::vector<LabelMatcher>& out) {
    if (!n.IsSequence()) {
      r_.error(n, field, "expected a list of matchers, got " + YamlReader::kindOf(n));
      return;
    }
    for (std::size_t i = 0; i < n.size(); ++i) {
      auto text = r_.scalar(n[i], YamlReader::index(field, i));
      if (!text) {
        continue;
      }
      auto ms = parseMatchers(*text);
      if (!ms) {
        r_.error(n[i], YamlReader::index(field, i), ms.status().message());
        continue;
      }
      for (auto& m : *ms) {
        out.push_back(std::move(m));
      }
    }
  }

  void readRoute(const YAML::Node& n, const std::string& field, const RouteOptions& parent,
                 const std::string& parent_key, const AlertingConfig& config, Route& route,
                 bool root) {
    route.line = n.Mark().line + 1;
    route.options = parent;
    route.options.mute_time_intervals.clear();  // not inherited, as in Alertmanager
    route.options.active_time_intervals.clear();
    if (!r_.checkMap(
            n, field,
            {"receiver", "group_by", "continue", "matchers", "match", "match_re",
             "mute_time_intervals", "active_time_intervals", "group_wait", "group_interval",
             "repeat_interval", "routes", "resolved_after_mute", "escalation_policy"})) {
      return;
    }
    if (auto v = n["receiver"]) {
      if (auto s = r_.scalar(v, YamlReader::join(field, "receiver"))) {
        route.options.receiver = *s;
        if (config.receiver(*s) == nullptr) {
          r_.error(v, YamlReader::join(field, "receiver"),
                   "undefined receiver \"" + *s + "\" used in route");
        }
      }
    } else if (root) {
      r_.error(n, field, "root route must specify a default receiver");
    }
    if (auto v = n["group_by"]; v && !v.IsNull()) {
      readGroupBy(v, YamlReader::join(field, "group_by"), route.options);
    }
    if (auto v = n["continue"]) {
      if (auto b = r_.boolean(v, YamlReader::join(field, "continue"))) {
        route.continue_matching = *b;
        if (root && *b) {
          r_.error(v, YamlReader::join(field, "continue"), "cannot have continue in root route");
        }
      }
    }
    if (auto v = n["resolved_after_mute"]) {
      if (auto b = r_.boolean(v, YamlReader::join(field, "resolved_after_mute"))) {
        route.options.resolved_after_mute = *b;
      }
    }
    if (auto v = n["escalation_policy"]) {
      if (auto name = r_.scalar(v, YamlReader::join(field, "escalation_policy"))) {
        route.options.escalation_policy = *name;
        if (!name->empty() && config.escalationPolicy(*name) == nullptr) {
          r_.error(v, YamlReader::join(field, "escalation_policy"),
                   "undefined escalation policy \"" + *name + "\" used in route");
        }
      }
    }
    if (auto v = n["match"]; v && !v.IsNull()) {
      readMatchMap(v, YamlReader::join(field, "match"), MatchType::kEqual, route.matchers);
    }
    if (auto v = n["match_re"]; v && !v.IsNull()) {
      readMatchMap(v, YamlReader::join(field, "match_re"), MatchType::kRegexMatch, route.matchers);
    }
    if (auto v = n["matchers"]; v && !v.IsNull()) {
      readMatcherList(v, YamlReader::join(field, "matchers"), route.matchers);
    }
    if (root && !route.matchers.empty()) {
      r_.error(n, field, "root route must not have any matchers");
    }
    sortMatchers(route.matchers);
    struct DurationField {
      const char* key;
      Duration RouteOptions::*member;
      bool may_be_zero;
    };
    for (const DurationField& d :
         {DurationField{"group_wait", &RouteOptions::group_wait, true},
          DurationField{"group_interval", &RouteOptions::group_interval, false},
          DurationField{"repeat_interval", &RouteOptions::repeat_interval, false}}) {
      if (auto v = n[d.key]) {
        if (auto parsed = r_.duration(v, YamlReader::join(field, d.key))) {
          if (!d.may_be_zero && parsed->count() == 0) {
            r_.error(v, YamlReader::join(field, d.key), std::string(d.key) + " cannot be zero");
          }
          route.options.*d.member = *parsed;
        }
      }
    }
    for (const char* key : {"mute_time_intervals", "active_time_intervals"}) {
      auto v = n[key];
      if (!v || v.IsNull()) {
        continue;
      }
      const std::string f = YamlReader::join(field, key);
      auto names = r_.stringList(v, f);
      if (!names) {
        continue;
      }
      if (root && !names->empty()) {
        r_.error(v, f,
                 std::string("root route must not have any ") +
                     (key[0] == 'm' ? "mute" : "active") + " time intervals");
      }
      for (const auto& name : *names) {
        if (!timeIntervalDefined(config, name)) {
          r_.error(v, f, "undefined time interval \"" + name + "\" used in route");
        }
      }
      (key[0] == 'm' ? route.options.mute_time_intervals : route.options.active_time_intervals) =
          *names;
    }
    route.key = (parent_key.empty() ? "" : parent_key + "/") + matchersString(route.matchers);
    if (auto v = n["routes"]; v && !v.IsNull()) {
      const std::string f = YamlReader::join(field, "routes");
      if (!v.IsSequence()) {
        r_.error(v, f, "expected a list of routes, got " + YamlReader::kindOf(v));
        return;
      }
      route.routes.resize(v.size());
      for (std::size_t i = 0; i < v.size(); ++i) {
        readRoute(v[i], YamlReader::index(f, i), route.options, route.key, config, route.routes[i],
                  false);
      }
    }
  }

  void readGroupBy(const YAML::Node& v, const std::string& field, RouteOptions& options) {
    auto labels = r_.stringList(v, field);
    if (!labels) {
      return;
    }
    std::vector<std::string> names;
    bool all = false;
    for (const auto& l : *labels) {
      if (l == "...") {
        all = true;
        continue;
      }
      if (!isValidLabelName(l)) {
        r_.error(v, field, "invalid label name \"" + l + "\" in group_by list");
        return;
      }
      if (std::find(names.begin(), names.end(), l) != names.end()) {
        r_.error(v, field, "duplicated label \"" + l + "\" in group_by");
        return;
      }
      names.push_back(l);
    }
    if (all && !names.empty()) {
      r_.error(v, field, "cannot have wildcard group_by (`...`) and other labels at the same time");
      return;
    }
    // As in Alertmanager, an empty list (or only '...') keeps the inherited label names.
    if (!names.empty()) {
      std::sort(names.begin(), names.end());
      options.group_by = std::move(names);
      options.group_by_all = false;
    } else if (all) {
      options.group_by_all = true;
    }
  }

  void readInhibitRules(const YAML::Node& n, const std::string& field, AlertingConfig& out) {
    if (!r_.checkList(n, field)) {
      return;
    }
    for (std::size_t i = 0; i < n.size(); ++i) {
      const std::string f = YamlReader::index(field, i);
      const YAML::Node& rn = n[i];
      if (!r_.checkMap(rn, f,
                       {"source_match", "source_match_re", "source_matchers", "target_match",
                        "target_match_re", "target_matchers", "equal"})) {
        continue;
      }
      InhibitRule rule;
      rule.line = rn.Mark().line + 1;
      for (const char* side : {"source", "target"}) {
        auto& ms = side[0] == 's' ? rule.source_matchers : rule.target_matchers;
        const std::string s(side);
        if (auto v = rn[s + "_match"]; v && !v.IsNull()) {
          readMatchMap(v, YamlReader::join(f, s + "_match"), MatchType::kEqual, ms);
        }
        if (auto v = rn[s + "_match_re"]; v && !v.IsNull()) {
          readMatchMap(v, YamlReader::join(f, s + "_match_re"), MatchType::kRegexMatch, ms);
        }
        if (auto v = rn[s + "_matchers"]; v && !v.IsNull()) {
          readMatcherList(v, YamlReader::join(f, s + "_matchers"), ms);
        }
      }
      if (auto v = rn["equal"]; v && !v.IsNull()) {
        if (auto labels = r_.stringList(v, YamlReader::join(f, "equal"))) {
          for (const auto& l : *labels) {
            if (!isValidLabelName(l)) {
              r_.error(v, YamlReader::join(f, "equal"), "invalid label name \"" + l + "\"");
            }
          }
          rule.equal = *labels;
        }
      }
      out.inhibit_rules.push_back(std::move(rule));
    }
  }

  static bool timeIntervalDefined(const AlertingConfig& config, const std::string& name) {
    return std::any_of(config.time_intervals.begin(), config.time_intervals.end(),
                       [&](const TimeInterval& t) { return t.name == name; });
  }

  void readFlapDetection(const YAML::Node& n, const std::string& field, FlapSettings& out) {
    if (!r_.checkMap(n, field, {"enabled", "threshold", "window", "hold"})) {
      return;
    }
    readBool(n, field, "enabled", out.enabled);
    if (auto v = n["threshold"]) {
      int t = 0;
      if (v.IsScalar()) {
        auto [end, ec] =
            std::from_chars(v.Scalar().data(), v.Scalar().data() + v.Scalar().size(), t);
        if (ec != std::errc() || end != v.Scalar().data() + v.Scalar().size()) {
          t = 0;
        }
      }
      if (t < 2 || t > 100) {
        r_.error(v, YamlReader::join(field, "threshold"),
                 "expected a number of state changes from 2 to 100");
      } else {
        out.threshold = t;
      }
    }
    for (auto [key, member] :
         {std::pair{"window", &FlapSettings::window}, std::pair{"hold", &FlapSettings::hold}}) {
      if (auto v = n[key]) {
        if (auto d = r_.duration(v, YamlReader::join(field, key))) {
          if (d->count() == 0) {
            r_.error(v, YamlReader::join(field, key), std::string(key) + " cannot be zero");
          } else {
            out.*member = *d;
          }
        }
      }
    }
  }

  void readEscalationPolicies(const YAML::Node& n, const std::string& field, AlertingConfig& out) {
    if (!r_.checkList(n, field)) {
      return;
    }
    for (std::size_t i = 0; i < n.size(); ++i) {
      const std::string f = YamlReader::index(field, i);
      const YAML::Node& pn = n[i];
      if (!r_.checkMap(pn, f,
                       {"name", "levels", "repeat", "repeat_wait", "repeat_backoff",
                        "repeat_max_wait", "ack_timeout"})) {
        continue;
      }
      EscalationPolicy p;
      p.line = pn.Mark().line + 1;
      readString(pn, f, "name", p.name);
      if (p.name.empty()) {
        r_.error(pn, f, "missing name in escalation policy");
        continue;
      }
      if (out.escalationPolicy(p.name) != nullptr) {
        r_.error(pn["name"], YamlReader::join(f, "name"),
                 "escalation policy \"" + p.name + "\" is not unique");
        continue;
      }
      if (auto v = pn["repeat"]) {
        const std::string rf = YamlReader::join(f, "repeat");
        int repeat = -1;
        if (v.IsScalar()) {
          auto [end, ec] =
              std::from_chars(v.Scalar().data(), v.Scalar().data() + v.Scalar().size(), repeat);
          if (ec != std::errc() || end != v.Scalar().data() + v.Scalar().size()) {
            repeat = -1;
          }
        }
        // PagerDuty allows 9 loops; more is a page storm, not a policy.
        if (repeat < 0 || repeat > 9) {
          r_.error(v, rf, "expected a number of repeats from 0 to 9");
        } else {
          p.repeat = repeat;
        }
      }
      for (auto [key, member] : {std::pair{"repeat_wait", &EscalationPolicy::repeat_wait},
                                 std::pair{"repeat_max_wait", &EscalationPolicy::repeat_max_wait},
                                 std::pair{"ack_timeout", &EscalationPolicy::ack_timeout}}) {
        if (auto v = pn[key]) {
          if (auto d = r_.duration(v, YamlReader::join(f, key))) {
            p.*member = *d;
          }
        }
      }
      if (auto v = pn["repeat_backoff"]) {
        const std::string bf = YamlReader::join(f, "repeat_backoff");
        char* end = nullptr;
        const double b = v.IsScalar() ? std::strtod(v.Scalar().c_str(), &end) : 0;
        if (!v.IsScalar() || end == v.Scalar().c_str() || *end != '\0' || !(b >= 1 && b <= 10)) {
          r_.error(v, bf, "expected a multiplier from 1 to 10");
        } else {
          p.repeat_backoff = b;
        }
      }
      const YAML::Node levels = pn["levels"];
      const std::string lf = YamlReader::join(f, "levels");
      if (!levels || !levels.IsSequence() || levels.size() == 0) {
        r_.error(levels ? levels : pn, lf, "an escalation policy needs at least one level");
        continue;
      }
      for (std::size_t k = 0; k < levels.size(); ++k) {
        const std::string ef = YamlReader::index(lf, k);
        if (!r_.checkMap(levels[k], ef, {"receivers", "escalate_after", "active_time_intervals"})) {
          continue;
        }
        EscalationLevel level;
        level.line = levels[k].Mark().line + 1;
        if (auto v = levels[k]["receivers"]) {
          if (auto list = r_.stringList(v, YamlReader::join(ef, "receivers"))) {
            level.receivers = *list;
          }
          for (const auto& r : level.receivers) {
            if (out.receiver(r) == nullptr) {
              r_.error(v, YamlReader::join(ef, "receivers"),
                       "undefined receiver \"" + r + "\" used in escalation policy");
            }
          }
        }
        if (level.receivers.empty()) {
          r_.error(levels[k], YamlReader::join(ef, "receivers"),
                   "an escalation level needs at least one receiver");
        }
        if (auto v = levels[k]["escalate_after"]) {
          if (auto d = r_.duration(v, YamlReader::join(ef, "escalate_after"))) {
            level.escalate_after = *d;
          }
        }
        if (level.escalate_after.count() == 0 && k + 1 < levels.size()) {
          r_.error(levels[k], YamlReader::join(ef, "escalate_after"),
                   "every level but the last needs escalate_after");
        }
        if (auto v = levels[k]["active_time_intervals"]) {
          if (auto list = r_.stringList(v, YamlReader::join(ef, "active_time_intervals"))) {
            level.active_time_intervals = *list;
          }
          for (const auto& t : level.active_time_intervals) {
            if (out.timeInterval(t) == nullptr) {
              r_.error(v, YamlReader::join(ef, "active_time_intervals"),
                       "undefined time interval \"" + t + "\" used in escalation policy");
            }
          }
        }
        p.levels.push_back(std::move(level));
      }
      if (p.repeat > 0 && p.levels.back().escalate_after.count() == 0 &&
          p.repeat_wait.count() == 0) {
        r_.error(pn, YamlReader::join(f, "repeat_wait"),
                 "a policy that repeats needs repeat_wait or escalate_after on its last level");
      }
      out.escalation_policies.push_back(std::move(p));
    }
  }

  void readTimeIntervals(const YAML::Node& n, const std::string& field, AlertingConfig& out) {
    if (!r_.checkList(n, field)) {
      return;
    }
    for (std::size_t i = 0; i < n.size(); ++i) {
      const std::string f = YamlReader::index(field, i);
      const YAML::Node& tn = n[i];
      if (!r_.checkMap(tn, f, {"name", "time_intervals"})) {
        continue;
      }
      TimeInterval ti;
      ti.line = tn.Mark().line + 1;
      if (auto v = tn["name"]) {
        if (auto s = r_.scalar(v, YamlReader::join(f, "name"))) {
          ti.name = *s;
        }
      }
      if (ti.name.empty()) {
        r_.error(tn, f, "missing name in time interval");
        continue;
      }
      if (timeIntervalDefined(out, ti.name)) {
        r_.error(tn["name"], YamlReader::join(f, "name"),
                 "time interval \"" + ti.name + "\" is not unique");
        continue;
      }
      if (auto v = tn["time_intervals"]; v && !v.IsNull()) {
        const std::string sf = YamlReader::join(f, "time_intervals");
        if (!v.IsSequence()) {
          r_.error(v, sf, "expected a list, got " + YamlReader::kindOf(v));
        } else {
          for (std::size_t k = 0; k < v.size(); ++k) {
            TimeSpec spec;
            if (readTimeSpec(v[k], YamlReader::index(sf, k), spec)) {
              ti.specs.push_back(std::move(spec));
            }
          }
        }
      }
      out.time_intervals.push_back(std::move(ti));
    }
  }

  // "HH:MM" from 00:00 to 24:00, as minutes of the day.
  static std::optional<int> clockMinutes(const std::string& s) {
    if (s.size() != 5 || s[2] != ':' || !std::isdigit(static_cast<unsigned char>(s[0])) ||
        !std::isdigit(static_cast<unsigned char>(s[1])) ||
        !std::isdigit(static_cast<unsigned char>(s[3])) ||
        !std::isdigit(static_cast<unsigned char>(s[4]))) {
      return std::nullopt;
    }
    const int h = (s[0] - '0') * 10 + (s[1] - '0');
    const int m = (s[3] - '0') * 10 + (s[4] - '0');
    if (h > 24 || m > 59 || (h == 24 && m != 0)) {
      return std::nullopt;
    }
    return h * 60 + m;
  }

  // One value of a range list: a number, or a name from `names` (1-based unless zero_based).
  static std::optional<int> rangeValue(const std::string& s, const char* const* names,
                                       std::size_t count, bool zero_based) {
    for (std::size_t i = 0; names != nullptr && i < count; ++i) {
      if (s == names[i]) {
        return static_cast<int>(zero_based ? i : i + 1);
      }
    }
    int v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size()) {
      return std::nullopt;
    }
    return v;
  }

  // weekdays, days_of_month, months, years: "a" or "a:b" with the values in [lo, hi].
  bool readRanges(const YAML::Node& v, const std::string& field, const char* const* names,
                  std::size_t count, bool zero_based, int lo, int hi, bool allow_negative,
                  std::vector<TimeSpec::Range>& out) {
    auto items = r_.stringList(v, field);
    if (!items) {
      return false;
    }
    for (const auto& item : *items) {
      std::string text = item;
      std::transform(text.begin(), text.end(), text.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      const auto colon = text.find(':');
      auto first = rangeValue(text.substr(0, colon), names, count, zero_based);
      auto last = colon == std::string::npos
                      ? first
                      : rangeValue(text.substr(colon + 1), names, count, zero_based);
      auto inRange = [&](const std::optional<int>& x) {
        if (!x) {
          return false;
        }
        if (allow_negative && *x < 0) {
          return *x >= -hi;
        }
        return *x >= lo && *x <= hi;
      };
      if (!inRange(first) || !inRange(last) || ((*first < 0) == (*last < 0) && *first > *last)) {
        r_.error(v, field, "invalid range \"" + item + "\"");
        return false;
      }
      out.push_back({*first, *last});
    }
    return true;
  }

  bool readTimeSpec(const YAML::Node& n, const std::string& field, TimeSpec& spec) {
    if (!r_.checkMap(n, field,
                     {"times", "weekdays", "days_of_month", "months", "years", "location"})) {
      return false;
    }
    bool ok = true;
    if (auto v = n["times"]; v && !v.IsNull()) {
      const std::string f = YamlReader::join(field, "times");
      if (!v.IsSequence()) {
        r_.error(v, f, "expected a list, got " + YamlReader::kindOf(v));
        ok = false;
      } else {
        for (std::size_t i = 0; i < v.size(); ++i) {
          const std::string tf = YamlReader::index(f, i);
          if (!r_.checkMap(v[i], tf, {"start_time", "end_time"})) {
            ok = false;
            continue;
          }
          std::optional<int> start;
          std::optional<int> end;
          if (v[i]["start_time"] && v[i]["end_time"]) {
            start = clockMinutes(v[i]["start_time"].Scalar());
            end = clockMinutes(v[i]["end_time"].Scalar());
          }
          if (!start.has_value() || !end.has_value() || start.value() >= end.value()) {
            r_.error(v[i], tf,
                     "start_time and end_time must be HH:MM from 00:00 to 24:00, start before end");
            ok = false;
            continue;
          }
          spec.times.push_back({start.value(), end.value()});
        }
      }
    }
    struct RangeField {
      const char* key;
      const char* const* names;
      std::size_t name_count;
      bool zero_based;
      int lo;
      int hi;
      bool from_end;  // negative values count from the end (days of the month)
      std::vector<TimeSpec::Range> TimeSpec::*member;
    };
    static const RangeField kRangeFields[] = {
        {"weekdays", kWeekdays, 7, true, 0, 6, false, &TimeSpec::weekdays},
        {"days_of_month", nullptr, 0, false, 1, 31, true, &TimeSpec::days_of_month},
        {"months", kMonths, 12, false, 1, 12, false, &TimeSpec::months},
        {"years", nullptr, 0, false, 0, 9999, false, &TimeSpec::years},
    };
    for (const RangeField& f : kRangeFields) {
      if (auto v = n[f.key]; v && !v.IsNull()) {
        ok &= readRanges(v, YamlReader::join(field, f.key), f.names, f.name_count, f.zero_based,
                         f.lo, f.hi, f.from_end, spec.*f.member);
      }
    }
    if (auto v = n["location"]; v && !v.IsNull()) {
      if (auto s = r_.scalar(v, YamlReader::join(field, "location"))) {
        if (!knownTimeZone(*s)) {
          r_.error(v, YamlReader::join(field, "location"), "unknown time zone \"" + *s + "\"");
          ok = false;
        } else {
          spec.location = *s;
        }
      }
    }
    return ok;
  }

  YamlReader& r_;
  // The global section's defaults for the receivers read after it.
  std::string slack_api_url_;
  std::string pagerduty_url_ = "https://events.pagerduty.com/v2/enqueue";
  std::string opsgenie_api_url_ = "https://api.opsgenie.com/";
  std::string opsgenie_api_key_;
  std::string opsgenie_api_key_file_;  // where it comes from, when from a file
  HttpClientConfig http_defaults_;
  // Receivers naming an escalation policy, checked once the policies are read.
  std::vector<std::pair<std::size_t, YAML::Node>> receiver_policies_;
};

}  // namespace

const Receiver* AlertingConfig::receiver(std::string_view name) const {
  for (const auto& r : receivers) {
    if (r.name == name) {
      return &r;
    }
  }
  return nullptr;
}

const EscalationPolicy* AlertingConfig::escalationPolicy(std::string_view name) const {
  for (const auto& p : escalation_policies) {
    if (p.name == name) {
      return &p;
    }
  }
  return nullptr;
}

const TimeInterval* AlertingConfig::timeInterval(std::string_view name) const {
  for (const auto& t : time_intervals) {
    if (t.name == name) {
      return &t;
    }
  }
  return nullptr;
}

void readAlertingDocument(YamlReader& reader, const YAML::Node& root, const std::string& field,
                          AlertingConfig& out) {
  try {
    AlertingReader(reader).read(root, field, out);
    out.original = YAML::Dump(root) + "\n";
  } catch (const YAML::Exception& e) {
    reader.reportException(e, "invalid configuration: ");
  }
}

void readAlertmanagerTargets(YamlReader& reader, const YAML::Node& node, const std::string& field,
                             std::vector<AlertmanagerTarget>& out) {
  AlertingReader(reader).readTargets(node, field, out);
}

void readHttpClientFields(YamlReader& reader, const YAML::Node& node, const std::string& field,
                          HttpClientConfig& out) {
  AlertingReader(reader).readHttpFields(node, field, out);
}

namespace {

// Reads the document `node` (the whole file, or a vigil configuration's `alerting` section)
// into `result`, which keeps the configuration only if nothing was wrong.
void readInto(YamlReader& reader, const YAML::Node& node, const std::string& field,
              AlertingConfigResult& result) {
  AlertingConfig config;
  readAlertingDocument(reader, node, field, config);
  if (result.errors.empty()) {
    result.config = std::move(config);
  }
}

}  // namespace

std::shared_ptr<const promql::Template> loadTemplateFiles(const std::vector<std::string>& globs,
                                                          const std::string& base_dir,
                                                          std::vector<TemplateFileError>& errors) {
  constexpr std::uintmax_t kMaxTemplateFileBytes = 1 << 20;
  auto library = std::make_shared<promql::Template>();
  bool any = false;
  for (std::size_t i = 0; i < globs.size(); ++i) {
    std::string pattern = globs[i];
    if (!base_dir.empty() && std::filesystem::path(pattern).is_relative()) {
      pattern = (std::filesystem::path(base_dir) / pattern).string();
    }
    glob_t matches{};
    const int rc = ::glob(pattern.c_str(), 0, nullptr, &matches);
    if (rc != 0 && rc != GLOB_NOMATCH) {
      errors.push_back({i, "cannot expand the glob " + pattern});
    }
    std::vector<std::string> files;
    if (rc == 0) {
      files.assign(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
    }
    globfree(&matches);
    for (const auto& file : files) {
      std::error_code ec;
      const auto size = std::filesystem::file_size(file, ec);
      if (ec || size > kMaxTemplateFileBytes) {
        errors.push_back(
            {i, file + ": " + (ec ? "cannot read: " + ec.message() : "larger than 1 MiB")});
        continue;
      }
      auto text = readConfigText(file);
      if (!text) {
        errors.push_back({i, text.status().message()});
        continue;
      }
      auto parsed = promql::Template::parse(*text);
      if (!parsed) {
        errors.push_back({i, file + ": " + parsed.status().message()});
        continue;
      }
      library->addDefinitions(*parsed);
      any = true;
    }
  }
  return any ? library : nullptr;
}

AlertingConfigResult parseAlertingConfig(std::string_view yaml_text, std::string_view file) {
  AlertingConfigResult result;
  YamlReader reader(std::string(file), result.errors);
  if (auto root = reader.load(yaml_text)) {
    readInto(reader, *root, "", result);
  }
  return result;
}

AlertingConfigResult loadAlertingConfigFile(const std::string& path) {
  AlertingConfigResult result;
  auto text = readConfigText(path);
  if (!text) {
    result.errors.push_back(SourceError{path, 0, 0, text.status().message()});
    return result;
  }
  YamlReader reader(path, result.errors);
  auto root = reader.load(*text);
  if (!root) {
    return result;
  }
  // A vigil configuration: its `alerting` section holds the document or names its file.
  if (root->IsMap() && !(*root)["route"] && (*root)["alerting"]) {
    const YAML::Node section = (*root)["alerting"];
    if (section.IsMap() && section["config_file"]) {
      std::string referenced = section["config_file"].Scalar();
      if (std::filesystem::path(referenced).is_relative()) {
        referenced = (std::filesystem::path(path).parent_path() / referenced).string();
      }
      return loadAlertingConfigFile(referenced);
    }
    readInto(reader, section, "alerting", result);
    return result;
  }
  readInto(reader, *root, "", result);
  return result;
}

}  // namespace vigil::alerting
