// The one place that lists the notifier kinds, and what they share.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "notifier.h"

namespace vigil::exporters {

const std::vector<std::unique_ptr<Notifier>>& notifiers() {
  static const auto* all = [] {
    auto* v = new std::vector<std::unique_ptr<Notifier>>();
    v->push_back(makeWebhookNotifier());
    v->push_back(makeSlackNotifier());
    v->push_back(makePagerDutyNotifier());
    v->push_back(makeOpsGenieNotifier());
    v->push_back(makeFileNotifier());
    return v;
  }();
  return *all;
}

bool wantsNotification(const alerting::Notification& n, bool send_resolved) {
  return (send_resolved && !n.alerts.empty()) ||
         std::any_of(n.alerts.begin(), n.alerts.end(),
                     [](const alerting::Alert& a) { return a.ends_at == 0; });
}

std::string labelOr(const LabelSet& labels, std::string_view name, std::string fallback) {
  for (const auto& l : labels) {
    if (l.name == name) {
      return l.value;
    }
  }
  return fallback;
}

std::string expandOr(const std::string& text, const alerting::MessageContext& m,
                     std::string fallback, const char* notifier, const char* field) {
  if (text.empty()) {
    return fallback;
  }
  auto r = alerting::expandTemplate(text, m);
  if (!r) {
    // Configurations written for Alertmanager call the names of its own default.tmpl, which
    // vigil does not carry: say where they come from.
    const std::string& why = r.status().message();
    const bool alertmanager_name = why.find("not defined") != std::string::npos &&
                                   (why.find("template \"__") != std::string::npos ||
                                    why.find(".default.") != std::string::npos);
    spdlog::warn("{} template failed, using the default receiver={} field={} error=\"{}\"{}",
                 notifier, m.notification.receiver, field, why,
                 alertmanager_name ? " hint=\"Alertmanager's default names are defined in its "
                                     "default.tmpl: list that file under templates:\""
                                   : "");
    return fallback;
  }
  return *r;
}

Status writeAndSync(int fd, std::string_view data, const std::string& path) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return Status(StatusCode::kUnavailable, "cannot write " + path + ": " + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    return Status(StatusCode::kUnavailable, "cannot sync " + path + ": " + std::strerror(errno));
  }
  return Status::ok();
}

}  // namespace vigil::exporters
