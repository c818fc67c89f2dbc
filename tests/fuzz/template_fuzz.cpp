// Go templates (annotations, notification messages) -> parse, then execute on one alert.
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
    vigil::promql::TemplateData d;
    d.labels = &labels;
    d.value = 0.25;
    d.external_labels = &external;
    t->execute(d);
  }
  return 0;
}
