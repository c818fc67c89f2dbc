// Resource use of containers and services from cgroup v2: pods and their containers under
// kubepods (systemd and cgroupfs drivers), and outside Kubernetes the top-level cgroups and the
// services in top-level slices, so that a plain host's system.slice/*.service show up too.
// Names and formulas follow cAdvisor (memory working set = memory.current - inactive_file,
// floored at 0).
#include "cgroup_collector.h"

#include <cctype>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>

#include "../common/kubernetes_pods.h"
#include "../common/proc_file.h"

namespace vigil::collectors {

namespace {

constexpr std::size_t kMaxCgroups = 10000;  // a bound on the walk, whatever the host has
constexpr int kMaxDepth = 10;

bool isHex64(std::string_view s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c));
         });
}

bool endsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

std::vector<std::string_view> components(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    auto slash = path.find('/');
    if (slash != 0) {
      out.push_back(path.substr(0, slash));
    }
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return out;
}

}  // namespace

KubepodsPath parseKubepodsPath(std::string_view path) {
  KubepodsPath out;
  auto parts = components(path);
  bool in_kubepods = false;
  std::size_t pod_index = parts.size();
  for (std::size_t i = 0; i < parts.size(); ++i) {
    std::string_view p = parts[i];
    if (p == "kubepods" || p.find("kubepods") != std::string_view::npos) {
      in_kubepods = true;
    }
    if (!in_kubepods) {
      continue;
    }
    // systemd driver: kubepods-burstable-pod<uid_>.slice, kubepods-pod<uid_>.slice;
    // cgroupfs driver: pod<uid>.
    std::string_view name = p;
    if (endsWith(name, ".slice")) {
      name.remove_suffix(6);
    }
    auto pos = name.rfind("pod");
    if (pos != std::string_view::npos && (pos == 0 || name[pos - 1] == '-') &&
        name.size() > pos + 3) {
      std::string uid(name.substr(pos + 3));
      std::replace(uid.begin(), uid.end(), '_', '-');
      if (std::all_of(uid.begin(), uid.end(), [](char c) {
            return std::isxdigit(static_cast<unsigned char>(c)) || c == '-';
          })) {
        out.pod_uid = uid;
        pod_index = i;
        // QoS: besteffort or burstable appear in the path; guaranteed pods have no QoS level.
        out.qos = "guaranteed";
        for (std::size_t j = 0; j < i; ++j) {
          if (parts[j].find("besteffort") != std::string_view::npos) {
            out.qos = "besteffort";
          } else if (parts[j].find("burstable") != std::string_view::npos) {
            out.qos = "burstable";
          }
        }
        if (name.find("besteffort") != std::string_view::npos) {
          out.qos = "besteffort";
        } else if (name.find("burstable") != std::string_view::npos) {
          out.qos = "burstable";
        }
        break;
      }
    }
  }
  if (pod_index == parts.size()) {
    return out;
  }
  if (pod_index + 1 == parts.size()) {
    out.is_pod = true;
    return out;
  }
  if (pod_index + 2 != parts.size()) {
    return KubepodsPath{};  // deeper than a container: not something kubelet makes
  }
  std::string_view c = parts.back();
  if (endsWith(c, ".scope")) {
    c.remove_suffix(6);
  }
  static constexpr std::pair<std::string_view, std::string_view> kRuntimes[] = {
      {"cri-containerd-", "containerd"}, {"crio-", "cri-o"}, {"docker-", "docker"}};
  for (const auto& [prefix, runtime] : kRuntimes) {
    if (c.substr(0, prefix.size()) == prefix && isHex64(c.substr(prefix.size()))) {
      out.is_container = true;
      out.container_id = std::string(c.substr(prefix.size()));
      out.runtime = std::string(runtime);
      return out;
    }
  }
  if (isHex64(c)) {
    out.is_container = true;
    out.container_id = std::string(c);
    return out;
  }
  // crio-conmon-<id>.scope and anything else that is not a container.
  return KubepodsPath{};
}

