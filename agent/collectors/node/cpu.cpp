// node_cpu_seconds_total and node_cpu_guest_seconds_total from /proc/stat.
#include <unistd.h>

#include <array>
#include <map>

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
    std::map<int, CpuTimes> seen;
    forEachLine(buf_, [&](std::string_view line) {
      if (line.size() < 4 || line.compare(0, 3, "cpu") != 0 || line[3] == ' ') {
        return;  // the aggregate "cpu " line and non-cpu lines
      }
      splitFields(line, fields_);
      auto id = parseUnsigned(fields_[0].substr(3));
      if (!id || fields_.size() < 9) {
        return;
      }
      CpuTimes t;
      for (std::size_t i = 0; i < kModes.size(); ++i) {
        t.modes[i] =
            parseDouble(fields_[i + 1]).value_or(0) / static_cast<double>(ticks_per_second_);
      }
      if (fields_.size() > 10) {
        t.guest = parseDouble(fields_[9]).value_or(0) / static_cast<double>(ticks_per_second_);
        t.guest_nice =
            parseDouble(fields_[10]).value_or(0) / static_cast<double>(ticks_per_second_);
      }
      seen[static_cast<int>(*id)] = t;
    });
    if (seen.empty()) {
      return invalidArgument(stat_->path() + ": no per-CPU lines");
    }
    updateCache(seen);

    auto& seconds = out.family("node_cpu_seconds_total", "Seconds the CPUs spent in each mode.",
                               MetricType::kCounter);
    auto& guest =
        out.family("node_cpu_guest_seconds_total",
                   "Seconds the CPUs spent in guests (VMs) for each mode.", MetricType::kCounter);
    for (const auto& [cpu, t] : cache_) {
      std::string cpu_label = std::to_string(cpu);
      for (std::size_t i = 0; i < kModes.size(); ++i) {
        MetricBatch::add(seconds, {{"cpu", cpu_label}, {"mode", kModes[i]}}, t.modes[i]);
      }
      MetricBatch::add(guest, {{"cpu", cpu_label}, {"mode", "nice"}}, t.guest_nice);
      MetricBatch::add(guest, {{"cpu", cpu_label}, {"mode", "user"}}, t.guest);
    }
    return Status::ok();
  }

 private:
  // Counters exported to Prometheus must never go backwards, but the kernel's iowait can; keep
  // the highest value seen per field, as node_exporter does.
  void updateCache(const std::map<int, CpuTimes>& current) {
    for (auto it = cache_.begin(); it != cache_.end();) {
      it = current.count(it->first) != 0 ? std::next(it) : cache_.erase(it);
    }
    for (const auto& [cpu, now] : current) {
      auto [it, inserted] = cache_.try_emplace(cpu, now);
      if (inserted) {
        continue;
      }
      CpuTimes& old = it->second;
      if (old.modes[3] - now.modes[3] >= kJumpBackSeconds) {
        old = now;
        continue;
      }
      for (std::size_t i = 0; i < now.modes.size(); ++i) {
        old.modes[i] = std::max(old.modes[i], now.modes[i]);
      }
      old.guest = std::max(old.guest, now.guest);
      old.guest_nice = std::max(old.guest_nice, now.guest_nice);
    }
  }

  std::shared_ptr<SharedProcFile> stat_;
  long ticks_per_second_;
  std::string buf_;
  std::vector<std::string_view> fields_;
  std::map<int, CpuTimes> cache_;
};

}  // namespace

Result<CollectorPtr> makeCpuCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<CpuCollector>(paths));
}

}  // namespace vigil::collectors::node
