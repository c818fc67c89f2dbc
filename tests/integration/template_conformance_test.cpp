// Notification template conformance: the same templates over the same notification data,
// expanded by `amtool template render` (Alertmanager 0.25, the oracle) and `vigil template
// render`, with the same template files; the text must be identical, and a template one
// refuses the other must refuse too. The templates are what receivers' titles and texts are
// made of: named templates from files, ranges over the alerts and their labels, the label
// maps' methods, time formats, conditionals and functions.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/process.h"

using namespace vigil::test;

namespace {

// Two alerts of one group, one firing and one resolved, with a receiver name that needs no
// quoting (amtool renders the data as given; vigil's QuoteMeta of real receivers is checked
// in the unit tests).
constexpr const char* kTwoAlerts = R"({
  "receiver": "team-db", "status": "firing", "externalURL": "http://vigil:9810",
  "groupLabels": {"alertname": "DiskFull", "cluster": "eu-1"},
  "commonLabels": {"alertname": "DiskFull", "cluster": "eu-1", "severity": "page"},
  "commonAnnotations": {"runbook_url": "https://runbooks/disk"},
  "alerts": [
    {"status": "firing",
     "labels": {"alertname": "DiskFull", "cluster": "eu-1", "instance": "db-1:9100",
                "mountpoint": "/var/lib/postgresql", "severity": "page"},
     "annotations": {"summary": "Disk 97% full on db-1", "runbook_url": "https://runbooks/disk"},
     "startsAt": "2026-08-22T10:00:00.25Z", "endsAt": "0001-01-01T00:00:00Z",
     "generatorURL": "http://vigil:9810/graph?g0.expr=disk", "fingerprint": "9266ef3da838ad95"},
    {"status": "resolved",
     "labels": {"alertname": "DiskFull", "cluster": "eu-1", "instance": "db-2:9100",
                "mountpoint": "/", "severity": "page"},
     "annotations": {"summary": "Disk 91% full on db-2", "runbook_url": "https://runbooks/disk"},
     "startsAt": "2026-02-01T23:59:59Z", "endsAt": "2026-08-22T13:30:07.5Z",
     "generatorURL": "http://vigil:9810/graph?g0.expr=disk", "fingerprint": "3b15fd163d36582e"}
  ]
})";

// A resolved notification of one alert with few labels and nothing in common to annotate.
constexpr const char* kOneResolved = R"({
  "receiver": "ops", "status": "resolved", "externalURL": "",
  "groupLabels": {}, "commonLabels": {"alertname": "Watchdog"}, "commonAnnotations": {},
  "alerts": [
    {"status": "resolved", "labels": {"alertname": "Watchdog"}, "annotations": {},
     "startsAt": "2025-12-31T23:00:00Z", "endsAt": "2026-01-01T00:00:00Z",
     "generatorURL": "", "fingerprint": "cbf29ce484222325"}
  ]
})";

// Template files as a configuration's `templates` names them: named templates calling one
// another, and a name both files define (the later file wins).
constexpr const char* kFileA =
    R"({{ define "myorg.title" }}[{{ .Status | toUpper }}{{ if eq .Status "firing" }}:{{ .Alerts.Firing | len }}{{ end }}] {{ .CommonLabels.alertname }}{{ end }}
{{ define "myorg.alert" }}{{ .Labels.instance }}: {{ .Annotations.summary }}{{ end }}
{{ define "myorg.text" }}{{ range .Alerts }}{{ template "myorg.alert" . }}
{{ end }}{{ end }}
{{ define "twice" }}from a{{ end }}
text outside any define is not part of any template
)";
constexpr const char* kFileB = R"({{ define "twice" }}from b{{ end }}
{{- define "myorg.dollar" }}{{ $ }}|{{ . }}{{ end -}}
)";

