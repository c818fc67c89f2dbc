#include "scrape_collector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "http_get.h"
#include "vigil/store.h"
#include "vigil/text_parser.h"

namespace vigil::collectors {

namespace {

// Adds the target's labels to a scraped sample's, as Prometheus does: with honor_labels the
// sample keeps its own values on a clash; without, the sample's are renamed exported_<name>.
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
// moves to a family of that name (untyped: the declared type was the old name's).
void relabelSamples(const std::vector<RelabelConfig>& configs, MetricBatch& batch) {
  MetricBatch result;
  for (MetricFamily& f : batch.mutableFamilies()) {
    for (MetricSample& s : f.samples) {
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
      if (new_name == name) {
        result.family(f.name, f.help, f.type)
            .samples.push_back({std::move(full), s.value, s.suffix});
      } else {
        result.family(new_name, "", MetricType::kUntyped)
            .samples.push_back({std::move(full), s.value, ""});
      }
    }
  }
  batch = std::move(result);
}

// A target as relabel_configs leave it: where to scrape and the labels its series get; null
// when the relabeling drops it.
struct ResolvedTarget {
  std::string address;
  std::string url;
  LabelSet labels;  // without the __ labels; instance defaults to the address
};

std::optional<ResolvedTarget> resolveTarget(const ScrapeConfig& c, const ScrapeConfig::Target& t) {
  LabelSet labels = {{"__address__", t.address},
                     {"__metrics_path__", c.metrics_path},
                     {"__scheme__", c.scheme},
                     {"job", c.job_name}};
  for (const auto& l : t.labels) {
    labels.push_back(l);
  }
  std::sort(labels.begin(), labels.end());
  if (!relabel(c.relabel_configs, labels)) {
    return std::nullopt;
  }
  auto get = [&](std::string_view name) {
    auto it =
        std::find_if(labels.begin(), labels.end(), [&](const Label& l) { return l.name == name; });
    return it == labels.end() ? std::string() : it->value;
  };
  ResolvedTarget r;
  r.address = get("__address__");
  if (r.address.empty()) {
    return std::nullopt;  // Prometheus drops a target relabeled to no address
  }
  r.url = get("__scheme__") + "://" + r.address + get("__metrics_path__");
  const bool has_instance = !get("instance").empty();
  for (Label& l : labels) {
    if (!l.name.starts_with("__")) {
      r.labels.push_back(std::move(l));
    }
  }
  if (!has_instance) {
    r.labels.push_back({"instance", r.address});
    std::sort(r.labels.begin(), r.labels.end());
  }
  return r;
}

class ScrapeCollector : public Collector {
 public:
  explicit ScrapeCollector(std::vector<ScrapeConfig> configs) : configs_(std::move(configs)) {}

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    if (configs_.empty()) {
      return Status::ok();
    }
    // Every target at once, each into its own batch: a slow or broken target costs the others
    // nothing.
    struct Job {
      const ScrapeConfig* config;
      std::string address;
      std::string url;
      LabelSet labels;
      MetricBatch batch;
      Status status;
      double seconds = 0;
      std::size_t samples = 0;
      std::size_t kept = 0;  // after metric_relabel_configs
      std::size_t new_series = 0;
      std::vector<uint64_t>* seen;  // series keys of the previous scrape, in its order
    };
    std::vector<Job> jobs;
    for (const auto& c : configs_) {
      for (const auto& t : c.targets) {
        auto resolved = resolveTarget(c, t);
        if (!resolved) {
          continue;
        }
        jobs.push_back({&c,
                        resolved->address,
                        std::move(resolved->url),
                        std::move(resolved->labels),
                        {},
                        Status::ok(),
                        0,
                        0,
                        0,
                        0,
                        &seen_[c.job_name + "\xff" + resolved->address]});
      }
    }
    std::vector<std::thread> threads;
    for (auto& j : jobs) {
      threads.emplace_back([&j, deadline = ctx.deadline] {
        const auto start = std::chrono::steady_clock::now();
        j.status = scrapeOne(*j.config, j.url, j.labels, deadline, j.batch, j.samples, j.new_series,
                             *j.seen);
        j.kept = j.batch.seriesCount();
        j.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    auto& up = out.family("up", "", MetricType::kGauge);
    auto& duration = out.family("scrape_duration_seconds", "", MetricType::kGauge);
    auto& scraped = out.family("scrape_samples_scraped", "", MetricType::kGauge);
    auto& added = out.family("scrape_series_added", "", MetricType::kGauge);
    auto& post_relabel =
        out.family("scrape_samples_post_metric_relabeling", "", MetricType::kGauge);
    for (auto& j : jobs) {
      if (!j.status.isOk()) {
        spdlog::warn("scrape failed job={} target={} error=\"{}\"", j.config->job_name, j.address,
                     j.status.message());
      }
      for (MetricFamily& f : j.batch.mutableFamilies()) {
        MetricFamily& dest = out.family(f.name, f.help, f.type);
        if (dest.samples.empty()) {
          dest.samples = std::move(f.samples);
        } else {
          dest.samples.insert(dest.samples.end(), std::make_move_iterator(f.samples.begin()),
                              std::make_move_iterator(f.samples.end()));
        }
      }
      MetricBatch::add(up, j.labels, j.status.isOk() ? 1 : 0);
      MetricBatch::add(duration, j.labels, j.seconds);
      MetricBatch::add(scraped, j.labels, static_cast<double>(j.samples));
      MetricBatch::add(added, j.labels, static_cast<double>(j.new_series));
      MetricBatch::add(post_relabel, j.labels, static_cast<double>(j.kept));
    }
    return Status::ok();
  }

 private:
  static Status scrapeOne(const ScrapeConfig& c, const std::string& url,
                          const LabelSet& target_labels,
                          std::chrono::steady_clock::time_point deadline, MetricBatch& out,
                          std::size_t& samples, std::size_t& new_series,
                          std::vector<uint64_t>& previous) {
    HttpGetOptions options;
    options.ca_file = c.ca_file;
    options.insecure_skip_verify = c.insecure_skip_verify;
    options.max_bytes = c.body_size_limit + 64 * 1024;  // the body, and room for headers
    options.accept = "text/plain;version=0.0.4;q=1,*/*;q=0.1";
    options.user_agent = "vigil-scrape";
    const auto got = httpGet(url, options, deadline);
    if (!got.status.isOk()) {
      return got.status;
    }
    if (got.code != 200) {
      return Status(StatusCode::kUnavailable,
                    "server returned HTTP status " + std::to_string(got.code));
    }
    if (got.body.size() > c.body_size_limit) {
      return invalidArgument("body larger than " + std::to_string(c.body_size_limit) + " bytes");
    }
    TextParseLimits limits;
    limits.label_headroom = target_labels.size();
    limits.series_keys = true;
    if (c.sample_limit > 0) {
      limits.max_samples = c.sample_limit;
    }
    auto parsed = parseTextFormat(got.body, limits);
    if (!parsed) {
      return parsed.status();  // nothing of a malformed body is used
    }
    samples = parsed->samples;
    // Series new since the previous scrape of this target. Targets nearly always list the same
    // series in the same order, which a straight comparison confirms; otherwise the sorted
    // keys are merged (cheaper than a hash set at tens of thousands).
    std::vector<uint64_t> current = std::move(parsed->series_keys);
    out = std::move(parsed->batch);
    for (MetricFamily& f : out.mutableFamilies()) {
      for (MetricSample& s : f.samples) {
        addTargetLabels(s.labels, target_labels, c.honor_labels);
      }
    }
    if (current != previous) {
      std::vector<uint64_t> now_sorted = current;
      std::vector<uint64_t> before_sorted = previous;
      std::sort(now_sorted.begin(), now_sorted.end());
      std::sort(before_sorted.begin(), before_sorted.end());
      auto prev = before_sorted.begin();
      for (uint64_t h : now_sorted) {
        while (prev != before_sorted.end() && *prev < h) {
          ++prev;
        }
        new_series += (prev == before_sorted.end() || *prev != h) ? 1 : 0;
      }
    }
    previous = std::move(current);
    if (!c.metric_relabel_configs.empty()) {
      relabelSamples(c.metric_relabel_configs, out);
    }
    return Status::ok();
  }

  std::vector<ScrapeConfig> configs_;
  std::map<std::string, std::vector<uint64_t>> seen_;  // by job and target
};

}  // namespace

Result<CollectorPtr> makeScrapeCollector(const CollectorSettings& settings, const HostPaths&) {
  return CollectorPtr(std::make_unique<ScrapeCollector>(settings.scrapes));
}

}  // namespace vigil::collectors
