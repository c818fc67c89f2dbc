// `vigil template render`: expands a notification template (a receiver's `title`, `text`,
// `description`, ...) over a notification's data, as `amtool template render` does, so that a
// template can be tried before it goes into a receiver, and checked against amtool.
#include "template_command.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

#include "../api/api_time.h"
#include "vigil/alerting/alert.h"
#include "vigil/alerting/config.h"
#include "vigil/rules/template.h"

namespace vigil {

namespace {

constexpr const char* kTemplateUsage =
    R"(Usage: vigil template render --template.text=TEXT [--template.data=FILE]
                             [--template.glob=GLOB]...

Expands TEXT, a notification template in Go's syntax (as in a receiver's `title` or `text`),
over FILE: the data Alertmanager gives templates, in JSON (`receiver`, `status`, `alerts` with
`status`, `labels`, `annotations`, `startsAt`, `endsAt`, `generatorURL` and `fingerprint`,
`groupLabels`, `commonLabels`, `commonAnnotations`, `externalURL`), as amtool's
--template.data takes it. Without FILE, an example notification: two DiskFull alerts, one
firing and one resolved. Each GLOB names template files whose {{define}}s TEXT may run with
{{template "name" .}}, as a configuration's `templates` does. Exits 1 with the error if a
file or the template does not parse, or the template does not expand.
)";

// Alertmanager's zero time, a firing alert's end, is 0 here.
constexpr const char* kGoZeroTime = "0001-01-01T00:00:00Z";

constexpr const char* kExampleData = R"({
  "receiver": "team-db", "status": "firing", "externalURL": "http://vigil:9810",
  "groupLabels": {"alertname": "DiskFull"},
  "commonLabels": {"alertname": "DiskFull", "severity": "page"},
  "commonAnnotations": {"summary": "Disk almost full"},
  "alerts": [
    {"status": "firing", "labels": {"alertname": "DiskFull", "instance": "db-1", "severity": "page"},
     "annotations": {"summary": "Disk almost full"}, "startsAt": "2026-08-22T10:00:00Z",
     "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://vigil:9810/graph"},
    {"status": "resolved", "labels": {"alertname": "DiskFull", "instance": "db-2", "severity": "page"},
     "annotations": {"summary": "Disk almost full"}, "startsAt": "2026-08-22T09:00:00Z",
     "endsAt": "2026-08-22T10:30:00Z", "generatorURL": "http://vigil:9810/graph"}
  ]
})";

Result<LabelSet> readMap(const nlohmann::json& j, const std::string& field) {
  LabelSet out;
  if (j.is_null()) {
    return out;
  }
  if (!j.is_object()) {
    return invalidArgument(field + ": expected an object of strings");
  }
  for (const auto& [name, value] : j.items()) {
    if (!value.is_string()) {
      return invalidArgument(field + "." + name + ": expected a string");
    }
    out.push_back({name, value.get<std::string>()});
  }
  std::sort(out.begin(), out.end(), [](const Label& a, const Label& b) { return a.name < b.name; });
  return out;
}

Result<std::string> readString(const nlohmann::json& j, const char* key, const std::string& at) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    return std::string();
  }
  if (!it->is_string()) {
    return invalidArgument(at + key + ": expected a string");
  }
  return it->get<std::string>();
}

Result<int64_t> readTime(const nlohmann::json& j, const char* key, const std::string& at) {
  auto text = readString(j, key, at);
  if (!text) {
    return text.status();
  }
  if (text->empty() || *text == kGoZeroTime) {
    return int64_t{0};
  }
  auto ms = parseApiTime(*text);
  if (!ms) {
    return invalidArgument(at + key + ": " + ms.status().message());
  }
  return *ms;
}

#define VIGIL_ASSIGN_OR_RETURN_STATUS(lhs, expr) \
  do {                                           \
    auto r_ = (expr);                            \
    if (!r_) {                                   \
      return r_.status();                        \
    }                                            \
    lhs = std::move(*r_);                        \
  } while (false)

