#pragma once
// Evaluating rule groups with Prometheus 2.42's semantics: recording rules write their results
// into the store; alerting rules go inactive → pending → firing (→ resolved), honouring `for`
// and `keep_firing_for`, and write ALERTS and ALERTS_FOR_STATE.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vigil/rules/promql_engine.h"
#include "vigil/rules/rule_file.h"
#include "vigil/rules/template.h"
#include "vigil/store.h"

namespace vigil::promql {

enum class AlertState { kInactive, kPending, kFiring };
const char* alertStateName(AlertState s);

struct Alert {
  LabelSet labels;  // with alertname
  std::vector<std::pair<std::string, std::string>> annotations;
  double value = 0;
  AlertState state = AlertState::kInactive;
  int64_t active_at = 0;
  int64_t fired_at = 0;
  int64_t resolved_at = 0;
  int64_t keep_firing_since = 0;  // 0: not being kept
  uint64_t seen_in = 0;           // the group's evaluation that last returned it
};

class GroupEvaluator {
 public:
  GroupEvaluator(const RuleGroup& group, Store& store,
                 std::map<std::string, std::string> external_labels = {});

  /// Evaluates every rule of the group, in order, at `t_ms`. Returns the first error (the
  /// other rules are still evaluated).
  Status evaluate(int64_t t_ms);

  /// The alerts of the alerting rule called `name`, in every state but inactive-and-gone.
  std::vector<Alert> alerts(const std::string& name) const;

  /// Alert state of every alerting rule, by rule index, for persisting across restarts.
  std::vector<std::vector<Alert>> exportAlerts() const;
  /// Restores what exportAlerts() gave, for rules with the same index and name (a changed rule
  /// file simply starts those rules afresh).
  void importAlerts(const std::vector<std::pair<std::string, std::vector<Alert>>>& state);
  const RuleGroup& group() const { return group_; }
  /// Whether a subexpression several rules have in common is evaluated once per cycle (the
  /// default) or by each rule (to measure what sharing saves). Returns how many are shared.
  std::size_t shareSubexpressions(bool on);
  /// How many times in the last cycle a rule used a subexpression another one had evaluated.
  std::size_t sharedSubexpressionHits() const { return last_shared_hits_; }
  /// Moves every alert's times by `by_ms`: the wall clock stepped by that much while no time
  /// passed, and `for` and `keep_firing_for` must keep their progress rather than lose the
  /// step or gain it.
  void shiftTimes(int64_t by_ms);

 private:
  struct RuleState {
    std::map<std::string, Alert> active;  // by label set
    Store::SourceId source = 0;
    // The rule's label and annotation templates, parsed once.
    std::vector<Result<Template>> label_templates;
    std::vector<Result<Template>> annotation_templates;
  };

  Result<Vector> query(const Rule& rule, int64_t t);
  Status evaluateRecording(const Rule& rule, RuleState& state, int64_t t);
  Status evaluateAlerting(const Rule& rule, RuleState& state, int64_t t);

  RuleGroup group_;
  Store& store_;
  std::map<std::string, std::string> external_labels_;
  std::vector<RuleState> states_;
  SelectCache cycle_cache_;  // the store reads of the cycle being evaluated
  std::size_t last_shared_hits_ = 0;
  uint64_t evaluation_ = 0;  // counts evaluate() calls
};

}  // namespace vigil::promql
