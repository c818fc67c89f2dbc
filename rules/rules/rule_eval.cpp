#include "vigil/rules/rule_eval.h"

#include "../promql/label_ops.h"

#include <algorithm>
#include <set>

#include "vigil/rules/promql_engine.h"
#include "vigil/rules/promql_parser.h"
#include "vigil/rules/template.h"

namespace vigil::promql {

namespace {

// A firing alert that resolved is kept this long so that receivers hear it resolved.
constexpr int64_t kResolvedRetentionMs = 15 * 60 * 1000;

Result<std::string> expand(const Result<Template>& t, const TemplateData& data) {
  if (!t) {
    return t.status();
  }
  return t->execute(data);
}

}  // namespace

const char* alertStateName(AlertState s) {
  switch (s) {
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
    default:
      return "inactive";
  }
}

GroupEvaluator::GroupEvaluator(const RuleGroup& group, Store& store,
                               std::map<std::string, std::string> external_labels)
    : group_(group), store_(store), external_labels_(std::move(external_labels)) {
  states_.resize(group_.rules.size());
  for (std::size_t i = 0; i < group_.rules.size(); ++i) {
    states_[i].source =
        store_.registerSource("rule/" + group_.file + "/" + group_.name + "/" + std::to_string(i));
    for (const auto& [name, text] : group_.rules[i].labels) {
      states_[i].label_templates.push_back(Template::parse(text));
    }
    for (const auto& [name, text] : group_.rules[i].annotations) {
      states_[i].annotation_templates.push_back(Template::parse(text));
    }
  }
  shareSubexpressions(true);
}

std::size_t GroupEvaluator::shareSubexpressions(bool on) {
  std::vector<const Expr*> exprs;
  for (const auto& rule : group_.rules) {
    if (rule.expr && on) {
      exprs.push_back(rule.expr.get());
    }
  }
  return cycle_cache_.shareSubexpressions(exprs);
}

Status GroupEvaluator::evaluate(int64_t t) {
  Status first;
  ++evaluation_;
  cycle_cache_.clear();
  for (std::size_t i = 0; i < group_.rules.size(); ++i) {
    const Rule& rule = group_.rules[i];
    if (!rule.expr) {
      continue;
    }
    Status st = rule.alerting ? evaluateAlerting(rule, states_[i], t)
                              : evaluateRecording(rule, states_[i], t);
    // What the rule wrote (samples or staleness markers) must be visible to the next rules.
    if (rule.alerting) {
      cycle_cache_.invalidate("ALERTS");
      cycle_cache_.invalidate("ALERTS_FOR_STATE");
    } else {
      cycle_cache_.invalidate(rule.name);
    }
    if (!st.isOk() && first.isOk()) {
      first = st;
    }
  }
  // Samples appended after this cycle must not be hidden from the next one.
  last_shared_hits_ = cycle_cache_.sharedHits();
  cycle_cache_.clear();
  return first;
}

void GroupEvaluator::shiftTimes(int64_t by_ms) {
  for (RuleState& state : states_) {
    for (auto& [key, a] : state.active) {
      for (int64_t* at : {&a.active_at, &a.fired_at, &a.resolved_at, &a.keep_firing_since}) {
        if (*at != 0) {
          *at += by_ms;
        }
      }
    }
  }
}

Result<Vector> GroupEvaluator::query(const Rule& rule, int64_t t) {
  Engine engine(store_);
  auto value = engine.instant(*rule.expr, t, &cycle_cache_);
  if (!value) {
    return value.status();
  }
  if (auto* s = std::get_if<Scalar>(&*value)) {
    return Vector{{{}, t, s->v}};  // a scalar rule yields one sample without labels
  }
  return std::get<Vector>(std::move(*value));
}

Status GroupEvaluator::evaluateRecording(const Rule& rule, RuleState& state, int64_t t) {
  auto result = query(rule, t);
  if (!result) {
    return result.status();
  }
  Vector& vec = *result;
  if (group_.limit > 0 && vec.size() > static_cast<std::size_t>(group_.limit)) {
    // Prometheus writes nothing then, so the rule's series go stale.
    store_.appendBatch(state.source, t, MetricBatch{});
    return invalidArgument("exceeded limit of " + std::to_string(group_.limit) + " with " +
                           std::to_string(vec.size()) + " series");
  }
  MetricBatch batch;
  auto& family = batch.family(rule.name, "", MetricType::kUntyped);
  std::set<std::string> seen;
  for (auto& s : vec) {
    LabelSet labels;
    for (const auto& l : s.metric) {
      if (l.name != kMetricNameLabel) {
        labels.push_back(l);
      }
    }
    for (const auto& [name, v] : rule.labels) {
      setLabel(labels, name, v);
    }
    if (!seen.insert(labelsKey(labels)).second) {
      return invalidArgument(
          "vector contains metrics with the same labelset after applying rule "
          "labels");
    }
    MetricBatch::add(family, std::move(labels), s.v);
  }
  store_.appendBatch(state.source, t, batch);
  return Status::ok();
}

Status GroupEvaluator::evaluateAlerting(const Rule& rule, RuleState& state, int64_t t) {
  auto queried = query(rule, t);
  if (!queried) {
    return queried.status();
  }
  const Vector& vec = *queried;
  const uint64_t evaluation = evaluation_;
  Status result;
  // A template's `query` runs at the rule's evaluation time, as Prometheus runs it.
  const TemplateQuery template_query =
      [&](const std::string& text) -> Result<std::vector<TemplateSample>> {
    auto parsed = parse(text);
    if (!parsed.expr) {
      return invalidArgument(parsed.error->toString());
    }
    auto value = Engine(store_).instant(*parsed.expr, t);
    if (!value) {
      return value.status();
    }
    std::vector<TemplateSample> out;
    if (auto* scalar = std::get_if<Scalar>(&*value)) {
      out.push_back({{}, scalar->v});
    } else if (auto* samples = std::get_if<Vector>(&*value)) {
      out.reserve(samples->size());
      for (const auto& sample : *samples) {
        out.push_back({sample.metric.get(), sample.v});
      }
    } else {
      return invalidArgument("rule result is not a vector or scalar");
    }
    return out;
  };
  for (const auto& s : vec) {
    LabelSet labels;
    for (const auto& l : s.metric) {
      if (l.name != kMetricNameLabel) {
        labels.push_back(l);
      }
    }
    // Templates see the series' own labels (its name too, as in Prometheus) and value.
    TemplateData data{&s.metric.get(), s.v, &external_labels_};
    data.query = &template_query;
    LabelSet alert_labels = labels;
    for (std::size_t i = 0; i < rule.labels.size(); ++i) {
      const auto& [name, text] = rule.labels[i];
      auto v = expand(state.label_templates[i], data);
      setLabel(alert_labels, name, v ? *v : text);
    }
    setLabel(alert_labels, "alertname", rule.name);
    std::vector<std::pair<std::string, std::string>> annotations;
    for (std::size_t i = 0; i < rule.annotations.size(); ++i) {
      auto v = expand(state.annotation_templates[i], data);
      annotations.emplace_back(rule.annotations[i].first,
                               v ? *v : "<error expanding template: " + v.status().message() + ">");
    }
    std::string k = labelsKey(alert_labels);
    auto it = state.active.find(k);
    if (it != state.active.end() && it->second.seen_in == evaluation) {
      result = invalidArgument(
          "vector contains metrics with the same labelset after applying "
          "alert labels");
      continue;
    }
    if (it != state.active.end() && it->second.state != AlertState::kInactive) {
      it->second.value = s.v;
      it->second.annotations = std::move(annotations);
      it->second.seen_in = evaluation;
      continue;
    }
    Alert a;
    a.labels = std::move(alert_labels);
    a.annotations = std::move(annotations);
    a.value = s.v;
    a.state = AlertState::kPending;
    a.active_at = t;
    a.seen_in = evaluation;
    state.active.insert_or_assign(std::move(k), std::move(a));
  }

  MetricBatch batch;
  std::size_t active_pending = 0;
  for (auto it = state.active.begin(); it != state.active.end();) {
    Alert& a = it->second;
    if (a.seen_in != evaluation) {
      bool keep_firing = false;
      if (a.state == AlertState::kFiring && rule.keep_firing_for_ms > 0) {
        if (a.keep_firing_since == 0) {
          a.keep_firing_since = t;
        }
        keep_firing = t - a.keep_firing_since < rule.keep_firing_for_ms;
      }
      if (a.state == AlertState::kPending ||
          (a.resolved_at != 0 && t - a.resolved_at > kResolvedRetentionMs)) {
        it = state.active.erase(it);
        continue;
      }
      if (a.state != AlertState::kInactive && !keep_firing) {
        a.state = AlertState::kInactive;
        a.resolved_at = t;
      }
      if (!keep_firing) {
        ++it;
        continue;
      }
    } else {
      a.keep_firing_since = 0;
    }
    ++active_pending;
    if (a.state == AlertState::kPending && t - a.active_at >= rule.for_ms) {
      a.state = AlertState::kFiring;
      a.fired_at = t;
    }
    LabelSet alerts_labels = a.labels;
    setLabel(alerts_labels, "alertstate", alertStateName(a.state));
    MetricBatch::add(batch.family("ALERTS", "", MetricType::kUntyped), alerts_labels, 1);
    MetricBatch::add(batch.family("ALERTS_FOR_STATE", "", MetricType::kUntyped), a.labels,
                     static_cast<double>(a.active_at / 1000));
    ++it;
  }
  if (group_.limit > 0 && active_pending > static_cast<std::size_t>(group_.limit)) {
    // Over the group's limit every alert of the rule is dropped, as Prometheus does.
    state.active.clear();
    store_.appendBatch(state.source, t, MetricBatch{});
    return invalidArgument("exceeded limit of " + std::to_string(group_.limit) + " with " +
                           std::to_string(active_pending) + " alerts");
  }
  store_.appendBatch(state.source, t, batch);
  return result;
}

std::vector<std::vector<Alert>> GroupEvaluator::exportAlerts() const {
  std::vector<std::vector<Alert>> out(states_.size());
  for (std::size_t i = 0; i < states_.size(); ++i) {
    for (const auto& [k, a] : states_[i].active) {
      out[i].push_back(a);
    }
  }
  return out;
}

void GroupEvaluator::importAlerts(
    const std::vector<std::pair<std::string, std::vector<Alert>>>& state) {
  for (std::size_t i = 0; i < state.size() && i < group_.rules.size(); ++i) {
    if (!group_.rules[i].alerting || group_.rules[i].name != state[i].first) {
      continue;
    }
    for (const auto& a : state[i].second) {
      Alert& restored = states_[i].active[labelsKey(a.labels)] = a;
      restored.seen_in = 0;  // counted by another evaluator
    }
  }
}

std::vector<Alert> GroupEvaluator::alerts(const std::string& name) const {
  std::vector<Alert> out;
  for (std::size_t i = 0; i < group_.rules.size(); ++i) {
    if (group_.rules[i].alerting && group_.rules[i].name == name) {
      for (const auto& [k, a] : states_[i].active) {
        out.push_back(a);
      }
    }
  }
  return out;
}

}  // namespace vigil::promql
