#pragma once
// Alert label and annotation templates: the part of Go's text/template that Prometheus rules
// use — {{ $labels.name }}, {{ $value }}, {{ $externalLabels.name }}, pipelines, if/else/end,
// comparison functions and Prometheus's humanize family, printf, toUpper, toLower, title,
// reReplaceAll.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "vigil/store.h"

namespace vigil::promql {

struct TemplateData {
  const LabelSet* labels = nullptr;
  double value = 0;
  const std::map<std::string, std::string>* external_labels = nullptr;
  /// Other fields (`.Receiver`, `.CommonLabels.severity`, ...), for templates over something
  /// else than one alert: given the word with its leading dot, the value, or nullopt for a
  /// field that does not exist (an error naming the field).
  const std::function<std::optional<std::string>(std::string_view)>* fields = nullptr;
};

class Template {
 public:
  /// Parses `text`; kInvalidArgument says what is wrong and where.
  static Result<Template> parse(std::string_view text);
  Result<std::string> execute(const TemplateData& data) const;

  struct Node;

 private:
  std::shared_ptr<const Node> root_;
};

/// Go's fmt %v for a float64: shortest digits, exponent form below 1e-4 and from 1e6.
std::string goFloat(double v);

}  // namespace vigil::promql