const std::vector<std::string> kTemplates = {
    // Named templates from the files, and from the template itself.
    R"({{ template "myorg.title" . }})",
    R"({{ template "myorg.text" . }})",
    R"({{ template "myorg.alert" (index .Alerts 1) }})",
    R"({{ template "twice" . }})",
    R"({{ template "myorg.dollar" .Status }} {{ template "myorg.dollar" }})",
    R"({{ define "local" }}<{{ .Receiver }}>{{ end }}{{ template "local" . }})",
    R"({{ define "myorg.alert" }}overridden {{ .Status }}{{ end }}{{ template "myorg.text" . }})",
    R"({{ block "list" .Alerts }}{{ range . }}{{ .Labels.instance }} {{ end }}{{ end }})",
    R"({{ define "outer" }}<{{ block "inner" . }}{{ .Status }}{{ end }}>{{ end }})"
    R"({{ template "outer" . }}|{{ template "inner" .Alerts.Resolved }})",
    R"({{ block "a" . }}A{{ block "b" .Receiver }}B{{ . }}{{ end }}{{ end }}-{{ template "b" "x" }})",
    R"({{ block "a" . }}{{ define "x" }}{{ end }}{{ end }})",
    R"({{ define "o" }}{{ block "i" . }}{{ $x := 1 }}{{ $x }}{{ end }}{{ $x }}{{ end }})",
    R"({{ template "nosuch" . }})",
    R"({{ template "myorg.title" }})",
    R"({{ $x := 1 }}{{ define "inner" }}{{ $x }}{{ end }})",
    R"({{ define "unclosed" }}x)",
    // Top-level fields and the label maps.
    "{{ .Status }} {{ .Receiver }} {{ .ExternalURL }}",
    "{{ .GroupLabels }} {{ .CommonLabels }} {{ .CommonAnnotations }}",
    "{{ .CommonLabels.alertname }}|{{ .CommonLabels.nothere }}|{{ .GroupLabels.cluster }}",
    "{{ .CommonLabels.SortedPairs }} {{ .CommonLabels.Names }} {{ .CommonLabels.Values }}",
    "{{ .GroupLabels.SortedPairs.Names }} {{ .GroupLabels.SortedPairs.Values }}",
    "{{ .CommonLabels.Remove .GroupLabels.Names }}",
    R"({{ .CommonLabels.Remove (stringSlice "severity" "nothere") }})",
    R"({{ join ", " .CommonLabels.Values }} {{ .GroupLabels.Names | join "+" }})",
    R"({{ index .CommonLabels "severity" }} {{ index .CommonAnnotations "nothere" }})",
    "{{ len .CommonLabels }} {{ len .GroupLabels }} {{ len .CommonAnnotations }}",
    "{{ range $k, $v := .CommonLabels }}{{ $k }}={{ $v }};{{ end }}",
    "{{ range $i, $p := .CommonLabels.SortedPairs }}{{ $i }}:{{ $p.Name }}={{ .Value }} {{ end }}",
    "{{ range .GroupLabels.SortedPairs }}{{ .Name }}{{ else }}no group labels{{ end }}",
    // The alerts.
    "{{ .Alerts }}",
    "{{ index .Alerts 0 }}",
    "{{ len .Alerts }} {{ len .Alerts.Firing }} {{ .Alerts.Resolved | len }}",
    "{{ .Alerts.Firing }}|{{ .Alerts.Resolved }}",
    "{{ range .Alerts }}[{{ .Status }} {{ .Labels.instance }} {{ .Annotations.summary }} "
    "{{ .StartsAt }} {{ .EndsAt }} {{ .GeneratorURL }} {{ .Fingerprint }}]{{ end }}",
    "{{ range $i, $a := .Alerts }}{{ $i }}={{ $a.Labels.mountpoint }} {{ end }}",
    "{{ range .Alerts.Firing }}{{ .Labels }} {{ .Annotations }}{{ end }}",
    "{{ range .Alerts.Resolved }}{{ .Labels.SortedPairs }}{{ else }}none resolved{{ end }}",
    "{{ range .Alerts }}{{ range .Labels.SortedPairs }}{{ .Name }}={{ .Value }} {{ end }}\n"
    "{{ end }}",
    "{{ range .Alerts }}{{ (.Labels.Remove (stringSlice \"alertname\" \"severity\")).Values | "
    "join \"/\" }};{{ end }}",
    "{{ with index .Alerts 0 }}{{ .Labels.alertname }} since {{ .StartsAt }}{{ end }}",
    "{{ $first := index .Alerts 0 }}{{ $first.Status }} {{ $first.Annotations.runbook_url }}",
    // Conditionals and functions over the data.
    "{{ if gt (len .Alerts.Firing) 0 }}FIRING:{{ len .Alerts.Firing }}{{ else }}OK{{ end }}",
    "{{ if eq .Status \"firing\" }}:fire:{{ else }}:white_check_mark:{{ end }}",
    "{{ if .CommonAnnotations.runbook_url }}<{{ .CommonAnnotations.runbook_url }}|Runbook>"
    "{{ end }}",
    "{{ if and .Alerts.Firing .Alerts.Resolved }}mixed{{ else if .Alerts.Firing }}firing"
    "{{ else }}resolved{{ end }}",
    "{{ toUpper .Status }} {{ title .Receiver }} {{ toLower .CommonLabels.alertname }}",
    "{{ printf \"%s: %d alert(s)\" .Receiver (len .Alerts) }}",
    "{{ printf \"%v\" .CommonLabels }} {{ printf \"%q\" .Status }}",
    "{{ reReplaceAll \":[0-9]+$\" \"\" (index .Alerts 0).Labels.instance }}",
    "{{ match \"^db-\" (index .Alerts 0).Labels.instance }}",
    "{{ safeHtml \"<b>bold</b>\" }}",
    // Slack-style bodies as people write them.
    "{{ range .Alerts }}*Alert:* {{ .Annotations.summary }}{{ if .Labels.severity }} - "
    "`{{ .Labels.severity }}`{{ end }}\n*Details:*\n{{ range .Labels.SortedPairs }} • *{{ .Name "
    "}}:* "
    "`{{ .Value }}`\n{{ end }}{{ end }}",
    "[{{ .Status | toUpper }}{{ if eq .Status \"firing\" }}:{{ .Alerts.Firing | len }}{{ end }}] "
    "{{ .GroupLabels.SortedPairs.Values | join \" \" }}{{ if gt (len .CommonLabels) "
    "(len .GroupLabels) }} ({{ with .CommonLabels.Remove .GroupLabels.Names }}"
    "{{ .Values | join \" \" }}{{ end }}){{ end }}",
    "{{- range .Alerts }}\n- {{ .Labels.alertname }} on {{ .Labels.instance -}}\n{{ end }}",
    // Times.
    "{{ range .Alerts }}{{ .StartsAt.Unix }} {{ .EndsAt.Unix }};{{ end }}",
    "{{ range .Alerts }}{{ .StartsAt.Format \"2006-01-02T15:04:05Z07:00\" }} "
    "{{ .EndsAt.Format \"Mon, 02 Jan 2006 15:04:05 MST\" }};{{ end }}",
    "{{ range .Alerts }}{{ .StartsAt.Format \"Jan _2 06 3:04:05.999 PM -0700 -07:00 -07 "
    "Monday 002 __2 .000000 ,000 .9 .99 January 1 2 15 4 5 pm\" }};{{ end }}",
    "{{ range .Alerts }}{{ .EndsAt.Format \"_2006 Janet Month 01/02 03:04:05.00 Z0700 Z07\" }};"
    "{{ end }}",
    "{{ range .Alerts }}{{ .StartsAt.UTC }} {{ .StartsAt.UnixMilli }};{{ end }}",
    // Refused by both.
    "{{ .Nope }}",
    "{{ .Alerts.Firing.Resolved }}",
    "{{ .CommonLabels.Remove }}",
    "{{ (index .Alerts 0).StartsAt.Format }}",
    "{{ index .Alerts 9 }}",
    "{{ range .Status }}x{{ end }}",
    "{{ nosuchfunction 1 }}",
    "{{ if }}",
};

}  // namespace

