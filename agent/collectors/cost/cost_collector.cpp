#include "cost_collector.h"

#include <spdlog/spdlog.h>
#include <sys/utsname.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>
#include <unordered_map>

#include "../common/kubernetes_pods.h"
#include "../common/proc_file.h"
#include "cost_model.h"
#include "vigil/clock.h"
#include "vigil/store.h"

namespace vigil::collectors {

namespace {

using cost::kGiB;

// OpenCost reads usage as rate(container_cpu_usage_seconds_total[2m]) and the newest working
// set; a working set older than Prometheus's lookback is no usage.
constexpr int64_t kCpuRateWindowMs = 2 * 60 * 1000;
constexpr int64_t kLookbackMs = 5 * 60 * 1000;
// Right-sizing reads the usage of the whole retention (up to a week), so it is redone only
// every few minutes: a recommendation moves slowly anyway.
constexpr int64_t kRightSizingWindowMs = 7LL * 24 * 3600 * 1000;
constexpr int64_t kRightSizingPeriodMs = 5 * 60 * 1000;
constexpr std::chrono::minutes kNodeClassPeriod{5};

std::string_view labelValue(const LabelSet& labels, std::string_view name) {
  for (const auto& l : labels) {
    if (l.name == name) {
      return l.value;
    }
  }
  return {};
}

// Containers are known by namespace, pod and container, joined by a byte no name contains.
std::string containerKey(std::string_view ns, std::string_view pod, std::string_view container) {
  std::string key;
  key.reserve(ns.size() + pod.size() + container.size() + 2);
  key.append(ns).append(1, '\xff').append(pod).append(1, '\xff').append(container);
  return key;
}

std::string containerKey(const LabelSet& series) {
  return containerKey(labelValue(series, "namespace"), labelValue(series, "pod"),
                      labelValue(series, "container"));
}

std::vector<LabelMatcher> containerSeries(const char* name) {
  return {*LabelMatcher::create(MatchType::kEqual, std::string(kMetricNameLabel), name),
          *LabelMatcher::create(MatchType::kNotEqual, "container", ""),
          *LabelMatcher::create(MatchType::kNotEqual, "container", "POD"),
          *LabelMatcher::create(MatchType::kNotEqual, "pod", "")};
}

// The per-second increase between consecutive samples (a counter reset starts over from 0).
std::vector<double> rates(const std::vector<Sample>& samples) {
  std::vector<double> out;
  const Sample* prev = nullptr;
  for (const Sample& s : samples) {
    if (isStaleNaN(s.v) || std::isnan(s.v)) {
      prev = nullptr;
      continue;
    }
    if (prev != nullptr && s.t > prev->t) {
      const double increase = s.v >= prev->v ? s.v - prev->v : s.v;
      out.push_back(increase * 1000.0 / static_cast<double>(s.t - prev->t));
    }
    prev = &s;
  }
  return out;
}

class CostCollector final : public Collector {
 public:
  CostCollector(const CostPricing& pricing, const std::optional<KubernetesSdConfig>& kubernetes,
                const HostPaths& paths)
      : pricing_(pricing),
        kubernetes_(kubernetes),
        stat_(joinPath(paths.procfs, "stat")),
        meminfo_(joinPath(paths.procfs, "meminfo")) {
    // The node as Kubernetes names it (node_name, or the downward API's NODE_NAME), else the
    // host's name.
    const char* node = std::getenv("NODE_NAME");
    utsname u{};
    ::uname(&u);
    node_.name = kubernetes && !kubernetes->node_name.empty() ? kubernetes->node_name
                 : node != nullptr && *node != '\0'           ? node
                                                              : u.nodename;
    node_name_ = node_.name;
    arch_ = goArch(u.machine);
    configuredIdentity();
    if (kubernetes_) {
      pods_ = std::make_unique<PodDiscovery>(*kubernetes_);
    }
  }

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    const int64_t now_ms = ctx.timestamp_ms != 0 ? ctx.timestamp_ms : unixNowMs();
    const auto deadline = ctx.deadline.time_since_epoch().count() != 0
                              ? ctx.deadline
                              : std::chrono::steady_clock::now() + std::chrono::seconds(10);
    refreshNodeClass(deadline);
    cost::NodeShape shape;
    VIGIL_RETURN_IF_ERROR(readShape(shape));
    const cost::NodeRates rates = cost::nodeRates(pricing_, node_, shape);
    const double total = rates.total(shape);

