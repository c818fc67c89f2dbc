#pragma once
// What a notification says: the parts every notifier shares (common labels, the default
// summary and text) and message templates over a notification, in the Go template syntax of
// Alertmanager's `title`/`text`/`description` fields.
//
// Templates see Alertmanager's data (.Receiver .Status .Alerts .GroupLabels .CommonLabels
// .CommonAnnotations .ExternalURL, each alert's .Status .Labels .Annotations .StartsAt .EndsAt
// .GeneratorURL .Fingerprint) plus vigil's .GroupKey .NumFiring .NumResolved, with the
// functions of rule templates and Alertmanager's join and stringSlice: see
// vigil/rules/template.h.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/alerting/dispatcher.h"
#include "vigil/rules/template.h"
#include "vigil/status.h"

namespace vigil::alerting {

/// The labels (or annotations) every alert has with the same value.
LabelSet commonLabels(const std::vector<Alert>& alerts, bool annotations);

/// Whether `text` parses as a notification template; the error says what is wrong and where.
Status checkNotificationTemplate(std::string_view text);

/// The notification as its notifiers describe it.
struct MessageContext {
  const Notification& notification;
  std::string external_url;
  /// The alerts this integration sends (resolved ones left out without send_resolved).
  std::vector<Alert> alerts;

  MessageContext(const Notification& n, std::string url, bool send_resolved);
  bool firing() const;
  std::size_t numFiring() const;
  LabelSet common_labels;
  LabelSet common_annotations;

  /// The notification as templates see it (Alertmanager's template data), made at the first
  /// template a notifier expands and shared by its other fields (one notifier renders a
  /// message on one thread).
  const promql::NotificationTemplateData& templateData() const;

 private:
  mutable std::optional<promql::NotificationTemplateData> template_data_;
};

/// Expands a template over the notification; on error the error is returned.
Result<std::string> expandTemplate(std::string_view text, const MessageContext& m);

/// Go's regexp.QuoteMeta, which Alertmanager applies to the receiver's name in templates and
/// webhook payloads (a receiver `a.b` appears as `a\.b`).
std::string quoteMeta(std::string_view s);

/// The default one-line summary: what is wrong and where, e.g.
/// "[FIRING:2] DiskFull (instance=db-1 severity=page)".
std::string defaultTitle(const MessageContext& m);
/// The default body: per alert its summary (or description), labels, since when, and the
/// runbook link when the alert has a `runbook_url` annotation.
std::string defaultText(const MessageContext& m);

/// RFC 3339 in UTC with milliseconds only when non-zero, as Go prints time.Time in JSON;
/// 0 is Go's zero time.
std::string goTime(int64_t ms);

}  // namespace vigil::alerting
