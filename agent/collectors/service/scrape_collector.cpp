#include "scrape_collector.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "../common/http_get.h"
#include "../common/kubernetes_pods.h"
#include "scrape_cache.h"
#include "vigil/relabel.h"
#include "vigil/store.h"
#include "vigil/thread_name.h"

namespace vigil::collectors {

namespace {

// A target as relabel_configs leave it: where to scrape and the labels its series get; null
// when the relabeling drops it.
struct ResolvedTarget {
  std::string address;
  std::string url;
  LabelSet labels;  // without the __ labels; instance defaults to the address
  // A discovered pod's, and whether the container port it came from is the one scraped.
  std::string pod_uid;
  bool declares_port = false;
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
  r.pod_uid = get("__meta_kubernetes_pod_uid");
  const std::string port = get("__meta_kubernetes_pod_container_port_number");
  r.declares_port = !port.empty() && r.address.ends_with(":" + port);
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
  explicit ScrapeCollector(std::vector<ScrapeConfig> configs) : configs_(std::move(configs)) {
    discoveries_.resize(configs_.size());
    for (std::size_t i = 0; i < configs_.size(); ++i) {
      ScrapeConfig& c = configs_[i];
      if (!c.kubernetes_sd_configs.empty() && c.relabel_configs.empty()) {
        c.relabel_configs = kubernetesAnnotationRelabeling();
      }
      for (const auto& sd : c.kubernetes_sd_configs) {
        discoveries_[i].push_back(std::make_unique<PodDiscovery>(sd));
      }
    }
  }

  // A scrape's batch keeps its shape while its targets' bodies do: values are overwritten in
  // the batch of a few cycles ago.
  bool takesSpareBatches() const override { return true; }

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    if (configs_.empty()) {
      return Status::ok();
    }
    // Before discovery's first answer, wait for it, for no more than half the cycle.
    const auto now = std::chrono::steady_clock::now();
    const auto discovery_deadline = now + (ctx.deadline - now) / 2;
    // Every target at once, each into its own cache: a slow or broken target costs the others
    // nothing. Targets that relabel to the same labels and URL are one; so are the targets of
    // one pod that relabel to the same URL (a pod's containers each make a target, and the
    // prometheus.io/port annotation points them all at one port): labelled by the container
    // that declares the port, if one does.
    std::vector<Job> jobs;
    std::map<std::string, std::size_t> seen;  // cache key -> job
    for (std::size_t i = 0; i < configs_.size(); ++i) {
      const ScrapeConfig& c = configs_[i];
      // The static targets, then each discovery's (held, not copied, for this cycle).
      std::vector<std::shared_ptr<const PodDiscovery::Listing>> listings;
      std::vector<const std::vector<ScrapeConfig::Target>*> lists = {&c.targets};
      for (const auto& d : discoveries_[i]) {
        listings.push_back(d->listing(discovery_deadline));
        lists.push_back(&listings.back()->targets);
      }
      for (const auto* targets : lists) {
        for (const auto& t : *targets) {
          auto resolved = resolveTarget(c, t);
          if (!resolved) {
            continue;
          }
          std::string key = c.job_name + "\xff" + resolved->url + "\xff" +
                            (resolved->pod_uid.empty() ? labelsToString(resolved->labels)
                                                       : "pod " + resolved->pod_uid);
          auto [it, inserted] = seen.try_emplace(key, jobs.size());
          if (!inserted) {
            Job& kept = jobs[it->second];
            if (resolved->declares_port && !kept.declares_port) {
              kept.labels = std::move(resolved->labels);
              kept.declares_port = true;
            }
            continue;
          }
          TargetState& state = targets_[std::move(key)];
          jobs.push_back({&c,
                          resolved->address,
                          std::move(resolved->url),
                          std::move(resolved->labels),
                          &state.cache,
                          &state.failing,
                          resolved->declares_port,
                          Status::ok(),
                          {},
                          0});
        }
      }
    }
    // The caches of targets gone (pods deleted) go with them.
    std::erase_if(targets_, [&](const auto& entry) { return seen.count(entry.first) == 0; });
    std::vector<std::thread> threads;
    for (auto& j : jobs) {
      threads.emplace_back([&j, deadline = ctx.deadline] {
        nameThisThread("scrape");
        const auto start = std::chrono::steady_clock::now();
        j.status = scrapeOne(*j.config, j.url, j.labels, deadline, *j.cache, j.scraped);
        j.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      });
    }
    for (auto& t : threads) {
      t.join();
    }
    // Logged when a target starts or stops failing, not every cycle (up says the rest).
    for (const auto& j : jobs) {
      if (!j.status.isOk() && !*j.failing) {
        spdlog::warn("scrape failed job={} target={} error=\"{}\"", j.config->job_name, j.address,
                     j.status.message());
      } else if (j.status.isOk() && *j.failing) {
        spdlog::info("scrape recovered job={} target={}", j.config->job_name, j.address);
      }
      *j.failing = !j.status.isOk();
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
    bool* failing;  // whether it failed the cycle before
    bool declares_port;
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
    const auto discovery = discoveryValues();
    if (!discovery.empty()) {
      out.family("vigil_discovery_refreshes_total",
                 "Pod list refreshes of the scrape job's kubernetes_sd_configs.",
                 MetricType::kCounter);
      out.family("vigil_discovery_refresh_failures_total",
                 "Pod list refreshes that failed (the targets of the last good one were kept).",
                 MetricType::kCounter);
      out.family("vigil_discovery_targets",
                 "Targets the last good pod list gave, before relabeling.", MetricType::kGauge);
      for (const auto& [job, values] : discovery) {
        for (std::size_t k = 0; k < values.size(); ++k) {
          MetricBatch::add(out.mutableFamilies()[kSyntheticFamilies + k], {{"job", job}},
                           values[k]);
        }
      }
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
    auto families = out.mutableFamilies();
    const auto discovery = discoveryValues();
    for (std::size_t d = 0; d < discovery.size(); ++d) {
      for (std::size_t k = 0; k < discovery[d].second.size(); ++k) {
        families[kSyntheticFamilies + k].samples[d].value = discovery[d].second[k];
      }
    }
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

  // Per job with kubernetes_sd_configs: refreshes, failed refreshes and targets.
  std::vector<std::pair<std::string, std::array<double, 3>>> discoveryValues() const {
    std::vector<std::pair<std::string, std::array<double, 3>>> out;
    for (std::size_t i = 0; i < configs_.size(); ++i) {
      if (discoveries_[i].empty()) {
        continue;
      }
      std::array<double, 3> values{};
      for (const auto& d : discoveries_[i]) {
        const auto st = d->stats();
        values[0] += static_cast<double>(st.refreshes);
        values[1] += static_cast<double>(st.failures);
        values[2] += static_cast<double>(st.targets);
      }
      out.emplace_back(configs_[i].job_name, values);
    }
    return out;
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
  std::vector<std::vector<std::unique_ptr<PodDiscovery>>> discoveries_;  // per config
  // What is kept of a target from cycle to cycle.
  struct TargetState {
    ScrapeCache cache;
    bool failing = false;
  };
  std::map<std::string, TargetState> targets_;  // by job and target
  std::vector<uint64_t> shape_;        // per target: its cache's layout, or 0 when it failed
  uint64_t layout_ = 0;                // of the batches with that shape
  std::vector<Placement> placements_;  // per target, in the batches of layout_
};

}  // namespace

Result<CollectorPtr> makeScrapeCollector(const CollectorSettings& settings, const HostPaths&) {
  return CollectorPtr(std::make_unique<ScrapeCollector>(settings.scrapes));
}

}  // namespace vigil::collectors
