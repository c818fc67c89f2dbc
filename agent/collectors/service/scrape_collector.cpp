#include "scrape_collector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <optional>
#include <thread>
#include <vector>

#include "http_get.h"
#include "scrape_cache.h"
#include "vigil/relabel.h"
#include "vigil/store.h"

namespace vigil::collectors {

namespace {

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

// The synthetic series every target gets, in the order their families open the batch.
constexpr std::size_t kSyntheticFamilies = 5;

class ScrapeCollector : public Collector {
 public:
  explicit ScrapeCollector(std::vector<ScrapeConfig> configs) : configs_(std::move(configs)) {}

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    if (configs_.empty()) {
      return Status::ok();
    }
    // Every target at once, each into its own cache: a slow or broken target costs the others
    // nothing.
    std::vector<Job> jobs;
    for (const auto& c : configs_) {
      for (const auto& t : c.targets) {
        auto resolved = resolveTarget(c, t);
        if (!resolved) {
          continue;
        }
        ScrapeCache* cache = &caches_[c.job_name + "\xff" + resolved->address];
        jobs.push_back({&c,
                        resolved->address,
                        std::move(resolved->url),
                        std::move(resolved->labels),
                        cache,
                        Status::ok(),
                        {},
                        0});
      }
    }
    std::vector<std::thread> threads;
    for (auto& j : jobs) {
      threads.emplace_back([&j, deadline = ctx.deadline] {
        const auto start = std::chrono::steady_clock::now();
        j.status = scrapeOne(*j.config, j.url, j.labels, deadline, *j.cache, j.scraped);
        j.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    for (const auto& j : jobs) {
      if (!j.status.isOk()) {
        spdlog::warn("scrape failed job={} target={} error=\"{}\"", j.config->job_name, j.address,
                     j.status.message());
      }
    }

    // The batch has the same shape as the last one when every target answered (or failed) as
    // it did then with bodies laid out as then: the batch of a few cycles ago then only needs
    // its values overwritten.
    std::vector<uint64_t> shape;
    for (const auto& j : jobs) {
      shape.push_back(j.status.isOk() ? j.cache->layout() : 0);
    }
    if (shape != shape_ || layout_ == 0) {
      shape_ = std::move(shape);
      layout_ = MetricBatch::newLayout();
      placements_.clear();
    }
    if (ctx.spare != nullptr && ctx.spare->layout() == layout_ && !placements_.empty()) {
      out = std::move(*ctx.spare);
      fillValues(jobs, out);
    } else {
      build(jobs, out);
    }
    out.setLayout(layout_);
    return Status::ok();
  }

 private:
  // One target's scrape in this cycle.
  struct Job {
    const ScrapeConfig* config;
    std::string address;
    std::string url;
    LabelSet labels;
    ScrapeCache* cache;
    Status status;
    ScrapeCache::Scraped scraped;
    double seconds = 0;
  };

  // Where a target's families went in the batch: per family of its cache's samples, the
  // batch's family and the index of its first sample there.
  using Placement = std::vector<std::pair<uint32_t, uint32_t>>;

  static std::array<double, kSyntheticFamilies> syntheticValues(const Job& j) {
    const bool ok = j.status.isOk();
    return {ok ? 1.0 : 0.0, j.seconds, static_cast<double>(j.scraped.samples),
            static_cast<double>(j.scraped.new_series),
            ok ? static_cast<double>(j.cache->samples().seriesCount()) : 0.0};
  }

  void build(const std::vector<Job>& jobs, MetricBatch& out) {
    static constexpr std::array<std::string_view, kSyntheticFamilies> kNames = {
        "up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added",
        "scrape_samples_post_metric_relabeling"};
    for (std::string_view name : kNames) {
      out.family(name, "", MetricType::kGauge);
    }
    placements_.assign(jobs.size(), {});
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      const auto& j = jobs[i];
      const auto values = syntheticValues(j);
      for (std::size_t k = 0; k < kSyntheticFamilies; ++k) {
        MetricBatch::add(out.mutableFamilies()[k], j.labels, values[k]);
      }
      if (!j.status.isOk()) {
        continue;
      }
      for (const MetricFamily& f : j.cache->samples().families()) {
        const std::size_t to = out.familyIndex(f.name, f.help, f.type);
        auto& samples = out.mutableFamilies()[to].samples;
        placements_[i].emplace_back(static_cast<uint32_t>(to),
                                    static_cast<uint32_t>(samples.size()));
        samples.insert(samples.end(), f.samples.begin(), f.samples.end());
      }
    }
  }

  void fillValues(const std::vector<Job>& jobs, MetricBatch& out) const {
    auto& families = out.mutableFamilies();
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      const auto& j = jobs[i];
      const auto values = syntheticValues(j);
      for (std::size_t k = 0; k < kSyntheticFamilies; ++k) {
        families[k].samples[i].value = values[k];
      }
      if (!j.status.isOk()) {
        continue;
      }
      std::size_t fi = 0;
      for (const MetricFamily& f : j.cache->samples().families()) {
        const auto [to, first] = placements_[i][fi++];
        MetricSample* dest = families[to].samples.data() + first;
        for (const MetricSample& s : f.samples) {
          (dest++)->value = s.value;
        }
      }
    }
  }

  static Status scrapeOne(const ScrapeConfig& c, const std::string& url,
                          const LabelSet& target_labels,
                          std::chrono::steady_clock::time_point deadline, ScrapeCache& cache,
                          ScrapeCache::Scraped& scraped) {
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
    auto result = cache.update(got.body, c, target_labels);
    if (!result) {
      return result.status();
    }
    scraped = *result;
    return Status::ok();
  }

  std::vector<ScrapeConfig> configs_;
  std::map<std::string, ScrapeCache> caches_;  // by job and target
  std::vector<uint64_t> shape_;        // per target: its cache's layout, or 0 when it failed
  uint64_t layout_ = 0;                // of the batches with that shape
  std::vector<Placement> placements_;  // per target, in the batches of layout_
};

}  // namespace

Result<CollectorPtr> makeScrapeCollector(const CollectorSettings& settings, const HostPaths&) {
  return CollectorPtr(std::make_unique<ScrapeCollector>(settings.scrapes));
}

}  // namespace vigil::collectors