TEST_CASE("Notification templates: vigil template render expands like amtool template render",
          "[integration][template][amtool]") {
  TempDir dir;
  dir.write("a.tmpl", kFileA);
  dir.write("b.tmpl", kFileB);
  dir.write("two.json", kTwoAlerts);
  dir.write("resolved.json", kOneResolved);
  int compared = 0;
  int refused = 0;
  for (const char* data : {"two.json", "resolved.json"}) {
    for (const auto& text : kTemplates) {
      INFO("data " << data << ", template: " << text);
      const auto amtool =
          runCommand({"amtool", "template", "render", "--template.glob=" + dir.file("*.tmpl"),
                      "--template.data=" + dir.file(data), "--template.text=" + text});
      const auto vigil =
          runCommand({VIGIL_BINARY, "template", "render", "--template.glob=" + dir.file("*.tmpl"),
                      "--template.data=" + dir.file(data), "--template.text=" + text});
      INFO("amtool: " << amtool.output);
      INFO("vigil: " << vigil.output);
      REQUIRE((amtool.exit_code == 0) == (vigil.exit_code == 0));
      if (amtool.exit_code == 0) {
        CHECK(vigil.output == amtool.output);
        ++compared;
      } else {
        ++refused;
      }
    }
  }
  // The battery exercises both outcomes; a broken amtool would refuse everything.
  CHECK(compared >= 90);
  CHECK(refused >= 20);
}