    const LabelSet node_labels = {{"arch", arch_},
                                  {"instance", node_name_},
                                  {"instance_type", node_.instance_type},
                                  {"node", node_name_},
                                  {"provider_id", node_.provider_id},
                                  {"region", node_.region}};
    auto node_gauge = [&](const char* name, const char* help, double v) {
      MetricBatch::add(out.family(name, help, MetricType::kGauge), node_labels, v);
    };
    node_gauge("node_cpu_hourly_cost", "hourly cost for each cpu on this node", rates.cpu);
    node_gauge("node_ram_hourly_cost", "hourly cost for each gb of ram on this node",
               rates.ram_gib);
    node_gauge("node_gpu_hourly_cost", "hourly cost for each gpu on this node", rates.gpu);
    node_gauge("node_gpu_count", "count of gpu on this node", shape.gpus);
    node_gauge("node_total_hourly_cost", "Total node cost per hour", total);
    node_gauge("kubecost_node_is_spot", "Cloud provider info about node preemptibility",
               rates.spot ? 1 : 0);
    const LabelSet by_node = {{"node", node_name_}};
    MetricBatch::add(out.family("vigil_cost_spot_saving_hourly",
                                "What running this node as spot would save per hour at the "
                                "configured spot prices (0 for a spot node).",
                                MetricType::kGauge),
                     by_node, cost::spotSavingHourly(pricing_, node_, shape));
    MetricBatch::add(out.family("vigil_cost_node_dollars_total",
                                "What this node has cost since vigil started, at "
                                "node_total_hourly_cost (in the pricing's currency).",
                                MetricType::kCounter),
                     by_node, ledger_.charge("node", total, now_ms));

    if (pods_) {
      allocate(ctx, deadline, now_ms, shape, rates, out);
    }
    ledger_.sweep();
    return Status::ok();
  }

 private:
  struct Usage {
    double cpu_cores = NAN;
    double memory_bytes = NAN;
  };

  Status readShape(cost::NodeShape& shape) {
    std::string text;
    VIGIL_RETURN_IF_ERROR(stat_.read(text));
    forEachLine(text, [&](std::string_view line) {
      shape.cpus += line.size() > 3 && line.starts_with("cpu") && line[3] >= '0' && line[3] <= '9';
    });
    VIGIL_RETURN_IF_ERROR(meminfo_.read(text));
    forEachLine(text, [&](std::string_view line) {
      if (line.starts_with("MemTotal:")) {
        splitFields(line, fields_);
        if (fields_.size() >= 2) {
          shape.ram_bytes = parseDouble(fields_[1]).value_or(0) * 1024;  // kB
        }
      }
    });
    shape.gpus = pricing_.gpus;
    return Status::ok();
  }

