// node_cpu_frequency_* and node_cpu_scaling_frequency_* from
// /sys/devices/system/cpu/cpuN/cpufreq (kHz there, hertz here). Virtual machines usually have
// no cpufreq at all: then there is nothing to report.
#include <dirent.h>

#include <algorithm>
#include <array>

#include "../common/proc_file.h"
#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

struct Frequency {
  const char* file;
  const char* name;
  const char* help;
};
constexpr std::array<Frequency, 6> kFrequencies{{
    {"cpuinfo_cur_freq", "node_cpu_frequency_hertz", "Current cpu thread frequency in hertz."},
    {"cpuinfo_max_freq", "node_cpu_frequency_max_hertz", "Maximum cpu thread frequency in hertz."},
    {"cpuinfo_min_freq", "node_cpu_frequency_min_hertz", "Minimum cpu thread frequency in hertz."},
    {"scaling_cur_freq", "node_cpu_scaling_frequency_hertz",
     "Current scaled CPU thread frequency in hertz."},
    {"scaling_max_freq", "node_cpu_scaling_frequency_max_hertz",
     "Maximum scaled CPU thread frequency in hertz."},
    {"scaling_min_freq", "node_cpu_scaling_frequency_min_hertz",
     "Minimum scaled CPU thread frequency in hertz."},
}};

class CpufreqCollector final : public Collector {
 public:
  explicit CpufreqCollector(const HostPaths& paths)
      : cpu_dir_(joinPath(paths.sysfs, "devices/system/cpu")) {}

  Status collect(const CollectContext&, MetricBatch& out) override {
    if (listing_.due()) {
      relist();
    }
    std::array<MetricFamily*, kFrequencies.size()> families{};
    for (Cpu& cpu : cpus_) {
      for (std::size_t i = 0; i < kFrequencies.size(); ++i) {
        // A file that is missing or unreadable (cpuinfo_cur_freq is root's only) or holds no
        // number: that series is absent, the others are still reported.
        const auto khz = readNumber(*cpu.files[i], buf_);
        if (!khz) {
          continue;
        }
        if (families[i] == nullptr) {
          families[i] = &out.family(kFrequencies[i].name, kFrequencies[i].help, MetricType::kGauge);
        }
        MetricBatch::add(*families[i], {{"cpu", cpu.label}}, *khz * 1000);
      }
    }
    return Status::ok();
  }

 private:
  struct Cpu {
    unsigned number = 0;
    std::string label;
    std::array<std::unique_ptr<ProcFile>, kFrequencies.size()> files;
  };

  // The cpuN directories with a cpufreq directory, in CPU order. The files of CPUs still
  // there stay open.
  void relist() {
    std::vector<unsigned> found;
    if (DIR* dir = ::opendir(cpu_dir_.c_str())) {
      while (const dirent* entry = ::readdir(dir)) {
        const std::string_view name = entry->d_name;
        if (name.size() < 4 || name.rfind("cpu", 0) != 0) {
          continue;
        }
        const auto number = parseUnsigned(name.substr(3));
        if (!number || *number > 1'000'000) {
          continue;  // cpufreq, cpuidle, and nothing a kernel would name a CPU
        }
        const std::string policy = cpu_dir_ + "/" + std::string(name) + "/cpufreq";
        if (DIR* sub = ::opendir(policy.c_str())) {
          ::closedir(sub);
          found.push_back(static_cast<unsigned>(*number));
        }
      }
      ::closedir(dir);
    }
    std::sort(found.begin(), found.end());
    std::vector<Cpu> next;
    next.reserve(found.size());
    for (unsigned number : found) {
      auto kept = std::find_if(cpus_.begin(), cpus_.end(),
                               [&](const Cpu& c) { return c.number == number && c.files[0]; });
      if (kept != cpus_.end()) {
        next.push_back(std::move(*kept));
        continue;
      }
      Cpu cpu;
      cpu.number = number;
      cpu.label = std::to_string(number);
      const std::string policy = cpu_dir_ + "/cpu" + cpu.label + "/cpufreq/";
      for (std::size_t i = 0; i < kFrequencies.size(); ++i) {
        cpu.files[i] = std::make_unique<ProcFile>(policy + kFrequencies[i].file);
      }
      next.push_back(std::move(cpu));
    }
    cpus_ = std::move(next);
  }

  std::string cpu_dir_;
  std::vector<Cpu> cpus_;
  // CPUs (and their cpufreq policies) come and go only with hotplug: listed again now and then,
  // not every cycle.
  PeriodicListing listing_;
  std::string buf_;
};

}  // namespace

Result<CollectorPtr> makeCpufreqCollector(const CollectorSettings&, const HostPaths& paths) {
  return CollectorPtr(std::make_unique<CpufreqCollector>(paths));
}

}  // namespace vigil::collectors::node
