// Go templates (annotations, notification messages) -> parse, then execute on one alert, with
// a `query` that answers every expression with two samples.
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
  }
  return 0;
}