  // Every running container's allocation and cost, and the idle rest of the node.
  void allocate(const CollectContext& ctx, std::chrono::steady_clock::time_point deadline,
                int64_t now_ms, const cost::NodeShape& shape, const cost::NodeRates& rates,
                MetricBatch& out) {
    const auto now = std::chrono::steady_clock::now();
    auto listing = pods_->listing(now + (deadline - now) / 2);
    const auto usage = ctx.store != nullptr ? readUsage(*ctx.store, now_ms)
                                            : std::unordered_map<std::string, Usage>{};
    if (ctx.store != nullptr && now_ms - last_right_sizing_ms_ >= kRightSizingPeriodMs) {
      readRightSizing(*ctx.store, now_ms);
      last_right_sizing_ms_ = now_ms;
    }

    auto& cpu_alloc = out.family("container_cpu_allocation",
                                 "Percent of a single CPU used in a minute", MetricType::kGauge);
    auto& mem_alloc =
        out.family("container_memory_allocation_bytes", "Bytes of RAM used", MetricType::kGauge);
    auto& gpu_alloc = out.family("container_gpu_allocation", "GPU used", MetricType::kGauge);
    auto& requests =
        out.family("kube_pod_container_resource_requests",
                   "The number of requested request resource by a container.", MetricType::kGauge);
    auto& hourly = out.family("vigil_cost_hourly",
                              "What a container costs per hour: max(request, usage) of the "
                              "resource times the node's price for it.",
                              MetricType::kGauge);
    auto& dollars = out.family("vigil_cost_dollars_total",
                               "What a container has cost since vigil started (or it started), "
                               "at vigil_cost_hourly.",
                               MetricType::kCounter);
    auto& rs_cpu = out.family("vigil_cost_rightsizing_cpu_cores",
                              "Recommended CPU request: the 95th percentile of the container's "
                              "CPU usage over the retention, plus 15%.",
                              MetricType::kGauge);
    auto& rs_mem = out.family("vigil_cost_rightsizing_memory_bytes",
                              "Recommended memory request: the container's peak working set "
                              "over the retention, plus 15%.",
                              MetricType::kGauge);
    auto& rs_saving = out.family("vigil_cost_rightsizing_saving_hourly",
                                 "What setting the container's requests to the recommended "
                                 "ones would save per hour.",
                                 MetricType::kGauge);

    double cpu_allocated = 0;
    double memory_allocated = 0;
    double gpus_allocated = 0;
    for (const PodInfo& pod : listing->pods) {
      // A running pod is charged (OpenCost's rule); pending and finished ones hold nothing.
      if (pod.phase != "Running") {
        continue;
      }
      for (const PodInfo::Requests& c : pod.requests) {
        const std::string key = containerKey(pod.namespace_name, pod.name, c.container);
        auto u = usage.find(key);
        const Usage used = u != usage.end() ? u->second : Usage{};
        const double cpu = cost::allocation(c.cpu_cores, used.cpu_cores);
        const double memory = cost::allocation(c.memory_bytes, used.memory_bytes);
        const double gpus = c.gpus;
        cpu_allocated += cpu;
        memory_allocated += memory;
        gpus_allocated += gpus;

        const LabelSet labels = {{"container", c.container},
                                 {"instance", node_name_},
                                 {"namespace", pod.namespace_name},
                                 {"node", node_name_},
                                 {"pod", pod.name}};
        MetricBatch::add(cpu_alloc, labels, cpu);
        MetricBatch::add(mem_alloc, labels, memory);
        if (gpus > 0) {
          MetricBatch::add(gpu_alloc, labels, gpus);
        }
        auto with = [&](std::initializer_list<Label> extra) {
          LabelSet l = {{"container", c.container},
                        {"namespace", pod.namespace_name},
                        {"node", node_name_},
                        {"pod", pod.name}};
          l.insert(l.end(), extra);
          return l;
        };
        // kube-state-metrics' series, so that rules written for it work on the node alone.
        if (c.cpu_cores > 0) {
          MetricBatch::add(requests, with({{"resource", "cpu"}, {"unit", "core"}}), c.cpu_cores);
        }
        if (c.memory_bytes > 0) {
          MetricBatch::add(requests, with({{"resource", "memory"}, {"unit", "byte"}}),
                           c.memory_bytes);
        }
        if (c.gpus > 0) {
          MetricBatch::add(requests, with({{"resource", "nvidia_com_gpu"}, {"unit", "integer"}}),
                           c.gpus);
        }
        if (c.ephemeral_storage_bytes > 0) {
          MetricBatch::add(requests, with({{"resource", "ephemeral_storage"}, {"unit", "byte"}}),
                           c.ephemeral_storage_bytes);
        }
        const std::pair<const char*, double> costs[] = {
            {"cpu", cpu * rates.cpu},
            {"memory", memory / kGiB * rates.ram_gib},
            {"gpu", gpus * rates.gpu},
            {"storage", c.ephemeral_storage_bytes / kGiB * rates.storage_gib}};
        for (const auto& [resource, cost] : costs) {
          // GPUs on a node that has some; local storage for a container that reserves it.
          if ((std::string_view(resource) == "gpu" && shape.gpus <= 0) ||
              (std::string_view(resource) == "storage" && c.ephemeral_storage_bytes <= 0)) {
            continue;
          }
          MetricBatch::add(hourly, with({{"resource", resource}}), cost);
          MetricBatch::add(dollars, with({{"resource", resource}}),
                           ledger_.charge(key + '\xff' + resource, cost, now_ms));
        }
        if (auto r = right_sizing_.find(key); r != right_sizing_.end()) {
          MetricBatch::add(rs_cpu, with({}), r->second.cpu_cores);
          MetricBatch::add(rs_mem, with({}), r->second.memory_bytes);
          MetricBatch::add(
              rs_saving, with({}),
              cost::rightSizingSavingHourly(c.cpu_cores, c.memory_bytes, r->second, rates));
        }
      }
    }

    // Idle: what the node has that no container is allocated (never below 0: containers can
    // use more than the node sells only through accounting noise).
    auto& idle = out.family("vigil_cost_idle_hourly",
                            "What the node's unallocated capacity costs per hour: capacity "
                            "minus the containers' allocation, times the price.",
                            MetricType::kGauge);
    auto& idle_dollars = out.family("vigil_cost_idle_dollars_total",
                                    "What the node's unallocated capacity has cost since vigil "
                                    "started, at vigil_cost_idle_hourly.",
                                    MetricType::kCounter);
    const std::pair<const char*, double> idle_costs[] = {
        {"cpu", std::max(0.0, shape.cpus - cpu_allocated) * rates.cpu},
        {"memory", std::max(0.0, shape.ram_bytes - memory_allocated) / kGiB * rates.ram_gib},
        {"gpu", std::max(0.0, shape.gpus - gpus_allocated) * rates.gpu}};
    for (const auto& [resource, cost] : idle_costs) {
      if (std::string_view(resource) == "gpu" && shape.gpus <= 0) {
        continue;
      }
      const LabelSet labels = {{"node", node_name_}, {"resource", resource}};
      MetricBatch::add(idle, labels, cost);
      MetricBatch::add(idle_dollars, labels,
                       ledger_.charge(std::string("idle\xff") + resource, cost, now_ms));
    }
  }

