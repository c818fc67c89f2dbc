#include "vigil/exporters/webhook.h"

#include <httplib.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <ctime>

namespace vigil::exporters {

namespace {

using json = nlohmann::json;

// Go's time.Time in JSON: RFC 3339 with the fraction's trailing zeros dropped, and the zero
// time (a firing alert's end) as 0001-01-01T00:00:00Z.
std::string goTime(int64_t ms) {
  if (ms == 0) {
    return "0001-01-01T00:00:00Z";
  }
  const std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string out = buf;
  if (int frac = static_cast<int>(ms % 1000); frac != 0) {
    char f[8];
    std::snprintf(f, sizeof f, ".%03d", frac);
    std::string fs = f;
    while (fs.back() == '0') {
      fs.pop_back();
    }
    out += fs;
  }
  return out + "Z";
}

json labelsJson(const LabelSet& labels) {
  json out = json::object();
  for (const auto& l : labels) {
    out[l.name] = l.value;
  }
  return out;
}

// The labels (or annotations) every alert has with the same value.
LabelSet common(const std::vector<alerting::Alert>& alerts, bool annotations) {
  if (alerts.empty()) {
    return {};
  }
  LabelSet out = annotations ? alerts[0].annotations : alerts[0].labels;
  for (std::size_t i = 1; i < alerts.size(); ++i) {
    const LabelSet& other = annotations ? alerts[i].annotations : alerts[i].labels;
    std::erase_if(out, [&](const Label& l) {
      return std::find(other.begin(), other.end(), l) == other.end();
    });
  }
  return out;
}

// Go's regexp.QuoteMeta, which Alertmanager applies to the receiver name in payloads.
std::string quoteMeta(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\.+*?()|[]{}^$").find(c) != std::string_view::npos) {
      out += '\\';
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string webhookPayload(const alerting::Notification& n, const alerting::WebhookConfig& config,
                           const std::string& external_url) {
  std::vector<alerting::Alert> alerts;
  for (const auto& a : n.alerts) {
    if (a.ends_at == 0 || config.send_resolved) {
      alerts.push_back(a);
    }
  }
  const bool firing = std::any_of(alerts.begin(), alerts.end(),
                                  [](const alerting::Alert& a) { return a.ends_at == 0; });
  json list = json::array();
  std::size_t truncated = 0;
  for (const auto& a : alerts) {
    if (config.max_alerts > 0 && list.size() >= static_cast<std::size_t>(config.max_alerts)) {
      ++truncated;
      continue;
    }
    list.push_back({{"status", a.ends_at == 0 ? "firing" : "resolved"},
                    {"labels", labelsJson(a.labels)},
                    {"annotations", labelsJson(a.annotations)},
                    {"startsAt", goTime(a.starts_at)},
                    {"endsAt", goTime(a.ends_at)},
                    {"generatorURL", a.generator_url},
                    {"fingerprint", alerting::fingerprintHex(a.fingerprint())}});
  }
  const json body = {{"receiver", quoteMeta(n.receiver)},
                     {"status", firing ? "firing" : "resolved"},
                     {"alerts", list},
                     {"groupLabels", labelsJson(n.group_labels)},
                     {"commonLabels", labelsJson(common(alerts, false))},
                     {"commonAnnotations", labelsJson(common(alerts, true))},
                     {"externalURL", external_url},
                     {"version", "4"},
                     {"groupKey", n.group_key},
                     {"truncatedAlerts", truncated}};
  return body.dump(-1, ' ', false, json::error_handler_t::replace);
}

Delivery postJson(const std::string& url, const std::string& json_body,
                  std::chrono::milliseconds timeout) {
  // scheme://host[:port], then the path.
  const std::size_t scheme_end = url.find("://");
  const std::size_t path_start =
      scheme_end == std::string::npos ? std::string::npos : url.find('/', scheme_end + 3);
  const std::string origin = url.substr(0, path_start);
  const std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
  httplib::Client client(origin);
  if (!client.is_valid()) {
    return {DeliveryResult::kFailed, 0, "invalid URL " + url};
  }
  client.enable_server_certificate_verification(true);
  client.set_ca_cert_path("/etc/ssl/certs/ca-certificates.crt");
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  const auto usecs = std::chrono::duration_cast<std::chrono::microseconds>(timeout - secs);
  client.set_connection_timeout(secs.count(), usecs.count());
  client.set_read_timeout(secs.count(), usecs.count());
  client.set_write_timeout(secs.count(), usecs.count());
  httplib::Headers headers{{"User-Agent", "vigil"}};
  auto res = client.Post(path, headers, json_body, "application/json");
  if (!res) {
    return {DeliveryResult::kRetry, 0, httplib::to_string(res.error())};
  }
  Delivery d;
  d.status = res->status;
  d.detail = res->body.substr(0, 256);
  if (res->status >= 200 && res->status < 300) {
    d.result = DeliveryResult::kDelivered;
  } else if (res->status >= 500 || res->status == 429) {
    d.result = DeliveryResult::kRetry;
  } else {
    d.result = DeliveryResult::kFailed;
  }
  return d;
}

bool WebhookSink::deliver(const alerting::Notification& n) {
  if (n.receiver_config == nullptr) {
    return true;
  }
  bool done = true;
  for (const auto& hook : n.receiver_config->webhooks) {
    const bool any_firing = std::any_of(n.alerts.begin(), n.alerts.end(),
                                        [](const alerting::Alert& a) { return a.ends_at == 0; });
    if (!any_firing && !hook.send_resolved) {
      continue;  // only resolved alerts, and this webhook does not want them
    }
    const Delivery d = postJson(hook.url, webhookPayload(n, hook, external_url_), timeout_);
    switch (d.result) {
      case DeliveryResult::kDelivered:
        break;
      case DeliveryResult::kRetry:
        spdlog::warn(
            "webhook delivery failed, will retry receiver={} url={} status={} error=\"{}\"",
            n.receiver, hook.url, d.status, d.detail);
        done = false;
        break;
      case DeliveryResult::kFailed:
        spdlog::error("webhook rejected the notification receiver={} url={} status={} body=\"{}\"",
                      n.receiver, hook.url, d.status, d.detail);
        break;
    }
  }
  return done;
}

}  // namespace vigil::exporters
