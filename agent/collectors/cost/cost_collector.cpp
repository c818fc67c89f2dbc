#include "cost_collector.h"

#include <spdlog/spdlog.h>
#include <sys/utsname.h>

#include <chrono>
#include <cstdlib>
#include <optional>

#include "../common/kubernetes_pods.h"
#include "../common/proc_file.h"

namespace vigil::collectors {

namespace {

constexpr double kGiB = 1024.0 * 1024 * 1024;

class CostCollector final : public Collector {
 public:
  CostCollector(const CostPricing& pricing, const std::optional<KubernetesSdConfig>& kubernetes,
                const HostPaths& paths)
      : configured_(pricing),
        pricing_(pricing),
        kubernetes_(kubernetes),
        stat_(joinPath(paths.procfs, "stat")),
        meminfo_(joinPath(paths.procfs, "meminfo")) {
    // The node as Kubernetes names it (node_name, or the downward API's NODE_NAME), else the
    // host's name.
    const char* node = std::getenv("NODE_NAME");
    utsname u{};
    ::uname(&u);
    node_ = kubernetes && !kubernetes->node_name.empty() ? kubernetes->node_name
            : node != nullptr && *node != '\0'           ? node
                                                         : u.nodename;
    arch_ = goArch(u.machine);
  }

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    refreshNodeClass(ctx.deadline);
    std::string text;
    VIGIL_RETURN_IF_ERROR(stat_.read(text));
    double cpus = 0;
    forEachLine(text, [&](std::string_view line) {
      cpus += line.size() > 3 && line.starts_with("cpu") && line[3] >= '0' && line[3] <= '9';
    });
    VIGIL_RETURN_IF_ERROR(meminfo_.read(text));
    double ram_bytes = 0;
    forEachLine(text, [&](std::string_view line) {
      if (line.starts_with("MemTotal:")) {
        splitFields(line, fields_);
        if (fields_.size() >= 2) {
          ram_bytes = parseDouble(fields_[1]).value_or(0) * 1024;  // kB
        }
      }
    });

    // OpenCost's arithmetic: prices per vCPU-hour, per GiB-hour (bytes / 2^30) and per
    // GPU-hour, the spot prices for a spot node, the discount off each.
    const double keep = 1 - pricing_.discount;
    const double cpu = (pricing_.spot ? pricing_.spot_cpu_hourly : pricing_.cpu_hourly) * keep;
    const double ram =
        (pricing_.spot ? pricing_.spot_ram_gib_hourly : pricing_.ram_gib_hourly) * keep;
    const double gpu = pricing_.gpu_hourly * keep;
    const double total = cpus * cpu + ram_bytes / kGiB * ram + pricing_.gpus * gpu;

    const LabelSet labels = {{"arch", arch_},
                             {"instance", node_},
                             {"instance_type", pricing_.instance_type},
                             {"node", node_},
                             {"provider_id", pricing_.provider_id},
                             {"region", pricing_.region}};
    auto gauge = [&](const char* name, const char* help, double v) {
      MetricBatch::add(out.family(name, help, MetricType::kGauge), labels, v);
    };
    gauge("node_cpu_hourly_cost", "hourly cost for each cpu on this node", cpu);
    gauge("node_ram_hourly_cost", "hourly cost for each gb of ram on this node", ram);
    gauge("node_gpu_hourly_cost", "hourly cost for each gpu on this node", gpu);
    gauge("node_gpu_count", "count of gpu on this node", pricing_.gpus);
    gauge("node_total_hourly_cost", "Total node cost per hour", total);
    gauge("kubecost_node_is_spot", "Cloud provider info about node preemptibility",
          pricing_.spot ? 1 : 0);

    // The cost since vigil started, at the hourly cost of each interval's start.
    const auto now = std::chrono::steady_clock::now();
    if (last_.time_since_epoch().count() != 0) {
      accumulated_ += last_total_ * std::chrono::duration<double>(now - last_).count() / 3600;
    }
    last_ = now;
    last_total_ = total;
    MetricBatch::add(out.family("vigil_cost_node_dollars_total",
                                "What this node has cost since vigil started, at "
                                "node_total_hourly_cost (in the pricing's currency).",
                                MetricType::kCounter),
                     {{"node", node_}}, accumulated_);
    return Status::ok();
  }

 private:
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
    pricing_ = configured_;
    pricing_.spot = c->spot || configured_.spot;
    for (const auto& [from, into] : {std::pair{&c->instance_type, &pricing_.instance_type},
                                     std::pair{&c->region, &pricing_.region},
                                     std::pair{&c->provider_id, &pricing_.provider_id}}) {
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

  static constexpr std::chrono::minutes kNodeClassPeriod{5};
  const CostPricing configured_;
  CostPricing pricing_;  // configured_, with what the node's labels say
  std::optional<KubernetesSdConfig> kubernetes_;
  std::chrono::steady_clock::time_point last_read_{};
  bool node_class_read_ = false;
  bool failing_ = false;
  ProcFile stat_;
  ProcFile meminfo_;
  std::string node_;
  std::string arch_;
  std::vector<std::string_view> fields_;
  std::chrono::steady_clock::time_point last_{};
  double last_total_ = 0;
  double accumulated_ = 0;
};

}  // namespace

Result<CollectorPtr> makeCostCollector(const CollectorSettings& settings, const HostPaths& paths) {
  return CollectorPtr(
      std::make_unique<CostCollector>(settings.pricing, settings.kubernetes, paths));
}

}  // namespace vigil::collectors
