// node_cpu_seconds_total and node_cpu_guest_seconds_total from /proc/stat.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

// /proc/stat cpuN columns, in kernel order.
constexpr std::array<const char*, 8> kModes{"user",   "nice", "system",  "idle",
                                            "iowait", "irq",  "softirq", "steal"};
// A drop of idle time this large means the CPU was hot-unplugged and came back: its counters
// restarted, so the cache is reset instead of holding the old values forever (node_exporter's
// jumpBackSeconds).
constexpr double kJumpBackSeconds = 3.0;
// Linux's largest NR_CPUS.
constexpr std::size_t kMaxKeptLabels = 8192;

struct CpuTimes {
  std::array<double, 8> modes{};
  double guest = 0;
  double guest_nice = 0;
};

class CpuCollector final : public Collector {
 public:
  explicit CpuCollector(const HostPaths& paths)
      : stat_(SharedProcFile::forPath(joinPath(paths.procfs, "stat"))),
        ticks_per_second_(sysconf(_SC_CLK_TCK)) {
    if (ticks_per_second_ <= 0) {
      ticks_per_second_ = 100;
    }
  }

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    VIGIL_RETURN_IF_ERROR(stat_->read(ctx.round, buf_));
    // Kept between cycles, like the labels below: on a host with a hundred CPUs, a map node
    // and a label string per CPU every cycle added up.
    seen_.clear();
    forEachLine(buf_, [&](std::string_view line) {
      if (line.size() < 4 || line.compare(0, 3, "cpu") != 0 || line[3] == ' ') {
        return;  // the aggregate "cpu " line and non-cpu lines
      }
      splitFields(line, fields_);
      auto id = parseUnsigned(fields_[0].substr(3));
      if (!id || fields_.size() < 9 || *id > std::numeric_limits<int>::max()) {
        return;
      }
      CpuTimes& t = seen_.emplace_back(static_cast<int>(*id), CpuTimes{}).second;
      for (std::size_t i = 0; i < kModes.size(); ++i) {
        t.modes[i] =
            parseDouble(fields_[i + 1]).value_or(0) / static_cast<double>(ticks_per_second_);
      }
      if (fields_.size() > 10) {
        t.guest = parseDouble(fields_[9]).value_or(0) / static_cast<double>(ticks_per_second_);
        t.guest_nice =
            parseDouble(fields_[10]).value_or(0) / static_cast<double>(ticks_per_second_);
      }
    });
    if (seen_.empty()) {
      return invalidArgument(stat_->path() + ": no per-CPU lines");
    }
    // The kernel lists CPUs in order; sorted anyway, by id, the order they are reported in,
    // and a CPU listed twice (a damaged file) is reported once, as its first line has it.
    if (!std::is_sorted(seen_.begin(), seen_.end(), byCpu)) {
      std::stable_sort(seen_.begin(), seen_.end(), byCpu);
    }
    seen_.erase(std::unique(seen_.begin(), seen_.end(),
                            [](const Times& a, const Times& b) { return a.first == b.first; }),
                seen_.end());
    keepHighest();

    auto& seconds = out.family("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.",
                               MetricType::kCounter);
    auto& guest =
        out.family("node_cpu_guest_seconds_total",
                   "Seconds the CPUs spent in guests (VMs) for each mode.", MetricType::kCounter);
    for (const auto& [cpu, t] : cache_) {
      const std::string& cpu_label = labelOf(cpu);
      for (std::size_t i = 0; i < kModes.size(); ++i) {
        MetricBatch::add(seconds, {{"cpu", cpu_label}, {"mode", kModes[i]}}, t.modes[i]);
      }
      MetricBatch::add(guest, {{"cpu", cpu_label}, {"mode", "nice"}}, t.guest_nice);
      MetricBatch::add(guest, {{"cpu", cpu_label}, {"mode", "user"}}, t.guest);
    }
    return Status::ok();
  }

 private:
  using Times = std::pair<int, CpuTimes>;
  static bool byCpu(const Times& a, const Times& b) { return a.first < b.first; }

  // Ids past the largest the kernel supports are not kept: a damaged file must not grow this.
  const std::string& labelOf(int cpu) {
    const auto index = static_cast<std::size_t>(cpu);
    if (index >= kMaxKeptLabels) {
      scratch_label_ = std::to_string(cpu);
      return scratch_label_;
    }
    while (labels_.size() <= index) {
      labels_.push_back(std::to_string(labels_.size()));
    }
    return labels_[index];
  }

  // Counters exported to Prometheus must never go backwards, but the kernel's iowait can; keep
  // the highest value seen per field, as node_exporter does. This cycle's list takes last
  // cycle's highest values of the same CPUs (both are sorted by CPU) and becomes the cache: a
  // CPU gone offline drops out, one new or back starts from its values.
  void keepHighest() {
    std::size_t k = 0;
    for (auto& [cpu, now] : seen_) {
      while (k < cache_.size() && cache_[k].first < cpu) {
        ++k;
      }
      if (k == cache_.size() || cache_[k].first != cpu) {
        continue;
      }
      const CpuTimes& old = cache_[k].second;
      if (old.modes[3] - now.modes[3] >= kJumpBackSeconds) {
        continue;  // re-plugged: its counters started over
      }
      for (std::size_t i = 0; i < now.modes.size(); ++i) {
        now.modes[i] = std::max(old.modes[i], now.modes[i]);
      }
      now.guest = std::max(old.guest, now.guest);
      now.guest_nice = std::max(old.guest_nice, now.guest_nice);
    }
    std::swap(cache_, seen_);  // both keep their storage for the next cycle
  }

  std::shared_ptr<SharedProcFile> stat_;
  long ticks_per_second_;
  std::string buf_;
  std::vector<std::string_view> fields_;
  std::vector<Times> seen_;          // this cycle's, by CPU
  std::vector<Times> cache_;         // the highest of each field so far, by CPU
  std::vector<std::string> labels_;  // "0", "1", ... by CPU id
  std::string scratch_label_;
};

}  // namespace

Result<CollectorPtr> makeCpuCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<CpuCollector>(paths));
}

}  // namespace vigil::collectors::node