Result<promql::NotificationTemplateData> readData(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return invalidArgument("not a JSON object");
  }
  promql::NotificationTemplateData d;
  VIGIL_ASSIGN_OR_RETURN_STATUS(d.receiver, readString(j, "receiver", ""));
  VIGIL_ASSIGN_OR_RETURN_STATUS(d.status, readString(j, "status", ""));
  VIGIL_ASSIGN_OR_RETURN_STATUS(d.external_url, readString(j, "externalURL", ""));
  VIGIL_ASSIGN_OR_RETURN_STATUS(d.group_labels,
                                readMap(j.value("groupLabels", nlohmann::json()), "groupLabels"));
  VIGIL_ASSIGN_OR_RETURN_STATUS(d.common_labels,
                                readMap(j.value("commonLabels", nlohmann::json()), "commonLabels"));
  VIGIL_ASSIGN_OR_RETURN_STATUS(
      d.common_annotations,
      readMap(j.value("commonAnnotations", nlohmann::json()), "commonAnnotations"));
  const auto alerts = j.value("alerts", nlohmann::json::array());
  if (!alerts.is_array()) {
    return invalidArgument("alerts: expected an array");
  }
  for (std::size_t i = 0; i < alerts.size(); ++i) {
    const auto& a = alerts[i];
    const std::string at = "alerts[" + std::to_string(i) + "].";
    if (!a.is_object()) {
      return invalidArgument(at.substr(0, at.size() - 1) + ": expected an object");
    }
    promql::TemplateAlert alert;
    VIGIL_ASSIGN_OR_RETURN_STATUS(alert.status, readString(a, "status", at));
    VIGIL_ASSIGN_OR_RETURN_STATUS(alert.labels,
                                  readMap(a.value("labels", nlohmann::json()), at + "labels"));
    VIGIL_ASSIGN_OR_RETURN_STATUS(
        alert.annotations, readMap(a.value("annotations", nlohmann::json()), at + "annotations"));
    VIGIL_ASSIGN_OR_RETURN_STATUS(alert.starts_at_ms, readTime(a, "startsAt", at));
    VIGIL_ASSIGN_OR_RETURN_STATUS(alert.ends_at_ms, readTime(a, "endsAt", at));
    VIGIL_ASSIGN_OR_RETURN_STATUS(alert.generator_url, readString(a, "generatorURL", at));
    VIGIL_ASSIGN_OR_RETURN_STATUS(alert.fingerprint, readString(a, "fingerprint", at));
    if (alert.fingerprint.empty()) {
      alert.fingerprint = alerting::fingerprintHex(alerting::fingerprint(alert.labels));
    }
    d.alerts.push_back(std::move(alert));
  }
  return d;
}

#undef VIGIL_ASSIGN_OR_RETURN_STATUS

}  // namespace

int templateCommand(const std::vector<std::string>& args) {
  std::string text;
  bool text_given = false;
  std::string data_file;
  std::vector<std::string> globs;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") {
      std::cout << kTemplateUsage;
      return 0;
    }
    auto value = [&](const std::string& flag, std::string& out) {
      if (a == flag && i + 1 < args.size()) {
        out = args[++i];
        return true;
      }
      if (a.starts_with(flag + "=")) {
        out = a.substr(flag.size() + 1);
        return true;
      }
      return false;
    };
    if (i == 0 && a == "render") {
      continue;
    }
    if (value("--template.text", text)) {
      text_given = true;
    } else if (value("--template.data", data_file)) {
    } else if (std::string glob; value("--template.glob", glob)) {
      globs.push_back(glob);
    } else {
      std::cerr << "vigil: unexpected argument " << a << "\n\n" << kTemplateUsage;
      return 2;
    }
  }
  if (args.empty() || args[0] != "render" || !text_given) {
    std::cerr << kTemplateUsage;
    return 2;
  }
  std::string data_text = kExampleData;
  if (!data_file.empty()) {
    std::ifstream in(data_file);
    if (!in) {
      std::cerr << "vigil: cannot read " << data_file << "\n";
      return 1;
    }
    std::ostringstream buffer;
    buffer << in.rdbuf();
    data_text = buffer.str();
  }
  auto data = readData(data_text);
  if (!data) {
    std::cerr << "vigil: " << (data_file.empty() ? "example data" : data_file) << ": "
              << data.status().message() << "\n";
    return 1;
  }
  std::vector<alerting::TemplateFileError> errors;
  const auto library = alerting::loadTemplateFiles(globs, "", errors);
  if (!errors.empty()) {
    for (const auto& e : errors) {
      std::cerr << "vigil: " << e.message << "\n";
    }
    return 1;
  }
  auto parsed = promql::Template::parse(text);
  if (!parsed) {
    std::cerr << "vigil: " << parsed.status().message() << "\n";
    return 1;
  }
  promql::TemplateData run;
  run.notification = &*data;
  run.library = library.get();
  auto out = parsed->execute(run);
  if (!out) {
    std::cerr << "vigil: " << out.status().message() << "\n";
    return 1;
  }
  std::cout << *out;  // as amtool: the text exactly, no newline added
  return 0;
}

}  // namespace vigil
