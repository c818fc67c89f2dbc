#pragma once
// Alert label and annotation templates: the part of Go's text/template that Prometheus rules
// use — {{ $labels.name }}, {{ $value }}, {{ $externalLabels.name }}, pipelines and
// parentheses, variables ($x := ..., $x = ...), if/else if/else, with and range (over query
// results and label maps), comparison functions, and Prometheus's functions: query, first,
// label, value, sortByLabel, the humanize family, printf, match, reReplaceAll, toUpper,
// toLower, title, stripPort, safeHtml.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/store.h"

namespace vigil::promql {

/// One sample of a `query` result.
struct TemplateSample {
  LabelSet labels;
  double value = 0;
};
/// Runs an instant query for a template's `query` function, at the time the template expands.
using TemplateQuery = std::function<Result<std::vector<TemplateSample>>(const std::string& expr)>;

struct TemplateData {
  const LabelSet* labels = nullptr;
  double value = 0;
  const std::map<std::string, std::string>* external_labels = nullptr;
  /// Other fields (`.Receiver`, `.CommonLabels.severity`, ...), for templates over something
  /// else than one alert: given the word with its leading dot, the value, or nullopt for a
  /// field that does not exist (an error naming the field).
  const std::function<std::optional<std::string>(std::string_view)>* fields = nullptr;
  /// For `query`; without it, a template that queries fails with an error saying so.
  const TemplateQuery* query = nullptr;
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

}  // namespace vigil::promql