  // Each container's CPU usage (its rate over the last 2 minutes) and working set (the newest
  // within the lookback), from the container collector's series.
  static std::unordered_map<std::string, Usage> readUsage(const Store& store, int64_t now_ms) {
    std::unordered_map<std::string, Usage> usage;
    for (const auto& s : store.select(containerSeries("container_cpu_usage_seconds_total"),
                                      now_ms - kCpuRateWindowMs, now_ms)) {
      // Over the window: the total increase over the time it spans.
      double increase = 0;
      double seconds = 0;
      const Sample* prev = nullptr;
      for (const Sample& x : s.samples) {
        if (std::isnan(x.v)) {
          prev = nullptr;
          continue;
        }
        if (prev != nullptr && x.t > prev->t) {
          increase += x.v >= prev->v ? x.v - prev->v : x.v;
          seconds += static_cast<double>(x.t - prev->t) / 1000;
        }
        prev = &x;
      }
      if (seconds > 0) {
        usage[containerKey(*s.labels)].cpu_cores = increase / seconds;
      }
    }
    for (const auto& s : store.select(containerSeries("container_memory_working_set_bytes"),
                                      now_ms - kLookbackMs, now_ms)) {
      if (!s.samples.empty() && !std::isnan(s.samples.back().v)) {
        usage[containerKey(*s.labels)].memory_bytes = s.samples.back().v;
      }
    }
    return usage;
  }