namespace {

using KeyValues = std::map<std::string, double, std::less<>>;

class CgroupCollector final : public Collector {
 public:
  CgroupCollector(const HostPaths& paths, const std::optional<KubernetesSdConfig>& kubernetes)
      : sysfs_(paths.sysfs), diskstats_(joinPath(paths.procfs, "diskstats")) {
    if (kubernetes) {
      pods_ = std::make_unique<PodDiscovery>(*kubernetes);
    }
  }

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    const std::string root = findRoot();
    if (root.empty()) {
      return Status::ok();  // no cgroup v2 here: nothing to report
    }
    loadDeviceNames();
    loadPodNames(ctx.deadline);
    std::vector<std::string> cgroups;
    walk(root, "", 0, cgroups);
    for (const std::string& rel : cgroups) {
      if (std::chrono::steady_clock::now() > ctx.deadline) {
        return Status(StatusCode::kDeadlineExceeded,
                      "stopped after " + std::to_string(cgroups.size()) + " cgroups");
      }
      collectOne(root + rel, rel, out);
    }
    return Status::ok();
  }

 private:
  std::string findRoot() const {
    for (const char* candidate : {"fs/cgroup", "fs/cgroup/unified"}) {
      const std::string dir = joinPath(sysfs_, candidate);
      if (std::filesystem::exists(dir + "/cgroup.controllers")) {
        return dir;
      }
    }
    return {};
  }

  // The cgroups worth reporting: pods and containers under kubepods, and outside it the
  // top-level cgroups and the children of top-level slices (services).
  void walk(const std::string& root, const std::string& rel, int depth,
            std::vector<std::string>& out) {
    if (depth > kMaxDepth || out.size() >= kMaxCgroups) {
      return;
    }
    std::error_code ec;
    std::vector<std::string> children;
    for (const auto& entry : std::filesystem::directory_iterator(root + rel, ec)) {
      if (entry.is_directory(ec)) {
        children.push_back(entry.path().filename().string());
      }
    }
    std::sort(children.begin(), children.end());
    for (const auto& child : children) {
      const std::string path = rel + "/" + child;
      const KubepodsPath k = parseKubepodsPath(path);
      const bool kube = path.find("kubepods") != std::string::npos;
      if (k.is_pod || k.is_container) {
        out.push_back(path);
      } else if (!kube && (depth == 0 || (depth == 1 && endsWith(rel, ".slice")))) {
        out.push_back(path);
      }
      if (!k.is_container && (kube || endsWith(child, ".slice") || depth == 0)) {
        walk(root, path, depth + 1, out);
      }
    }
  }

  void loadDeviceNames() {
    devices_.clear();
    std::string text;
    if (!diskstats_.read(text).isOk()) {
      return;
    }
    std::vector<std::string_view> f;
    forEachLine(text, [&](std::string_view line) {
      splitFields(line, f);
      if (f.size() >= 3) {
        devices_[std::string(f[0]) + ":" + std::string(f[1])] = std::string(f[2]);
      }
    });
  }

  static bool readText(const std::string& path, std::string& text) {
    return ProcFile(path).read(text).isOk();
  }

  static KeyValues readKeyValues(const std::string& path) {
    KeyValues kv;
    std::string text;
    if (!readText(path, text)) {
      return kv;
    }
    std::vector<std::string_view> f;
    forEachLine(text, [&](std::string_view line) {
      splitFields(line, f);
      if (f.size() == 2) {
        if (auto v = parseDouble(f[1])) {
          kv.emplace(std::string(f[0]), *v);
        }
      }
    });
    return kv;
  }

