#include "vigil/alerting/message.h"

#include <algorithm>
#include <ctime>
#include <optional>

#include "vigil/alerting/config.h"

namespace vigil::alerting {

namespace {

std::optional<std::string> labelValue(const LabelSet& labels, std::string_view name) {
  for (const auto& l : labels) {
    if (l.name == name) {
      return l.value;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string quoteMeta(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::string_view("\\.+*?()|[]{}^$").find(c) != std::string_view::npos) {
      out += '\\';
    }
    out += c;
  }
  return out;
}

LabelSet commonLabels(const std::vector<Alert>& alerts, bool annotations) {
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

Status checkNotificationTemplate(std::string_view text) {
  auto parsed = promql::Template::parse(text);
  return parsed ? Status::ok() : parsed.status();
}

MessageContext::MessageContext(const Notification& n, std::string url, bool send_resolved)
    : notification(n), external_url(std::move(url)) {
  for (const auto& a : n.alerts) {
    if (a.ends_at == 0 || send_resolved) {
      alerts.push_back(a);
    }
  }
  common_labels = commonLabels(alerts, false);
  common_annotations = commonLabels(alerts, true);
}

std::size_t MessageContext::numFiring() const {
  return static_cast<std::size_t>(
      std::count_if(alerts.begin(), alerts.end(), [](const Alert& a) { return a.ends_at == 0; }));
}

bool MessageContext::firing() const { return numFiring() > 0; }

const promql::NotificationTemplateData& MessageContext::templateData() const {
  if (template_data_) {
    return *template_data_;
  }
  promql::NotificationTemplateData& d = template_data_.emplace();
  d.receiver = quoteMeta(notification.receiver);
  d.status = firing() ? "firing" : "resolved";
  d.group_key = notification.group_key;
  d.external_url = external_url;
  d.group_labels = notification.group_labels;
  d.common_labels = common_labels;
  d.common_annotations = common_annotations;
  d.alerts.reserve(alerts.size());
  for (const Alert& a : alerts) {
    d.alerts.push_back({a.ends_at == 0 ? "firing" : "resolved", a.labels, a.annotations,
                        a.starts_at, a.ends_at, a.generator_url, fingerprintHex(a.fingerprint())});
  }
  return d;
}

Result<std::string> expandTemplate(std::string_view text, const MessageContext& m) {
  auto parsed = promql::Template::parse(text);
  if (!parsed) {
    return parsed.status();
  }
  promql::TemplateData data;
  data.notification = &m.templateData();
  if (m.notification.config) {
    data.library = m.notification.config->template_library.get();
  }
  return parsed->execute(data);
}

std::string defaultTitle(const MessageContext& m) {
  // Alertmanager's default: [STATUS:count] group label values (other common label values).
  std::string out = m.firing() ? "[FIRING:" + std::to_string(m.numFiring()) + "]" : "[RESOLVED]";
  for (const auto& l : m.notification.group_labels) {
    out += " " + l.value;
  }
  std::string rest;
  for (const auto& l : m.common_labels) {
    if (!labelValue(m.notification.group_labels, l.name)) {
      rest += (rest.empty() ? "" : " ") + l.value;
    }
  }
  if (!rest.empty()) {
    out += " (" + rest + ")";
  }
  return out;
}

std::string defaultText(const MessageContext& m) {
  constexpr std::size_t kMaxListed = 20;  // a message stays readable; the rest are counted
  std::string out;
  std::size_t listed = 0;
  for (const auto& a : m.alerts) {
    if (listed == kMaxListed) {
      out += "… and " + std::to_string(m.alerts.size() - listed) + " more\n";
      break;
    }
    ++listed;
    const std::string what =
        labelValue(a.annotations, "summary")
            .value_or(labelValue(a.annotations, "description")
                          .value_or(labelValue(a.labels, "alertname").value_or("alert")));
    std::string where;
    for (const auto& l : a.labels) {
      if (l.name != "alertname") {
        where += (where.empty() ? "" : ", ") + l.name + "=" + l.value;
      }
    }
    out += a.ends_at == 0 ? "[firing] " : "[resolved] ";
    out += what;
    if (!where.empty()) {
      out += " (" + where + ")";
    }
    out += a.ends_at == 0 ? ", since " + goTime(a.starts_at)
                          : ", from " + goTime(a.starts_at) + " to " + goTime(a.ends_at);
    if (auto runbook = labelValue(a.annotations, "runbook_url")) {
      out += ", runbook: " + *runbook;
    }
    out += "\n";
  }
  if (!out.empty()) {
    out.pop_back();
  }
  return out;
}

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

}  // namespace vigil::alerting
