// CPU time of the container collector per cycle on a node of a given size:
//
//   build/bench/cgroup_bench [PODS] [CONTAINERS_PER_POD] [SERVICES] [CYCLES] [PAUSE_MS]
//
// Builds a cgroup v2 tree as a Kubernetes node with the systemd driver has it (defaults: 50
// burstable pods of 2 containers each, 20 system services), with each cgroup's directory
// holding the files a real one does, in a temporary directory, and runs the collector over it
// as the scheduler does (one batch, recycled), printing its CPU time per cycle and per cgroup.
// The files are regular files, not the kernel's, so the figure is vigil's own work and the
// system calls it makes, not the kernel's cost of producing cgroup statistics. With PAUSE_MS
// (say 1000) the caches go cold between cycles as they do between real ones.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "vigil/collector.h"

namespace {

namespace fs = std::filesystem;

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

void write(const fs::path& file, const std::string& text) { std::ofstream(file) << text; }

// The files of one cgroup: the statistics the collector reads, with realistic sizes, and the
// others a cgroup directory lists.
void makeCgroup(const fs::path& dir, int n) {
  fs::create_directories(dir);
  const std::string k = std::to_string(n);
  write(dir / "cpu.stat", "usage_usec 25000" + k + "\nuser_usec 15000" + k + "\nsystem_usec 10000" +
                              k +
                              "\ncore_sched.force_idle_usec 0\nnr_periods 100\nnr_throttled "
                              "7\nthrottled_usec 350000\nnr_bursts 0\nburst_usec 0\n");
  write(dir / "memory.current", "10485" + k + "\n");
  write(dir / "memory.max", n % 3 == 0 ? "max\n" : "536870912\n");
  write(dir / "memory.swap.current", "0\n");
  write(dir / "cpu.max", n % 2 == 0 ? "max 100000\n" : "50000 100000\n");
  write(dir / "io.stat", "8:0 rbytes=40960" + k +
                             " wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n253:0 rbytes=4096 " +
                             "wbytes=81920 rios=10 wios=20 dbytes=0 dios=0\n");
  std::string stat;
  for (const char* key : {"anon",
                          "file",
                          "kernel",
                          "kernel_stack",
                          "pagetables",
                          "sec_pagetables",
                          "percpu",
                          "sock",
                          "vmalloc",
                          "shmem",
                          "zswap",
                          "zswapped",
                          "file_mapped",
                          "file_dirty",
                          "file_writeback",
                          "swapcached",
                          "anon_thp",
                          "file_thp",
                          "shmem_thp",
                          "inactive_anon",
                          "active_anon",
                          "inactive_file",
                          "active_file",
                          "unevictable",
                          "slab_reclaimable",
                          "slab_unreclaimable",
                          "slab",
                          "workingset_refault_anon",
                          "workingset_refault_file",
                          "workingset_activate_anon",
                          "workingset_activate_file",
                          "workingset_restore_anon",
                          "workingset_restore_file",
                          "workingset_nodereclaim",
                          "pgscan",
                          "pgsteal",
                          "pgscan_kswapd",
                          "pgscan_direct",
                          "pgsteal_kswapd",
                          "pgsteal_direct",
                          "pgfault",
                          "pgmajfault",
                          "pgrefill",
                          "pgactivate",
                          "pgdeactivate",
                          "pglazyfree",
                          "pglazyfreed",
                          "zswpin",
                          "zswpout",
                          "thp_fault_alloc",
                          "thp_collapse_alloc"}) {
    stat += std::string(key) + " " + std::to_string(4096 * (n + 1)) + "\n";
  }
  write(dir / "memory.stat", stat);
  for (const char* other : {"cgroup.controllers", "cgroup.events",
                            "cgroup.freeze",      "cgroup.kill",
                            "cgroup.max.depth",   "cgroup.max.descendants",
                            "cgroup.pressure",    "cgroup.procs",
                            "cgroup.stat",        "cgroup.subtree_control",
                            "cgroup.threads",     "cgroup.type",
                            "cpu.idle",           "cpu.max.burst",
                            "cpu.pressure",       "cpu.weight",
                            "cpu.weight.nice",    "io.max",
                            "io.pressure",        "io.weight",
                            "memory.events",      "memory.events.local",
                            "memory.high",        "memory.low",
                            "memory.min",         "memory.numa_stat",
                            "memory.oom.group",   "memory.peak",
                            "memory.pressure",    "memory.reclaim",
                            "memory.swap.events", "memory.swap.high",
                            "memory.swap.max",    "pids.current",
                            "pids.events",        "pids.max",
                            "pids.peak"}) {
    write(dir / other, "0\n");
  }
}

std::string hex64(int n) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016x", n);
  return std::string(buf) + std::string(buf) + std::string(buf) + std::string(buf);
}

}  // namespace