  static std::optional<double> readNumber(const std::string& path, bool& unlimited) {
    std::string text;
    unlimited = false;
    if (!readText(path, text)) {
      return std::nullopt;
    }
    std::string_view v(text);
    while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) {
      v.remove_suffix(1);
    }
    if (v == "max") {
      unlimited = true;
      return std::nullopt;
    }
    return parseDouble(v);
  }

  // Names of this node's pods and containers, from the pod list (when `kubernetes` is set).
  void loadPodNames(std::chrono::steady_clock::time_point deadline) {
    if (!pods_) {
      return;
    }
    // Before the first listing, wait for it, for no more than half the cycle. The maps are
    // rebuilt only when a refresh has replaced the listing.
    const auto now = std::chrono::steady_clock::now();
    auto listing = pods_->listing(now + (deadline - now) / 2);
    if (listing == listing_) {
      return;
    }
    listing_ = std::move(listing);
    pod_by_uid_.clear();
    container_by_id_.clear();
    for (const PodInfo& pod : listing_->pods) {
      pod_by_uid_[pod.uid] = &pod;
      for (const auto& c : pod.containers) {
        container_by_id_[c.id] = &c;
      }
    }
  }

  void collectOne(const std::string& dir, const std::string& rel, MetricBatch& out) {
    LabelSet labels{{"id", rel}};
    const KubepodsPath k = parseKubepodsPath(rel);
    if (k.is_pod || k.is_container) {
      labels.push_back({"pod_uid", k.pod_uid});
      labels.push_back({"container_id", k.container_id});
      labels.push_back({"qos_class", k.qos});
      // cAdvisor's names: namespace and pod on both; container and image on a container's
      // (a pod's own cgroup has container=""). A container of a listed pod that the pod's
      // statuses do not name is its sandbox (pause): left out, as kubelet leaves it unnamed.
      if (auto pod = pod_by_uid_.find(k.pod_uid); pod != pod_by_uid_.end()) {
        labels.push_back({"namespace", pod->second->namespace_name});
        labels.push_back({"pod", pod->second->name});
        if (k.is_container) {
          auto c = container_by_id_.find(k.container_id);
          if (c == container_by_id_.end()) {
            return;
          }
          labels.push_back({"container", c->second->name});
          labels.push_back({"image", c->second->image});
        }
      }
    }
    auto add = [&](const char* name, const char* help, MetricType type, double v,
                   LabelSet extra = {}) {
      LabelSet l = labels;
      l.insert(l.end(), extra.begin(), extra.end());
      MetricBatch::add(out.family(name, help, type), std::move(l), v);
    };

    const KeyValues cpu = readKeyValues(dir + "/cpu.stat");
    auto cpuStat = [&](const char* key, const char* name, const char* help, double scale) {
      if (auto it = cpu.find(key); it != cpu.end()) {
        add(name, help, MetricType::kCounter, it->second * scale);
      }
    };
    if (auto it = cpu.find("usage_usec"); it != cpu.end()) {
      add("container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.",
          MetricType::kCounter, it->second / 1e6, {{"cpu", "total"}});
    }
    cpuStat("user_usec", "container_cpu_user_seconds_total",
            "Cumulative user cpu time consumed in seconds.", 1e-6);
    cpuStat("system_usec", "container_cpu_system_seconds_total",
            "Cumulative system cpu time consumed in seconds.", 1e-6);
    cpuStat("nr_periods", "container_cpu_cfs_periods_total",
            "Number of elapsed enforcement period intervals.", 1);
    cpuStat("nr_throttled", "container_cpu_cfs_throttled_periods_total",
            "Number of throttled period intervals.", 1);
    cpuStat("throttled_usec", "container_cpu_cfs_throttled_seconds_total",
            "Total time duration the container has been throttled.", 1e-6);

    bool unlimited = false;
    const auto current = readNumber(dir + "/memory.current", unlimited);
    const KeyValues mem = readKeyValues(dir + "/memory.stat");
    if (current) {
      add("container_memory_usage_bytes",
          "Current memory usage in bytes, including all memory regardless of when it was "
          "accessed",
          MetricType::kGauge, *current);
      double inactive_file = 0;
      if (auto it = mem.find("inactive_file"); it != mem.end()) {
        inactive_file = it->second;
      }
      add("container_memory_working_set_bytes", "Current working set in bytes.", MetricType::kGauge,
          std::max(0.0, *current - inactive_file));
    }
    if (auto it = mem.find("anon"); it != mem.end()) {
      add("container_memory_rss", "Size of RSS in bytes.", MetricType::kGauge, it->second);
    }
    if (auto it = mem.find("file"); it != mem.end()) {
      add("container_memory_cache", "Number of bytes of page cache memory.", MetricType::kGauge,
          it->second);
    }
    if (auto swap = readNumber(dir + "/memory.swap.current", unlimited)) {
      add("container_memory_swap", "Container swap usage in bytes.", MetricType::kGauge, *swap);
    }
    // Limits: "max" means none; cAdvisor exports an unlimited memory limit as 0 and no quota.
    const auto limit = readNumber(dir + "/memory.max", unlimited);
    if (limit || unlimited) {
      add("container_spec_memory_limit_bytes", "Memory limit for the container.",
          MetricType::kGauge, limit.value_or(0));
    }
    std::string text;
    if (readText(dir + "/cpu.max", text)) {
      std::vector<std::string_view> f;
      splitFields(std::string_view(text).substr(0, text.find('\n')), f);
      if (f.size() == 2) {
        if (auto period = parseDouble(f[1])) {
          add("container_spec_cpu_period", "CPU period of the container.", MetricType::kGauge,
              *period);
        }
        if (auto quota = parseDouble(f[0])) {
          add("container_spec_cpu_quota", "CPU quota of the container.", MetricType::kGauge,
              *quota);
        }
      }
    }
    if (readText(dir + "/io.stat", text)) {
      std::vector<std::string_view> f;
      forEachLine(text, [&](std::string_view line) {
        splitFields(line, f);
        if (f.empty()) {
          return;
        }
        const std::string majmin(f[0]);
        auto dev = devices_.find(majmin);
        const std::string device = dev != devices_.end() ? "/dev/" + dev->second : majmin;
        for (std::size_t i = 1; i < f.size(); ++i) {
          auto eq = f[i].find('=');
          if (eq == std::string_view::npos) {
            continue;
          }
          const std::string_view key = f[i].substr(0, eq);
          auto v = parseDouble(f[i].substr(eq + 1));
          if (!v) {
            continue;
          }
          if (key == "rbytes") {
            add("container_fs_reads_bytes_total", "Cumulative count of bytes read",
                MetricType::kCounter, *v, {{"device", device}});
          } else if (key == "wbytes") {
            add("container_fs_writes_bytes_total", "Cumulative count of bytes written",
                MetricType::kCounter, *v, {{"device", device}});
          } else if (key == "rios") {
            add("container_fs_reads_total", "Cumulative count of reads completed",
                MetricType::kCounter, *v, {{"device", device}});
          } else if (key == "wios") {
            add("container_fs_writes_total", "Cumulative count of writes completed",
                MetricType::kCounter, *v, {{"device", device}});
          }
        }
      });
    }
  }

  std::string sysfs_;
  ProcFile diskstats_;
  std::map<std::string, std::string> devices_;
  std::unique_ptr<PodDiscovery> pods_;                    // null without `kubernetes`
  std::shared_ptr<const PodDiscovery::Listing> listing_;  // what the maps point into
  std::unordered_map<std::string, const PodInfo*> pod_by_uid_;
  std::unordered_map<std::string, const PodInfo::Container*> container_by_id_;
};

}  // namespace

Result<CollectorPtr> makeCgroupCollector(const CollectorSettings& settings,
                                         const HostPaths& paths) {
  return CollectorPtr(std::make_unique<CgroupCollector>(paths, settings.kubernetes));
}

}  // namespace vigil::collectors
