// Resource use of containers and services from cgroup v2: pods and their containers under
// kubepods (systemd and cgroupfs drivers), and outside Kubernetes the top-level cgroups and the
// services in top-level slices, so that a plain host's system.slice/*.service show up too.
// Names and formulas follow cAdvisor (memory working set = memory.current - inactive_file,
// floored at 0).
#include "cgroup_collector.h"

#include <array>
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

// How often the cgroup tree is listed again when nothing said it changed, and how often a
// cgroup's limits are read (cAdvisor reads a container's spec when it starts; a limit changed
// in place shows within this many cycles).
constexpr int kRelistEvery = 60;
constexpr int kLimitsEvery = 60;

// The keys of a "key value" file (cpu.stat, memory.stat) that the collector uses, found
// without building a map of the file's every line: memory.stat has some 50.
template <std::size_t N>
void readKeys(std::string_view text, const std::array<std::string_view, N>& keys,
              std::array<std::optional<double>, N>& out) {
  out = {};
  forEachLine(text, [&](std::string_view line) {
    const auto space = line.find(' ');
    if (space == std::string_view::npos) {
      return;
    }
    const std::string_view key = line.substr(0, space);
    for (std::size_t i = 0; i < N; ++i) {
      if (key == keys[i]) {
        out[i] = parseDouble(line.substr(space + 1));
        return;
      }
    }
  });
}

constexpr std::array<std::string_view, 6> kCpuKeys = {
    "usage_usec", "user_usec", "system_usec", "nr_periods", "nr_throttled", "throttled_usec"};
constexpr std::array<std::string_view, 3> kMemoryKeys = {"anon", "file", "inactive_file"};

// A number file's value: nullopt if unreadable or not a number; `unlimited` for "max".
std::optional<double> parseNumber(std::string_view v, bool& unlimited) {
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) {
    v.remove_suffix(1);
  }
  unlimited = v == "max";
  return unlimited ? std::nullopt : parseDouble(v);
}

LabelSet sorted(LabelSet labels) {
  std::sort(labels.begin(), labels.end());
  return labels;
}

// One cgroup as the collector keeps it between cycles: its statistics files open (re-read
// with pread, one system call each instead of a path lookup, open, read and close), its label
// sets made once, and its limits as last read.
struct TrackedCgroup {
  TrackedCgroup(const std::string& dir, std::string rel_path)
      : rel(std::move(rel_path)),
        limits_dir(dir),
        cpu_stat(dir + "/cpu.stat"),
        memory_current(dir + "/memory.current"),
        memory_stat(dir + "/memory.stat"),
        memory_swap(dir + "/memory.swap.current"),
        io_stat(dir + "/io.stat") {}

  std::string rel;  // below the cgroup root, as the id label has it
  std::string limits_dir;
  ProcFile cpu_stat, memory_current, memory_stat, memory_swap, io_stat;

  const void* labelled_for = nullptr;  // the pod listing the labels were made with
  bool labelled = false;
  bool reported = true;  // false: a pod's sandbox (pause) container, left out
  LabelSet labels;       // sorted, as MetricBatch::addCopyOf wants them
  LabelSet cpu_total;    // labels and cpu="total"
  struct Device {
    std::string majmin;
    LabelSet labels;  // labels and device
  };
  std::vector<Device> devices;  // as io.stat has named them

  int limits_age = kLimitsEvery;  // cycles since the limits were read
  std::optional<double> memory_limit;
  bool memory_unlimited = false;
  std::optional<double> cpu_period, cpu_quota;
};

// The families the collector fills, in the order it first fills them.
enum Family : std::size_t {
  kCpuUsage,
  kCpuUser,
  kCpuSystem,
  kCfsPeriods,
  kCfsThrottledPeriods,
  kCfsThrottledSeconds,
  kMemoryUsage,
  kWorkingSet,
  kMemoryRss,
  kMemoryCache,
  kMemorySwap,
  kMemoryLimit,
  kCpuPeriod,
  kCpuQuota,
  kFsReadBytes,
  kFsWriteBytes,
  kFsReads,
  kFsWrites,
  kFamilies
};

struct FamilyInfo {
  const char* name;
  const char* help;
  MetricType type;
};

