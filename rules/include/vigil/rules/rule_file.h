#pragma once
// Prometheus rule files: groups of recording and alerting rules, validated like
// `promtool check rules` but reporting every problem with its file, line and column.

#include <memory>
#include <string>
#include <vector>

#include "vigil/rules/promql_ast.h"
#include "vigil/status.h"

namespace vigil::promql {

using RuleError = SourceError;

struct Rule {
  bool alerting = false;
  std::string name;  // the recorded metric, or the alert's name
  std::string expr_text;
  std::shared_ptr<const Expr> expr;
  int64_t for_ms = 0;
  int64_t keep_firing_for_ms = 0;
  std::vector<std::pair<std::string, std::string>> labels;       // values may be templates
  std::vector<std::pair<std::string, std::string>> annotations;  // templates
};

struct RuleGroup {
  std::string name;
  std::string file;
  int64_t interval_ms = 0;  // 0: the global evaluation interval
  int limit = 0;
  std::vector<Rule> rules;
};

struct RuleFileResult {
  std::vector<RuleGroup> groups;
  std::vector<RuleError> errors;
  std::size_t ruleCount() const;
};

/// Loads and validates one rule file (YAML text from `text`, named `file` in errors).
RuleFileResult parseRuleFile(const std::string& text, const std::string& file);
RuleFileResult loadRuleFile(const std::string& path);

}  // namespace vigil::promql
