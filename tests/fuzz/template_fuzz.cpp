// Go templates (annotations, notification messages) -> parse, then execute on one alert, with
// a `query` that answers every expression with two samples, and on a notification of two
// alerts (Alertmanager's data: alerts, label maps, times) with itself as the library of named
// templates.
#include <cstdint>
#include <map>
#include <string>

#include "vigil/rules/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto t =
      vigil::promql::Template::parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (t) {
    static const vigil::LabelSet labels = {{"alertname", "HighLatency"}, {"instance", "web-1:80"}};
    static const std::map<std::string, std::string> external = {{"cluster", "prod"}};
    static const vigil::promql::TemplateQuery query =
        [](const std::string& expr) -> vigil::Result<std::vector<vigil::promql::TemplateSample>> {
      if (expr.empty()) {
        return vigil::invalidArgument("empty query");
      }
      return std::vector<vigil::promql::TemplateSample>{{{{"__name__", "up"}, {"job", expr}}, 1},
                                                        {{{"__name__", "up"}, {"job", "b"}}, 0.5}};
    };
    vigil::promql::TemplateData d;
    d.labels = &labels;
    d.value = 0.25;
    d.external_labels = &external;
    d.query = &query;
    (void)t->execute(d);

    static const vigil::promql::NotificationTemplateData notification = [] {
      vigil::promql::NotificationTemplateData n;
      n.receiver = "team";
      n.status = "firing";
      n.group_labels = {{"alertname", "DiskFull"}};
      n.common_labels = {{"alertname", "DiskFull"}, {"severity", "page"}};
      n.common_annotations = {{"summary", "full"}};
      n.alerts = {{"firing", n.common_labels, n.common_annotations, 1787392800250, 0, "http://x",
                   "9266ef3da838ad95"},
                  {"resolved", {{"alertname", "DiskFull"}}, {}, -1, 1787392800000, "", "00"}};
      return n;
    }();
    vigil::promql::TemplateData over_notification;
    over_notification.notification = &notification;
    over_notification.library = &*t;
    (void)t->execute(over_notification);
  }
  return 0;
}