  // Every container's recommendation from its usage over the retention.
  void readRightSizing(const Store& store, int64_t now_ms) {
    const int64_t from = now_ms - kRightSizingWindowMs;
    std::unordered_map<std::string, std::vector<double>> cpu;
    for (const auto& s :
         store.select(containerSeries("container_cpu_usage_seconds_total"), from, now_ms)) {
      auto r = rates(s.samples);
      auto& into = cpu[containerKey(*s.labels)];
      into.insert(into.end(), r.begin(), r.end());
    }
    std::unordered_map<std::string, std::vector<double>> memory;
    for (const auto& s :
         store.select(containerSeries("container_memory_working_set_bytes"), from, now_ms)) {
      auto& into = memory[containerKey(*s.labels)];
      for (const Sample& x : s.samples) {
        if (!std::isnan(x.v)) {
          into.push_back(x.v);
        }
      }
    }
    right_sizing_.clear();
    for (const auto& [key, rates] : cpu) {
      auto m = memory.find(key);
      if (m == memory.end()) {
        continue;
      }
      if (auto r = cost::recommend(rates, m->second)) {
        right_sizing_.emplace(key, *r);
      }
    }
  }

  // What the configuration says about the node's class, before (or without) its labels.
  void configuredIdentity() {
    node_.instance_type = pricing_.instance_type;
    node_.region = pricing_.region;
    node_.provider_id = pricing_.provider_id;
    node_.spot = false;
    node_.labels.clear();
  }

  // With `kubernetes`, the node's class from its labels every few minutes (labels seldom
  // change); what they do not say comes from `pricing`. A failed read keeps the last class.
  void refreshNodeClass(std::chrono::steady_clock::time_point deadline) {
    const auto now = std::chrono::steady_clock::now();
    if (!kubernetes_ || (node_class_read_ && now - last_read_ < kNodeClassPeriod)) {
      return;
    }
    last_read_ = now;
    auto c = fetchNodeClass(*kubernetes_, now + (deadline - now) / 2);
    if (!c) {
      if (!failing_) {
        spdlog::warn("cost: reading the node's labels failed, keeping its class error=\"{}\"",
                     c.status().message());
      }
      failing_ = true;
      return;
    }
    failing_ = false;
    node_class_read_ = true;
    configuredIdentity();
    node_.spot = c->spot;
    node_.labels = std::move(c->labels);
    for (const auto& [from, into] :
         {std::pair{&c->instance_type, &node_.instance_type}, std::pair{&c->region, &node_.region},
          std::pair{&c->provider_id, &node_.provider_id}}) {
      if (!from->empty()) {
        *into = *from;
      }
    }
  }

  // Go's GOARCH names, as OpenCost's arch label uses them.
  static std::string goArch(std::string_view machine) {
    if (machine == "x86_64") return "amd64";
    if (machine == "aarch64") return "arm64";
    if (machine == "i686" || machine == "i386") return "386";
    return std::string(machine);
  }

  const CostPricing pricing_;
  std::optional<KubernetesSdConfig> kubernetes_;
  std::unique_ptr<PodDiscovery> pods_;  // null without `kubernetes`
  cost::NodeIdentity node_;             // the configuration's class, with what the labels say
  std::string node_name_;
  std::chrono::steady_clock::time_point last_read_{};
  bool node_class_read_ = false;
  bool failing_ = false;
  ProcFile stat_;
  ProcFile meminfo_;
  std::string arch_;
  std::vector<std::string_view> fields_;
  cost::Ledger ledger_;
  std::unordered_map<std::string, cost::Recommendation> right_sizing_;
  int64_t last_right_sizing_ms_ = 0;
};

}  // namespace

Result<CollectorPtr> makeCostCollector(const CollectorSettings& settings, const HostPaths& paths) {
  return CollectorPtr(
      std::make_unique<CostCollector>(settings.pricing, settings.kubernetes, paths));
}

}  // namespace vigil::collectors
