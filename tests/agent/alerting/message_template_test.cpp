// Notification templates over Alertmanager's data: what people write in Slack and PagerDuty
// receivers (range over the alerts, the label maps' methods, times), with the expected text
// as amtool 0.25 renders the same template over the same data (checked by hand; the amtool
// conformance test runs many more through amtool itself).
#include <catch2/catch.hpp>

#include "vigil/alerting/message.h"

using namespace vigil;
using namespace vigil::alerting;

namespace {

Notification twoAlerts() {
  Notification n;
  n.receiver = "team.db";
  n.group_key = R"({}:{alertname="DiskFull"})";
  n.group_labels = {{"alertname", "DiskFull"}};
  Alert firing;
  firing.labels = {{"alertname", "DiskFull"}, {"instance", "n1"}, {"severity", "page"}};
  firing.annotations = {{"summary", "Disk almost full"}};
  firing.starts_at = 1787392800250;  // 2026-08-22T10:00:00.25Z
  firing.generator_url = "http://prom:9090/graph";
  Alert resolved = firing;
  resolved.labels[1].value = "n2";
  resolved.starts_at = 1787389200000;  // 09:00
  resolved.ends_at = 1787394600000;    // 10:30
  n.alerts = {firing, resolved};
  return n;
}

std::string expand(const std::string& text, bool send_resolved = true) {
  const Notification n = twoAlerts();
  const MessageContext m(n, "http://vigil:9810", send_resolved);
  auto r = expandTemplate(text, m);
  REQUIRE(r.isOk());
  return *r;
}

std::string failure(const std::string& text) {
  const Notification n = twoAlerts();
  const MessageContext m(n, "", true);
  auto r = expandTemplate(text, m);
  REQUIRE_FALSE(r.isOk());
  return r.status().message();
}

}  // namespace

TEST_CASE("Notification templates range over the alerts with their fields",
          "[alerting][template]") {
  const Notification n = twoAlerts();
  CHECK(
      expand("{{ range .Alerts }}[{{ .Status }} {{ .Labels.instance }} {{ .Annotations.summary }} "
             "{{ .StartsAt }} {{ .EndsAt }} {{ .Fingerprint }}]{{ end }}") ==
      "[firing n1 Disk almost full 2026-08-22 10:00:00.25 +0000 UTC 0001-01-01 00:00:00 +0000 "
      "UTC " +
          fingerprintHex(fingerprint(n.alerts[0].labels)) +
          "][resolved n2 Disk almost full 2026-08-22 09:00:00 +0000 UTC "
          "2026-08-22 10:30:00 +0000 UTC " +
          fingerprintHex(fingerprint(n.alerts[1].labels)) + "]");
  CHECK(expand("{{ len .Alerts }} {{ len .Alerts.Firing }} {{ .Alerts.Resolved | len }}") ==
        "2 1 1");
  // Without send_resolved the resolved alert is not in the message.
  CHECK(expand("{{ len .Alerts }} {{ .Status }}", false) == "1 firing");
  CHECK(expand("{{ range $i, $a := .Alerts.Firing }}{{ $i }}:{{ $a.Labels.instance }} "
               "{{ $a.GeneratorURL }}{{ end }}") == "0:n1 http://prom:9090/graph");
  CHECK(expand("{{ with index .Alerts 1 }}{{ .Status }}{{ end }}") == "resolved");
  CHECK(expand("{{ if .Alerts.Resolved }}some resolved{{ end }}") == "some resolved");
}

TEST_CASE("Notification templates: label maps, pairs and lists", "[alerting][template]") {
  CHECK(expand("{{ .CommonLabels }}") == "map[alertname:DiskFull severity:page]");
  CHECK(expand("{{ .CommonLabels.SortedPairs }}") == "[{alertname DiskFull} {severity page}]");
  CHECK(expand("{{ .CommonLabels.Names }} {{ .CommonLabels.Values }}") ==
        "[alertname severity] [DiskFull page]");
  CHECK(expand("{{ .CommonLabels.Remove .GroupLabels.Names }}") == "map[severity:page]");
  CHECK(expand(R"({{ (.CommonLabels.Remove (stringSlice "severity")).Names | join ", " }})") ==
        "alertname");
  CHECK(expand("{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}") ==
        "alertname=DiskFull;severity=page;");
  CHECK(expand("{{ range $k, $v := .CommonLabels }}{{ $k }}={{ $v }} {{ end }}") ==
        "alertname=DiskFull severity=page ");
  // A missing key is empty (missingkey=zero), and index reads keys, never methods.
  CHECK(expand(R"([{{ .CommonLabels.nothere }}] [{{ index .CommonAnnotations "summary" }}])") ==
        "[] [Disk almost full]");
  CHECK(expand("{{ .Receiver }} {{ .ExternalURL }} {{ .GroupLabels.alertname }}") ==
        R"(team\.db http://vigil:9810 DiskFull)");
  // vigil's own fields, kept for existing configurations.
  CHECK(expand("{{ .NumFiring }}/{{ .NumResolved }} {{ .GroupKey }}") ==
        R"(1/1 {}:{alertname="DiskFull"})");
}

TEST_CASE("Notification templates format times as Go does", "[alerting][template]") {
  const std::string first = "{{ with index .Alerts 0 }}";
  CHECK(expand(first + R"({{ .StartsAt.Format "2006-01-02T15:04:05Z07:00" }}{{ end }})") ==
        "2026-08-22T10:00:00Z");
  CHECK(expand(first + R"({{ .StartsAt.Format "Jan _2 06 3:04:05.999 PM MST -0700 Monday 002" }})"
                       "{{ end }}") == "Aug 22 26 10:00:00.25 AM UTC +0000 Saturday 234");
  CHECK(expand(first + R"({{ .StartsAt.Format ".000000 ,000 .9 .99" }}{{ end }})") ==
        ".250000 ,250 .2 .25");
  CHECK(expand(first + "{{ .StartsAt.Unix }} {{ .EndsAt.Unix }}{{ end }}") ==
        "1787392800 -62135596800");
  // Go's zero time, a firing alert's end: Monday, January 1 of year 1.
  CHECK(expand(first + R"({{ .EndsAt.Format "Mon Jan 2 2006 15:04:05.999" }}{{ end }})") ==
        "Mon Jan 1 0001 00:00:00");
  // "Jan" and "Mon" followed by a lower-case letter are words, as in Go.
  CHECK(expand(first + R"({{ .StartsAt.Format "Janet Month" }}{{ end }})") == "Janet Month");
}

TEST_CASE("Notification templates refuse what Alertmanager refuses", "[alerting][template]") {
  CHECK(failure("{{ .Nope }}").find("can't evaluate field Nope") != std::string::npos);
  CHECK(failure("{{ .Alerts.Firing.Resolved }}").find("Resolved") != std::string::npos);
  CHECK(failure("{{ .CommonLabels.Remove }}").find("Remove") != std::string::npos);
  CHECK(failure("{{ (index .Alerts 0).StartsAt.Format }}").find("Format") != std::string::npos);
  CHECK(failure("{{ index .Alerts 5 }}").find("out of range") != std::string::npos);
  // Prometheus's alert variables are not defined over a notification.
  CHECK(failure("{{ $labels.alertname }}").find("$labels") != std::string::npos);
}
