#include "vigil/rules/rule_file.h"

#include <fstream>
#include <set>
#include <sstream>

#include "vigil/duration.h"
#include "vigil/metric.h"
#include "vigil/rules/promql_parser.h"
#include "vigil/rules/template.h"
#include "vigil/yaml_reader.h"

namespace vigil::promql {

std::size_t RuleFileResult::ruleCount() const {
  std::size_t n = 0;
  for (const auto& g : groups) {
    n += g.rules.size();
  }
  return n;
}

namespace {

class Reader : public YamlReader {
 public:
  using YamlReader::YamlReader;

  /// A Prometheus duration in milliseconds.
  std::optional<int64_t> durationMs(const YAML::Node& node, const std::string& field) {
    auto d = duration(node, field);
    if (!d) {
      return std::nullopt;
    }
    return d->count();
  }

  void readRule(const YAML::Node& node, const std::string& field, RuleGroup& group) {
    if (!checkMap(node, field,
                  {"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"})) {
      return;
    }
    Rule rule;
    const bool has_record = static_cast<bool>(node["record"]);
    const bool has_alert = static_cast<bool>(node["alert"]);
    if (has_record == has_alert) {
      error(node, field, "exactly one of 'record' and 'alert' must be set");
      return;
    }
    rule.alerting = has_alert;
    const YAML::Node name = has_alert ? node["alert"] : node["record"];
    rule.name = name.IsScalar() ? name.Scalar() : "";
    if (rule.name.empty()) {
      error(name, field + (has_alert ? ".alert" : ".record"), "must not be empty");
    } else if (!has_alert && !isValidMetricName(rule.name)) {
      error(name, field + ".record", "invalid recording rule name \"" + rule.name + "\"");
    }
    const YAML::Node expr = node["expr"];
    if (!expr || !expr.IsScalar() || expr.Scalar().empty()) {
      error(expr ? expr : node, field + ".expr", "field 'expr' must be set in rule");
    } else {
      rule.expr_text = expr.Scalar();
      auto parsed = parse(rule.expr_text);
      if (parsed.error) {
        // The expression's own position, moved to where it sits in the file (for a plain
        // scalar on the same line; block scalars start on the next line).
        const bool block = expr.Tag() == "!" || rule.expr_text.find('\n') != std::string::npos;
        RuleError e;
        e.file = file();
        e.line = expr.Mark().line + 1 + (parsed.error->line - 1) + (block ? 1 : 0);
        e.column = parsed.error->line == 1 && !block ? expr.Mark().column + parsed.error->column
                                                     : parsed.error->column;
        e.message = field + ".expr: " + parsed.error->message;
        errors().push_back(std::move(e));
      } else {
        const ValueType t = parsed.expr->type();
        if (t != ValueType::kVector && t != ValueType::kScalar) {
          error(expr, field + ".expr",
                std::string("invalid expression type \"") + valueTypeName(t) +
                    "\" for range query, must be Scalar or instant Vector");
        }
        rule.expr = std::shared_ptr<const Expr>(std::move(parsed.expr));
      }
    }
    if (auto n = node["for"]) {
      if (!has_alert) {
        error(n, field + ".for", "invalid field 'for' in recording rule");
      } else if (auto d = durationMs(n, field + ".for")) {
        rule.for_ms = *d;
      }
    }
    if (auto n = node["keep_firing_for"]) {
      if (!has_alert) {
        error(n, field + ".keep_firing_for", "invalid field 'keep_firing_for' in recording rule");
      } else if (auto d = durationMs(n, field + ".keep_firing_for")) {
        rule.keep_firing_for_ms = *d;
      }
    }
    if (auto n = node["labels"]) {
      if (!n.IsMap()) {
        error(n, field + ".labels", "expected a mapping");
      } else {
        for (const auto& kv : n) {
          const std::string key = kv.first.Scalar();
          if (!isValidLabelName(key) || key == "__name__") {
            error(kv.first, field + ".labels", "invalid label name: " + key);
            continue;
          }
          const std::string value = kv.second.IsScalar() ? kv.second.Scalar() : "";
          if (auto st = Template::parse(value); !st) {
            error(kv.second, field + ".labels." + key, st.status().message());
          }
          rule.labels.emplace_back(key, value);
        }
      }
    }
    if (auto n = node["annotations"]) {
      if (!has_alert) {
        error(n, field + ".annotations", "invalid field 'annotations' in recording rule");
      } else if (!n.IsMap()) {
        error(n, field + ".annotations", "expected a mapping");
      } else {
        for (const auto& kv : n) {
          const std::string key = kv.first.Scalar();
          if (!isValidLabelName(key)) {
            error(kv.first, field + ".annotations", "invalid annotation name: " + key);
            continue;
          }
          const std::string value = kv.second.IsScalar() ? kv.second.Scalar() : "";
          if (auto st = Template::parse(value); !st) {
            error(kv.second, field + ".annotations." + key, st.status().message());
          }
          rule.annotations.emplace_back(key, value);
        }
      }
    }
    group.rules.push_back(std::move(rule));
  }
};

}  // namespace

RuleFileResult parseRuleFile(const std::string& text, const std::string& file) {
  RuleFileResult result;
  Reader reader(file, result.errors);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    result.errors.push_back({file, e.mark.line + 1, e.mark.column + 1, "invalid YAML: " + e.msg});
    return result;
  }
  try {
    if (root.IsNull()) {
      return result;
    }
    if (!reader.checkMap(root, "", {"groups"})) {
      return result;
    }
    const YAML::Node groups = root["groups"];
    if (!groups || !groups.IsSequence()) {
      if (groups) {
        reader.error(groups, "groups", "expected a list of groups");
      }
      return result;
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < groups.size(); ++i) {
      const YAML::Node g = groups[i];
      const std::string field = "groups[" + std::to_string(i) + "]";
      if (!reader.checkMap(g, field, {"name", "interval", "limit", "rules"})) {
        continue;
      }
      RuleGroup group;
      group.file = file;
      group.name = g["name"] && g["name"].IsScalar() ? g["name"].Scalar() : "";
      if (group.name.empty()) {
        reader.error(g, field + ".name", "Groupname must not be empty");
      } else if (!names.insert(group.name).second) {
        reader.error(g["name"], field + ".name",
                     "groupname: \"" + group.name + "\" is repeated in the same file");
      }
      if (auto n = g["interval"]) {
        if (auto d = reader.durationMs(n, field + ".interval")) {
          group.interval_ms = *d;
        }
      }
      if (auto n = g["limit"]) {
        try {
          group.limit = n.as<int>();
          if (group.limit < 0) {
            reader.error(n, field + ".limit", "must not be negative");
          }
        } catch (const YAML::Exception&) {
          reader.error(n, field + ".limit", "expected a number");
        }
      }
      const YAML::Node rules = g["rules"];
      if (rules && rules.IsSequence()) {
        for (std::size_t j = 0; j < rules.size(); ++j) {
          reader.readRule(rules[j], field + ".rules[" + std::to_string(j) + "]", group);
        }
      } else if (rules && !rules.IsNull()) {
        reader.error(rules, field + ".rules", "expected a list of rules");
      }
      result.groups.push_back(std::move(group));
    }
  } catch (const YAML::Exception& e) {
    result.errors.push_back(
        {file, e.mark.line + 1, e.mark.column + 1, "invalid rule file: " + e.msg});
  }
  return result;
}

RuleFileResult loadRuleFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    RuleFileResult r;
    r.errors.push_back({path, 0, 0, "cannot read file"});
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return parseRuleFile(ss.str(), path);
}

}  // namespace vigil::promql