int main(int argc, char** argv) {
  const int pods = argc > 1 ? std::atoi(argv[1]) : 50;
  const int containers = argc > 2 ? std::atoi(argv[2]) : 2;
  const int services = argc > 3 ? std::atoi(argv[3]) : 20;
  const int cycles = argc > 4 ? std::atoi(argv[4]) : 200;
  const int pause_ms = argc > 5 ? std::atoi(argv[5]) : 0;
  constexpr int kWarmUp = 10;

  const fs::path root =
      fs::temp_directory_path() / ("vigil-cgroup-bench-" + std::to_string(::getpid()));
  const fs::path cg = root / "sys/fs/cgroup";
  fs::create_directories(root / "proc");
  write(root / "proc/diskstats",
        "   8       0 sda 1 0 8 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n 253       0 dm-0 1 0 8 0 0 0 0 0 "
        "0 0 0 0 0 0 0 0 0\n");
  makeCgroup(cg, 0);
  const fs::path burstable = cg / "kubepods.slice/kubepods-burstable.slice";
  makeCgroup(cg / "system.slice", 0);
  makeCgroup(cg / "kubepods.slice", 0);
  makeCgroup(burstable, 0);
  int n = 1;
  for (int s = 0; s < services; ++s) {
    makeCgroup(cg / "system.slice" / ("service-" + std::to_string(s) + ".service"), n++);
  }
  for (int p = 0; p < pods; ++p) {
    char uid[64];
    std::snprintf(uid, sizeof uid, "%08x_1111_2222_3333_444455556666", p);
    const fs::path pod = burstable / ("kubepods-burstable-pod" + std::string(uid) + ".slice");
    makeCgroup(pod, n++);
    for (int c = 0; c < containers; ++c) {
      makeCgroup(pod / ("cri-containerd-" + hex64(p * 100 + c) + ".scope"), n++);
    }
  }

  vigil::HostPaths paths;
  paths.sysfs = (root / "sys").string();
  paths.procfs = (root / "proc").string();
  vigil::CollectorPtr collector;
  for (const auto& factory : vigil::builtinCollectors()) {
    if (factory.name == "cgroup") {
      vigil::CollectorSettings settings;
      settings.name = "cgroup";
      settings.enabled = true;
      auto made = factory.create(settings, paths);
      if (!made) {
        std::fprintf(stderr, "cgroup: %s\n", made.status().message().c_str());
        return 1;
      }
      collector = std::move(made).value();
    }
  }
  vigil::MetricBatch batch;
  double seconds = 0;
  for (int round = 0; round < kWarmUp + cycles; ++round) {
    const double start = threadCpuSeconds();
    batch.recycle();
    vigil::CollectContext ctx{std::chrono::steady_clock::now() + std::chrono::seconds(5), &paths};
    ctx.timestamp_ms = 1'700'000'000'000 + round * 1000LL;
    ctx.round = static_cast<uint64_t>(round) + 1;
    if (auto st = collector->collect(ctx, batch); !st.isOk()) {
      std::fprintf(stderr, "cgroup: %s\n", st.message().c_str());
      return 1;
    }
    if (round >= kWarmUp) {
      seconds += threadCpuSeconds() - start;
    }
    if (pause_ms > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
  }
  const int cgroups = 1 + services + pods * (1 + containers);  // and system.slice
  const double us = seconds / cycles * 1e6;
  std::printf(
      "cgroup  %9.1f us/cycle  %6.2f us/cgroup  %d cgroups  %zu series  (%d cycles, %d ms "
      "apart)\n",
      us, us / cgroups, cgroups, batch.seriesCount(), cycles, pause_ms);
  std::printf("        %.3f %% of a core at a 1 s interval\n", us / 1e6 * 100);
  fs::remove_all(root);
  return 0;
}
