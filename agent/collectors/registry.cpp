// The one place that lists every collector built into vigil.
#include "container/cgroup_collector.h"
#include "cost/cost_collector.h"
#include "node/node_collectors.h"
#include "process/process_collector.h"
#include "push/push_collector.h"
#include "push/statsd_collector.h"
#include "service/postgres_collector.h"
#include "service/probe_collector.h"
#include "service/redis_collector.h"
#include "service/scrape_collector.h"
#include "vigil/collector.h"

namespace vigil {

const std::vector<CollectorFactory>& builtinCollectors() {
  namespace node = collectors::node;
  static const std::vector<CollectorFactory> kFactories = {
      {"cpu", true, "CPU time per CPU and mode (/proc/stat)", node::makeCpuCollector},
      {"meminfo", true, "memory statistics (/proc/meminfo)", node::makeMeminfoCollector},
      {"loadavg", true, "load averages (/proc/loadavg)", node::makeLoadavgCollector},
      {"stat", true, "context switches, interrupts, forks, boot time (/proc/stat)",
       node::makeStatCollector},
      {"vmstat", true, "paging and OOM-kill counters (/proc/vmstat)", node::makeVmstatCollector},
      {"filefd", true, "file descriptor use (/proc/sys/fs/file-nr)", node::makeFilefdCollector},
      {"pressure", true, "pressure stall information (/proc/pressure)",
       node::makePressureCollector},
      {"netdev", true, "network device counters (/proc/net/dev)", node::makeNetdevCollector},
      {"netclass", true, "network device properties (/sys/class/net)", node::makeNetclassCollector},
      {"netstat", true, "TCP/IP protocol counters (/proc/net/netstat, snmp, snmp6)",
       node::makeNetstatCollector},
      {"sockstat", true, "socket use (/proc/net/sockstat)", node::makeSockstatCollector},
      {"conntrack", true, "connection tracking table (nf_conntrack)", node::makeConntrackCollector},
      {"diskstats", true, "block device I/O (/proc/diskstats)", node::makeDiskstatsCollector},
      {"filesystem", true, "mounted file system space and inodes (statfs)",
       node::makeFilesystemCollector},
      {"uname", true, "kernel and host name (uname(2))", node::makeUnameCollector},
      {"time", true, "system clock, time zone and clocksource", node::makeTimeCollector},
      {"os", true, "operating system release (/etc/os-release)", node::makeOsCollector},
      {"timex", true, "clock synchronisation (adjtimex(2))", node::makeTimexCollector},
      {"entropy", true, "the kernel's entropy pool (/proc/sys/kernel/random)",
       node::makeEntropyCollector},
      {"softnet", true, "packets the network softirq processed, dropped, ran out of budget on",
       node::makeSoftnetCollector},
      {"udp_queues", true, "bytes queued on UDP sockets (/proc/net/udp, udp6)",
       node::makeUdpQueuesCollector},
      {"arp", true, "ARP table entries per device (/proc/net/arp)", node::makeArpCollector},
      {"schedstat", true, "time CPUs ran tasks and tasks waited for them (/proc/schedstat)",
       node::makeSchedstatCollector},
      {"cpufreq", true, "CPU frequencies (/sys/devices/system/cpu/cpuN/cpufreq)",
       node::makeCpufreqCollector},
      {"hwmon", true,
       "temperatures, fans, voltages and power of hardware monitors (/sys/class/hwmon)",
       node::makeHwmonCollector},
      {"dmi", true, "the machine's vendor, model and firmware (/sys/class/dmi/id)",
       node::makeDmiCollector},
      {"thermal_zone", true, "thermal zones and cooling devices (/sys/class/thermal)",
       node::makeThermalZoneCollector},
      {"edac", true, "corrected and uncorrected memory errors (/sys/devices/system/edac)",
       node::makeEdacCollector},
      {"nvme", true, "NVMe controllers and their state (/sys/class/nvme)", node::makeNvmeCollector},
      {"rapl", true, "energy used by CPU packages, cores and DRAM (/sys/class/powercap)",
       node::makeRaplCollector},
      {"textfile",
       true,
       "metrics from *.prom files in `directory`, as node_exporter's textfile collector",
       node::makeTextfileCollector,
       {CollectorOption::kDirectory}},
      {"cgroup",
       true,
       "containers and services from cgroup v2 (cAdvisor names); with `kubernetes`, named by "
       "namespace, pod and container",
       collectors::makeCgroupCollector,
       {CollectorOption::kKubernetes}},
      {"cost",
       true,
       "what this node costs (OpenCost's node_*_hourly_cost) from `pricing` and its vCPUs and "
       "memory; with `kubernetes`, the node's class from its labels and each running "
       "container's allocation, cost, idle cost and right-sizing",
       collectors::makeCostCollector,
       {CollectorOption::kPricing, CollectorOption::kKubernetes}},
      {"process", true, "vigil's own CPU, memory and file descriptors",
       collectors::makeProcessCollector},
      {"push", true, "metrics pushed to /metrics/job/JOB/... (Pushgateway-style)",
       collectors::makePushCollector},
      {"statsd",
       true,
       "StatsD/DogStatsD metrics received on UDP `listen_address`",
       collectors::makeStatsdCollector,
       {CollectorOption::kListenAddress}},
      {"postgres",
       true,
       "PostgreSQL servers in `targets` (libpq; postgres_exporter names)",
       collectors::makePostgresCollector,
       {CollectorOption::kTargets},
       true},
      {"probe",
       true,
       "HTTP(S) and TCP probes in `probes` (blackbox_exporter names, certificate expiry)",
       collectors::makeProbeCollector,
       {CollectorOption::kProbes},
       true},
      {"scrape",
       true,
       "Prometheus endpoints in `scrape_configs` (static targets, Prometheus's semantics)",
       collectors::makeScrapeCollector,
       {CollectorOption::kScrapeConfigs},
       true},
      {"redis",
       true,
       "Redis servers in `targets` (INFO over RESP; redis_exporter names)",
       collectors::makeRedisCollector,
       {CollectorOption::kTargets},
       true},
  };
  return kFactories;
}

std::vector<CollectorInfo> builtinCollectorInfo() {
  std::vector<CollectorInfo> out;
  for (const auto& f : builtinCollectors()) {
    out.push_back({f.name, f.enabled_by_default, f.options});
  }
  return out;
}

}  // namespace vigil