constexpr FamilyInfo kFamilyInfo[kFamilies] = {
    {"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.",
     MetricType::kCounter},
    {"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.",
     MetricType::kCounter},
    {"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.",
     MetricType::kCounter},
    {"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.",
     MetricType::kCounter},
    {"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.",
     MetricType::kCounter},
    {"container_cpu_cfs_throttled_seconds_total",
     "Total time duration the container has been throttled.", MetricType::kCounter},
    {"container_memory_usage_bytes",
     "Current memory usage in bytes, including all memory regardless of when it was accessed",
     MetricType::kGauge},
    {"container_memory_working_set_bytes", "Current working set in bytes.", MetricType::kGauge},
    {"container_memory_rss", "Size of RSS in bytes.", MetricType::kGauge},
    {"container_memory_cache", "Number of bytes of page cache memory.", MetricType::kGauge},
    {"container_memory_swap", "Container swap usage in bytes.", MetricType::kGauge},
    {"container_spec_memory_limit_bytes", "Memory limit for the container.", MetricType::kGauge},
    {"container_spec_cpu_period", "CPU period of the container.", MetricType::kGauge},
    {"container_spec_cpu_quota", "CPU quota of the container.", MetricType::kGauge},
    {"container_fs_reads_bytes_total", "Cumulative count of bytes read", MetricType::kCounter},
    {"container_fs_writes_bytes_total", "Cumulative count of bytes written", MetricType::kCounter},
    {"container_fs_reads_total", "Cumulative count of reads completed", MetricType::kCounter},
    {"container_fs_writes_total", "Cumulative count of writes completed", MetricType::kCounter},
};

