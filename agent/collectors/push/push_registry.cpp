#include "push_registry.h"

#include <algorithm>

#include "../../http/http_server.h"
#include "vigil/text_parser.h"

namespace vigil::collectors {

PushRegistry& PushRegistry::instance() {
  static PushRegistry registry;
  return registry;
}

Result<LabelSet> PushRegistry::groupingKey(std::string_view path) {
  std::vector<std::string> parts;
  std::size_t pos = 0;
  while (pos <= path.size()) {
    const std::size_t slash = std::min(path.find('/', pos), path.size());
    parts.push_back(percentDecode(path.substr(pos, slash - pos)));
    pos = slash + 1;
  }
  if (parts.size() < 2 || parts[0] != "job" || parts[1].empty()) {
    return invalidArgument("expected /metrics/job/JOB[/LABEL/VALUE...]");
  }
  if (parts.size() % 2 != 0) {
    return invalidArgument("the grouping key has a label without a value: " + parts.back());
  }
  LabelSet key;
  for (std::size_t i = 0; i < parts.size(); i += 2) {
    if (!isValidLabelName(parts[i]) || parts[i].starts_with("__")) {
      return invalidArgument("invalid label name in the grouping key: " + parts[i]);
    }
    if (std::any_of(key.begin(), key.end(), [&](const Label& l) { return l.name == parts[i]; })) {
      return invalidArgument("label " + parts[i] + " appears twice in the grouping key");
    }
    key.push_back({parts[i], parts[i + 1]});
  }
  std::sort(key.begin(), key.end());
  return key;
}

Status PushRegistry::push(const LabelSet& group, std::string_view body, bool replace_all,
                          int64_t now_ms) {
  TextParseLimits limits;
  limits.max_samples = kMaxSamplesPerGroup;
  auto parsed = parseTextFormat(body, limits);
  if (!parsed) {
    return parsed.status();
  }
  if (parsed->timestamped > 0) {
    return invalidArgument("pushed metrics must not carry timestamps");
  }
  std::lock_guard lock(mu_);
  if (groups_.find(group) == groups_.end() && groups_.size() >= kMaxGroups) {
    return Status(StatusCode::kResourceExhausted,
                  "too many groups (" + std::to_string(kMaxGroups) + "); delete some first");
  }
  Group& g = groups_[group];
  if (replace_all) {
    g.families.clear();
  }
  for (const auto& f : parsed->batch.families()) {
    MetricFamily family = f;
    // The grouping key's labels win over the pushed ones, as in the Pushgateway.
    for (auto& sample : family.samples) {
      for (const auto& k : group) {
        std::erase_if(sample.labels, [&](const Label& l) { return l.name == k.name; });
        sample.labels.push_back(k);
      }
      std::sort(sample.labels.begin(), sample.labels.end());
    }
    g.families[f.name] = std::move(family);
  }
  g.pushed_at = now_ms;
  return Status::ok();
}

Status PushRegistry::remove(const LabelSet& group) {
  std::lock_guard lock(mu_);
  if (groups_.erase(group) == 0) {
    return Status(StatusCode::kNotFound, "no such group");
  }
  return Status::ok();
}

void PushRegistry::snapshot(MetricBatch& out) const {
  std::lock_guard lock(mu_);
  if (groups_.empty()) {
    return;
  }
  auto& pushed = out.family("push_time_seconds", "Last Unix time when changing this group.",
                            MetricType::kGauge);
  for (const auto& [key, g] : groups_) {
    for (const auto& [name, f] : g.families) {
      MetricFamily& dest = out.family(name, f.help, f.type);
      dest.samples.insert(dest.samples.end(), f.samples.begin(), f.samples.end());
    }
    MetricBatch::add(pushed, key, static_cast<double>(g.pushed_at) / 1000.0);
  }
}

}  // namespace vigil::collectors
