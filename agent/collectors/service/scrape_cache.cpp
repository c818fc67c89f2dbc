#include "scrape_cache.h"

#include <algorithm>
#include <functional>

#include "vigil/relabel.h"
#include "vigil/store.h"

namespace vigil::collectors {

namespace {

constexpr uint64_t kDropped = ~uint64_t{0};

uint64_t pack(std::size_t family, std::size_t sample) {
  return (static_cast<uint64_t>(family) << 32) | static_cast<uint32_t>(sample);
}

// Adds the target's labels (job, instance, static labels) to a scraped sample's sorted labels,
// as Prometheus does: a clash renames the scraped label to exported_NAME unless honor_labels.
void addTargetLabels(LabelSet& labels, const LabelSet& target, bool honor_labels) {
  bool renamed = false;
  for (const auto& t : target) {
    auto it = std::lower_bound(labels.begin(), labels.end(), t.name,
                               [](const Label& l, const std::string& n) { return l.name < n; });
    if (it == labels.end() || it->name != t.name) {
      labels.insert(it, t);
    } else if (!honor_labels) {
      it->name = "exported_" + it->name;
      labels.push_back(t);
      renamed = true;
    }
  }
  if (renamed) {
    std::sort(labels.begin(), labels.end());
  }
}

// metric_relabel_configs over every sample of a scrape; a sample whose name they change
// moves to a family of that name (untyped: the declared type was the old name's). The lines'
// positions move along; a dropped sample's line gets kDropped.
void relabelSamples(const std::vector<RelabelConfig>& configs, MetricBatch& batch,
                    std::vector<uint64_t>& positions) {
  MetricBatch result;
  std::vector<std::vector<uint64_t>> moved(batch.families().size());
  std::size_t fi = 0;
  for (MetricFamily& f : batch.mutableFamilies()) {
    moved[fi].assign(f.samples.size(), kDropped);
    for (std::size_t si = 0; si < f.samples.size(); ++si) {
      MetricSample& s = f.samples[si];
      const std::string name = f.name + s.suffix;
      LabelSet full = std::move(s.labels);
      full.insert(std::lower_bound(full.begin(), full.end(), std::string(kMetricNameLabel),
                                   [](const Label& l, const std::string& n) { return l.name < n; }),
                  Label{std::string(kMetricNameLabel), name});
      if (!relabel(configs, full)) {
        continue;
      }
      auto it = std::find_if(full.begin(), full.end(),
                             [](const Label& l) { return l.name == kMetricNameLabel; });
      if (it == full.end() || !isValidMetricName(it->value)) {
        continue;  // a sample needs a name to be stored
      }
      const std::string new_name = std::move(it->value);
      full.erase(it);
      const bool same_name = new_name == name;
      const std::size_t to = same_name ? result.familyIndex(f.name, f.help, f.type)
                                       : result.familyIndex(new_name, "", MetricType::kUntyped);
      auto& samples = result.mutableFamilies()[to].samples;
      samples.push_back({std::move(full), s.value, same_name ? s.suffix : std::string()});
      moved[fi][si] = pack(to, samples.size() - 1);
    }
    ++fi;
  }
  for (uint64_t& p : positions) {
    p = moved[p >> 32][static_cast<uint32_t>(p)];
  }
  batch = std::move(result);
}

// How many of `now` (sorted) are not in `before` (sorted).
std::size_t countNew(const std::vector<uint64_t>& now, const std::vector<uint64_t>& before) {
  std::size_t fresh = 0;
  auto prev = before.begin();
  for (uint64_t h : now) {
    while (prev != before.end() && *prev < h) {
      ++prev;
    }
    fresh += (prev == before.end() || *prev != h) ? 1 : 0;
  }
  return fresh;
}

}  // namespace

Result<ScrapeCache::Scraped> ScrapeCache::update(std::string_view body, const ScrapeConfig& config,
                                                 const LabelSet& target_labels) {
  TextParseLimits limits;
  limits.label_headroom = target_labels.size();
  if (config.sample_limit > 0) {
    limits.max_samples = config.sample_limit;
  }
  std::size_t timestamped = 0;
  if (layout_ != 0 && target_labels == target_labels_ &&
      readValues(body, text_layout_, limits, values_, timestamped)) {
    auto families = samples_.mutableFamilies();
    for (std::size_t line = 0; line < values_.size(); ++line) {
      const uint64_t p = positions_[line];
      if (p != kDropped) {
        families[p >> 32].samples[static_cast<uint32_t>(p)].value = values_[line];
      }
    }
    return Scraped{values_.size(), 0};
  }

  limits.layout = true;
  auto parsed = parseTextFormat(body, limits);
  if (!parsed) {
    return parsed.status();  // nothing of a malformed body is used
  }
  std::vector<uint64_t> known;
  known.reserve(parsed->layout.lines());
  for (std::size_t line = 0; line < parsed->layout.lines(); ++line) {
    known.push_back(std::hash<std::string_view>{}(parsed->layout.series(line)));
  }
  std::sort(known.begin(), known.end());
  const Scraped scraped{parsed->samples, countNew(known, known_)};

  std::vector<uint64_t> positions;
  positions.reserve(parsed->positions.size());
  for (const SamplePosition& p : parsed->positions) {
    positions.push_back(pack(p.family, p.sample));
  }
  MetricBatch batch = std::move(parsed->batch);
  for (MetricFamily& f : batch.mutableFamilies()) {
    for (MetricSample& s : f.samples) {
      addTargetLabels(s.labels, target_labels, config.honor_labels);
    }
  }
  if (!config.metric_relabel_configs.empty()) {
    relabelSamples(config.metric_relabel_configs, batch, positions);
  }
  text_layout_ = std::move(parsed->layout);
  target_labels_ = target_labels;
  samples_ = std::move(batch);
  positions_ = std::move(positions);
  known_ = std::move(known);
  layout_ = MetricBatch::newLayout();
  return scraped;
}

}  // namespace vigil::collectors