class CgroupCollector final : public Collector {
 public:
  CgroupCollector(const HostPaths& paths, const std::optional<KubernetesSdConfig>& kubernetes)
      : sysfs_(paths.sysfs), diskstats_(joinPath(paths.procfs, "diskstats")) {
    if (kubernetes) {
      pods_ = std::make_unique<PodDiscovery>(*kubernetes);
    }
  }

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    loadPodNames(ctx.deadline);
    if (relistDue()) {
      relist();
    }
    if (root_.empty()) {
      return Status::ok();  // no cgroup v2 here: nothing to report
    }
    families_ = {};
    devices_looked_up_ = false;
    for (std::size_t i = 0; i < tracked_.size(); ++i) {
      if ((i & 63) == 63 && std::chrono::steady_clock::now() > ctx.deadline) {
        return Status(StatusCode::kDeadlineExceeded, "stopped after " + std::to_string(i) + " of " +
                                                         std::to_string(tracked_.size()) +
                                                         " cgroups");
      }
      collectOne(*tracked_[i], out);
    }
    return Status::ok();
  }

 private:
  // Whether to list the tree again: on the first cycle, when the root's cgroup.stat (its
  // count of descendants, which every cgroup made or removed changes) is not what it was, when
  // a cgroup went away, and every kRelistEvery cycles whatever they say.
  bool relistDue() {
    bool due = relist_ || --relist_left_ <= 0;
    relist_ = false;
    if (!root_.empty()) {
      if (!root_stat_ || !root_stat_->tryRead(scratch_)) {
        due = true;  // no cgroup.stat (a recorded tree): nothing tells a change, list always
      } else if (scratch_ != root_stat_text_) {
        root_stat_text_.swap(scratch_);
        due = true;
      }
    }
    return due;
  }

  void relist() {
    relist_left_ = kRelistEvery;
    const std::string root = findRoot();
    if (root != root_) {
      root_ = root;
      tracked_.clear();
      root_stat_ = root.empty() ? nullptr : std::make_unique<ProcFile>(root + "/cgroup.stat");
      root_stat_text_.clear();
      if (root_stat_) {
        (void)root_stat_->read(root_stat_text_);
      }
    }
    if (root_.empty()) {
      return;
    }
    loadDeviceNames();
    std::vector<std::string> found;
    walk(root_, "", 0, found);
    std::unordered_map<std::string_view, std::unique_ptr<TrackedCgroup>> kept;
    for (auto& t : tracked_) {
      kept.emplace(t->rel, std::move(t));
    }
    std::vector<std::unique_ptr<TrackedCgroup>> now;
    now.reserve(found.size());
    for (std::string& rel : found) {
      if (auto it = kept.find(rel); it != kept.end()) {
        now.push_back(std::move(it->second));
      } else {
        now.push_back(std::make_unique<TrackedCgroup>(root_ + rel, std::move(rel)));
      }
    }
    // `kept`'s keys view the cgroups it holds: those left go with it.
    tracked_ = std::move(now);
  }

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
    if (!diskstats_.tryRead(scratch_)) {
      return;
    }
    std::vector<std::string_view> f;
    forEachLine(scratch_, [&](std::string_view line) {
      splitFields(line, f);
      if (f.size() >= 3) {
        devices_[std::string(f[0]) + ":" + std::string(f[1])] = std::string(f[2]);
      }
    });
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

  // The cgroup's labels, made when it is first seen and again when the pod listing changes.
  void label(TrackedCgroup& t) {
    t.labelled = true;
    t.labelled_for = listing_.get();
    t.reported = true;
    t.devices.clear();
    LabelSet labels{{"id", t.rel}};
    const KubepodsPath k = parseKubepodsPath(t.rel);
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
            t.reported = false;
            return;
          }
          labels.push_back({"container", c->second->name});
          labels.push_back({"image", c->second->image});
        }
      }
    }
    t.labels = sorted(labels);
    labels.push_back({"cpu", "total"});
    t.cpu_total = sorted(std::move(labels));
  }

  MetricFamily& family(MetricBatch& out, Family f) {
    if (families_[f] == nullptr) {
      const FamilyInfo& info = kFamilyInfo[f];
      families_[f] = &out.family(info.name, info.help, info.type);
    }
    return *families_[f];
  }

  void add(MetricBatch& out, Family f, const LabelSet& labels, double v) {
    MetricBatch::addCopyOf(family(out, f), labels, v);
  }

  // The label set of `t`'s samples for the device `majmin` in io.stat.
  const LabelSet& deviceLabels(TrackedCgroup& t, std::string_view majmin) {
    for (const auto& d : t.devices) {
      if (d.majmin == majmin) {
        return d.labels;
      }
    }
    auto dev = devices_.find(std::string(majmin));
    if (dev == devices_.end() && !devices_looked_up_) {
      // A device added since the tree was listed: diskstats again, once a cycle at most.
      devices_looked_up_ = true;
      loadDeviceNames();
      dev = devices_.find(std::string(majmin));
    }
    LabelSet labels = t.labels;
    labels.push_back(
        {"device", dev != devices_.end() ? "/dev/" + dev->second : std::string(majmin)});
    t.devices.push_back({std::string(majmin), sorted(std::move(labels))});
    return t.devices.back().labels;
  }

  void readLimits(TrackedCgroup& t) {
    t.limits_age = 0;
    std::string text;
    bool unlimited = false;
    t.memory_limit.reset();
    t.memory_unlimited = false;
    if (ProcFile(t.limits_dir + "/memory.max").tryRead(text)) {
      t.memory_limit = parseNumber(text, unlimited);
      t.memory_unlimited = unlimited;
    }
    t.cpu_period.reset();
    t.cpu_quota.reset();
    if (ProcFile(t.limits_dir + "/cpu.max").tryRead(text)) {
      std::vector<std::string_view> f;
      splitFields(std::string_view(text).substr(0, text.find('\n')), f);
      if (f.size() == 2) {
        t.cpu_period = parseDouble(f[1]);
        t.cpu_quota = parseDouble(f[0]);
      }
    }
  }

  void collectOne(TrackedCgroup& t, MetricBatch& out) {
    if (!t.labelled || t.labelled_for != listing_.get()) {
      label(t);
    }
    if (!t.reported) {
      return;
    }
    if (++t.limits_age >= kLimitsEvery) {
      readLimits(t);
    }
    std::array<std::optional<double>, kCpuKeys.size()> cpu;
    if (t.cpu_stat.tryRead(scratch_)) {
      readKeys(scratch_, kCpuKeys, cpu);
    } else {
      // Every cgroup v2 directory has cpu.stat: this one has gone (or the tree is a recording
      // without it). The tree is listed again next cycle.
      relist_ = true;
      cpu = {};
    }
    if (cpu[0]) {
      add(out, kCpuUsage, t.cpu_total, *cpu[0] / 1e6);
    }
    constexpr std::pair<Family, double> kCpuFamilies[] = {{kCpuUser, 1e-6},
                                                          {kCpuSystem, 1e-6},
                                                          {kCfsPeriods, 1},
                                                          {kCfsThrottledPeriods, 1},
                                                          {kCfsThrottledSeconds, 1e-6}};
    for (std::size_t i = 1; i < kCpuKeys.size(); ++i) {
      if (cpu[i]) {
        add(out, kCpuFamilies[i - 1].first, t.labels, *cpu[i] * kCpuFamilies[i - 1].second);
      }
    }

    bool unlimited = false;
    std::optional<double> current;
    if (t.memory_current.tryRead(scratch_)) {
      current = parseNumber(scratch_, unlimited);
    }
    std::array<std::optional<double>, kMemoryKeys.size()> mem{};
    if (t.memory_stat.tryRead(scratch_)) {
      readKeys(scratch_, kMemoryKeys, mem);
    }
    if (current) {
      add(out, kMemoryUsage, t.labels, *current);
      add(out, kWorkingSet, t.labels, std::max(0.0, *current - mem[2].value_or(0)));
    }
    if (mem[0]) {
      add(out, kMemoryRss, t.labels, *mem[0]);
    }
    if (mem[1]) {
      add(out, kMemoryCache, t.labels, *mem[1]);
    }
    if (t.memory_swap.tryRead(scratch_)) {
      if (auto swap = parseNumber(scratch_, unlimited)) {
        add(out, kMemorySwap, t.labels, *swap);
      }
    }
    // Limits: "max" means none; cAdvisor exports an unlimited memory limit as 0 and no quota.
    if (t.memory_limit || t.memory_unlimited) {
      add(out, kMemoryLimit, t.labels, t.memory_limit.value_or(0));
    }
    if (t.cpu_period) {
      add(out, kCpuPeriod, t.labels, *t.cpu_period);
    }
    if (t.cpu_quota) {
      add(out, kCpuQuota, t.labels, *t.cpu_quota);
    }
    if (t.io_stat.tryRead(scratch_)) {
      forEachLine(scratch_, [&](std::string_view line) {
        splitFields(line, fields_);
        if (fields_.empty()) {
          return;
        }
        const LabelSet* labels = nullptr;
        for (std::size_t i = 1; i < fields_.size(); ++i) {
          auto eq = fields_[i].find('=');
          if (eq == std::string_view::npos) {
            continue;
          }
          const std::string_view key = fields_[i].substr(0, eq);
          const Family f = key == "rbytes"   ? kFsReadBytes
                           : key == "wbytes" ? kFsWriteBytes
                           : key == "rios"   ? kFsReads
                           : key == "wios"   ? kFsWrites
                                             : kFamilies;
          if (f == kFamilies) {
            continue;
          }
          auto v = parseDouble(fields_[i].substr(eq + 1));
          if (!v) {
            continue;
          }
          if (labels == nullptr) {
            labels = &deviceLabels(t, fields_[0]);
          }
          add(out, f, *labels, *v);
        }
      });
    }
  }

  std::string sysfs_;
  ProcFile diskstats_;
  std::map<std::string, std::string> devices_;            // "major:minor" to name, from diskstats
  bool devices_looked_up_ = false;                        // diskstats read again this cycle
  std::unique_ptr<PodDiscovery> pods_;                    // null without `kubernetes`
  std::shared_ptr<const PodDiscovery::Listing> listing_;  // what the maps point into
  std::unordered_map<std::string, const PodInfo*> pod_by_uid_;
  std::unordered_map<std::string, const PodInfo::Container*> container_by_id_;

  std::string root_;                                     // the cgroup v2 root; empty: none
  std::unique_ptr<ProcFile> root_stat_;                  // its cgroup.stat
  std::string root_stat_text_;                           // as last read
  std::vector<std::unique_ptr<TrackedCgroup>> tracked_;  // in the walk's order
  bool relist_ = true;                                   // list the tree next cycle
  int relist_left_ = 0;                                  // cycles until it is listed anyway
  std::array<MetricFamily*, kFamilies> families_{};      // this cycle's, once asked for
  std::string scratch_;
  std::vector<std::string_view> fields_;
};

}  // namespace

Result<CollectorPtr> makeCgroupCollector(const CollectorSettings& settings,
                                         const HostPaths& paths) {
  return CollectorPtr(std::make_unique<CgroupCollector>(paths, settings.kubernetes));
}

}  // namespace vigil::collectors
