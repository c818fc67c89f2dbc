#pragma once
// Go's text/template as Prometheus and Alertmanager use it. Alert label and annotation
// templates: {{ $labels.name }}, {{ $value }}, {{ $externalLabels.name }}, pipelines and
// parentheses, variables ($x := ..., $x = ...), if/else if/else, with and range (over query
// results and label maps), named templates (define, template, block), Go's builtins (print,
// println, html, js, urlquery, len, index, comparisons), and Prometheus's functions: query,
// first, label, value, strvalue, sortByLabel, args, the humanize family, printf, match,
// reReplaceAll, toUpper, toLower, title, stripPort, stripDomain, safeHtml, graphLink,
// tableLink, parseDuration, toTime (pathPrefix and externalURL: empty). Notification
// templates run over Alertmanager's data
// instead (NotificationTemplateData): .Alerts and each alert's fields, the label maps with
// their methods (SortedPairs, Names, Values, Remove), times with Format and Unix, and
// Alertmanager's join and stringSlice.

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

/// One alert of a notification, as Alertmanager's templates see it (its template.Alert).
struct TemplateAlert {
  std::string status;    // "firing" or "resolved"
  LabelSet labels;       // sorted by name
  LabelSet annotations;  // sorted by name
  int64_t starts_at_ms = 0;
  int64_t ends_at_ms = 0;  // 0: Go's zero time (a firing alert)
  std::string generator_url;
  std::string fingerprint;  // 16 hex digits
};

/// A notification as Alertmanager's templates see it (its template.Data): .Receiver .Status
/// .Alerts .GroupLabels .CommonLabels .CommonAnnotations .ExternalURL, and vigil's .GroupKey
/// .NumFiring .NumResolved. Times print in UTC.
struct NotificationTemplateData {
  std::string receiver;  // as Alertmanager gives it: through regexp.QuoteMeta
  std::string status;    // "firing" or "resolved"
  std::string group_key;
  std::string external_url;
  LabelSet group_labels;  // each sorted by name
  LabelSet common_labels;
  LabelSet common_annotations;
  std::vector<TemplateAlert> alerts;
};

class Template;

struct TemplateData {
  const LabelSet* labels = nullptr;
  double value = 0;
  const std::map<std::string, std::string>* external_labels = nullptr;
  /// When set, the template runs over this notification (its top-level dot) instead of an
  /// alert's labels and value, and $labels, $value and the like are not defined.
  const NotificationTemplateData* notification = nullptr;
  /// For `query`; without it, a template that queries fails with an error saying so.
  const TemplateQuery* query = nullptr;
  /// Named templates ({{define "name"}}) that {{template "name"}} may run besides the
  /// template's own: Alertmanager's template files.
  const Template* library = nullptr;
};

class Template {
 public:
  /// Parses `text`; kInvalidArgument says what is wrong and where. {{define "name"}} ...
  /// {{end}} at the top level names a template of its own, which {{template "name" pipeline}}
  /// runs (and {{block}} defines and runs at once).
  static Result<Template> parse(std::string_view text);
  Result<std::string> execute(const TemplateData& data) const;

  /// Adds `other`'s named templates to this one's; a name defined in both takes `other`'s
  /// (as in Go, the later definition wins).
  void addDefinitions(const Template& other);
  /// The names of the templates it defines, sorted.
  std::vector<std::string> definedNames() const;

  struct Node;
  using Definitions = std::map<std::string, std::shared_ptr<const Node>>;
  /// The body of the template named `name`, or null.
  const Node* definition(const std::string& name) const;

 private:
  std::shared_ptr<const Node> root_;
  std::shared_ptr<const Definitions> defines_;
};

}  // namespace vigil::promql
