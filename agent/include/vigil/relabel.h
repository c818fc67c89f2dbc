#pragma once
// Prometheus relabeling (relabel_configs, metric_relabel_configs, write_relabel_configs) with
// Prometheus 2.42's actions and semantics: regexes are RE2 and fully anchored, replacements
// are Go templates ($1, ${1}, ${name}, $$), and a label set ending up without __name__ or
// dropped by keep/drop is not sent.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/metric.h"
#include "vigil/status.h"

namespace re2 {
class RE2;
}

namespace vigil {

enum class RelabelAction {
  kReplace,
  kKeep,
  kDrop,
  kKeepEqual,
  kDropEqual,
  kHashMod,
  kLabelMap,
  kLabelDrop,
  kLabelKeep,
  kLowercase,
  kUppercase,
};

/// Parses an action name as Prometheus does (case-insensitive).
Result<RelabelAction> parseRelabelAction(std::string_view name);

struct RelabelConfig {
  std::vector<std::string> source_labels;
  std::string separator = ";";
  std::string regex = "(.*)";
  uint64_t modulus = 0;
  std::string target_label;
  std::string replacement = "$1";
  RelabelAction action = RelabelAction::kReplace;

  /// A compiled rule built in code (configuration files go through the config parser).
  static Result<RelabelConfig> make(RelabelAction action, std::vector<std::string> source_labels,
                                    std::string regex, std::string target_label = "",
                                    std::string replacement = "$1");

  /// Compiles the regex and checks the combination of fields as Prometheus's config loader
  /// does; the message names the offending field.
  Status compile();
  std::shared_ptr<const re2::RE2> compiled;  // set by compile()
};

/// Applies `configs` in order to `labels` (sorted by name, with __name__). Returns false when
/// the series is dropped. `labels` stays sorted.
bool relabel(const std::vector<RelabelConfig>& configs, LabelSet& labels);

}  // namespace vigil