// Alertmanager's own templates (default.tmpl, email.tmpl), which define the names its receivers
// default to (slack.default.title, __subject, __text_alert_list, ...): vigil does not carry a
// copy, but a configuration that lists them in `templates:` must get the same text from every
// name as Alertmanager does. The files come from Debian's prometheus-alertmanager, as amtool.
TEST_CASE("Alertmanager's default templates expand in vigil as in amtool",
          "[integration][template][amtool]") {
  const std::filesystem::path shipped = "/usr/share/prometheus/alertmanager";
  const std::string glob = (shipped / "*.tmpl").string();
  std::vector<std::string> names;
  const std::regex define(R"re(\{\{-?\s*define\s+"([^"]+)")re");
  for (const char* file : {"default.tmpl", "email.tmpl"}) {
    std::ifstream in(shipped / file);
    REQUIRE(in);  // installed with prometheus-alertmanager, amtool's package
    std::stringstream text;
    text << in.rdbuf();
    const std::string body = text.str();
    for (std::sregex_iterator it(body.begin(), body.end(), define), end; it != end; ++it) {
      names.push_back((*it)[1]);
    }
  }
  // Alertmanager 0.25's: the integrations' defaults and the shared pieces they are made of.
  REQUIRE(names.size() >= 40);

  TempDir dir;
  dir.write("two.json", kTwoAlerts);
  dir.write("resolved.json", kOneResolved);
  int compared = 0;
  for (const char* data : {"two.json", "resolved.json"}) {
    for (const auto& name : names) {
      // __text_alert_list and the names made of it range over a list of alerts; the others
      // take the whole notification.
      const std::string arg =
          name == "__text_alert_list" || name == "pagerduty.default.instances" ? ".Alerts" : ".";
      const std::string text = "{{ template \"" + name + "\" " + arg + " }}";
      INFO("data " << data << ", template: " << text);
      const auto amtool =
          runCommand({"amtool", "template", "render", "--template.glob=" + glob,
                      "--template.data=" + dir.file(data), "--template.text=" + text});
      const auto vigil =
          runCommand({VIGIL_BINARY, "template", "render", "--template.glob=" + glob,
                      "--template.data=" + dir.file(data), "--template.text=" + text});
      INFO("amtool: " << amtool.output);
      INFO("vigil: " << vigil.output);
      REQUIRE(amtool.exit_code == 0);
      REQUIRE(vigil.exit_code == 0);
      CHECK(vigil.output == amtool.output);
      ++compared;
    }
  }
  CHECK(compared == 2 * static_cast<int>(names.size()));
}
