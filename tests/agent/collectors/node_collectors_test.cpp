// glibc's <net/if.h> before any <linux/if*.h>, which then leave its definitions alone.
#include <net/if.h>

#include <fcntl.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "agent/collectors/common/rtnetlink.h"
#include "agent/collectors/container/cgroup_collector.h"
#include "agent/collectors/node/node_collectors.h"
#include "tests/support/collect.h"
#include "tests/support/network_namespace.h"
#include "tests/support/process.h"
#include "vigil/collector.h"
#include "vigil/exporters/text_format.h"

using namespace vigil;
using vigil::collectors::LinkAttributes;
using vigil::collectors::LinkDumper;

namespace {

const std::string kFixtures = VIGIL_FIXTURES "/node";

std::string readText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string collectText(Collector& c, const HostPaths& paths) {
  MetricBatch batch;
  CollectContext ctx{std::chrono::steady_clock::now() + std::chrono::seconds(5), &paths};
  Status st = c.collect(ctx, batch);
  INFO(st.toString());
  REQUIRE(st.isOk());
  std::string out;
  const MetricBatch* batches[] = {&batch};
  exporters::renderTextFormat(batches, out);
  return out;
}

// What a healthy mount's statfs gives in the filesystem tests (expected/filesystem.prom).
void answerStatfs(struct statfs& st) {
  st = {};
  st.f_bsize = 4096;
  st.f_blocks = 1000;
  st.f_bfree = 400;
  st.f_bavail = 300;
  st.f_files = 100;
  st.f_ffree = 60;
}

}  // namespace

TEST_CASE("Node collectors: recorded procfs gives node_exporter's exposition",
          "[agent][collectors][node]") {
  const HostPaths paths = test::nodeFixturePaths();
  for (const char* name : test::kFixtureNodeCollectors) {
    INFO("collector " << name);
    auto collector = test::makeBuiltinCollector(name, paths);
    std::string got = collectText(*collector, paths);
    if (std::string(name) == "time") {
      // The clock itself is live; only the clocksource series come from the fixture.
      CHECK_THAT(got,
                 Catch::Contains(
                     "node_time_clocksource_available_info{clocksource=\"hpet\",device=\"0\"} 1"));
      CHECK_THAT(got,
                 Catch::Contains(
                     "node_time_clocksource_current_info{clocksource=\"tsc\",device=\"0\"} 1"));
      CHECK_THAT(got, Catch::Contains("# TYPE node_time_seconds gauge"));
      continue;
    }
    // The first cycle and those after it, which reuse what the collector learnt of the files
    // (names by place, parsed headers, open files), give the same exposition.
    std::string expected = readText(kFixtures + "/expected/" + name + ".prom");
    // rapl's path label holds the sysfs root, wherever the tree is checked out.
    for (auto at = expected.find("@SYSFS@"); at != std::string::npos;
         at = expected.find("@SYSFS@", at)) {
      expected.replace(at, 7, paths.sysfs);
    }
    CHECK(got == expected);
    for (int cycle = 1; cycle < 3; ++cycle) {
      INFO("cycle " << cycle);
      CHECK(collectText(*collector, paths) == expected);
    }
  }
}

TEST_CASE("Node collectors: a missing source file means absent metrics, not a crash",
          "[agent][collectors][node]") {
  HostPaths empty;
  empty.procfs = kFixtures + "/does-not-exist";
  empty.sysfs = kFixtures + "/does-not-exist";
  // Pressure: kernels without PSI. The collector succeeds with nothing to report.
  auto pressure = test::makeBuiltinCollector("pressure", empty);
  CHECK(collectText(*pressure, empty).empty());
  // The same for the kernel's optional files: no schedstat without CONFIG_SCHEDSTATS, no
  // cpufreq in most virtual machines, no udp6 without IPv6.
  for (const char* name : {"entropy", "softnet", "udp_queues", "arp", "schedstat", "cpufreq",
                           "hwmon", "dmi", "thermal_zone", "edac", "nvme", "rapl"}) {
    INFO("collector " << name);
    auto collector = test::makeBuiltinCollector(name, empty);
    CHECK(collectText(*collector, empty).empty());
  }
  // Collectors whose whole source is gone report an error naming the file.
  auto cpu = test::makeBuiltinCollector("cpu", empty);
  MetricBatch batch;
  CollectContext ctx{std::chrono::steady_clock::now() + std::chrono::seconds(1), &empty};
  Status st = cpu->collect(ctx, batch);
  CHECK(st.code() == StatusCode::kNotFound);
  CHECK_THAT(st.message(), Catch::Contains("does-not-exist/stat"));
}

// A procfs written by the test, with its net/ directory: files are added as a case needs them.
struct WrittenProcfs {
  WrittenProcfs() {
    std::filesystem::create_directories(dir.file("net"));
    paths.procfs = dir.path();
  }
  vigil::test::TempDir dir;
  HostPaths paths;
};

TEST_CASE("Node collectors: a damaged softnet or UDP table is an error naming file and line",
          "[agent][collectors][node]") {
  WrittenProcfs procfs;
  vigil::test::TempDir& dir = procfs.dir;
  const HostPaths& paths = procfs.paths;
  auto failure = [&](const char* name) {
    auto collector = test::makeBuiltinCollector(name, paths);
    MetricBatch batch;
    CollectContext ctx{std::chrono::steady_clock::now() + std::chrono::seconds(1), &paths};
    return collector->collect(ctx, batch);
  };
  dir.write("net/softnet_stat",
            "0001e37c 00000002 00000011 00000000\n0001e37c zz 00000011 00000000\n");
  Status softnet = failure("softnet");
  CHECK(softnet.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(softnet.message(), Catch::Contains("net/softnet_stat: line 2"));
  dir.write("net/udp",
            "  sl  local_address rem_address   st tx_queue rx_queue\n"
            "   0: 00000000:0044 00000000:0000 07 00000100:00000a00 00\n"
            "   1: 00000000:0045 00000000:0000 07 00000100\n");
  Status udp = failure("udp_queues");
  CHECK(udp.code() == StatusCode::kInvalidArgument);
  CHECK_THAT(udp.message(), Catch::Contains("net/udp: line 3"));
  // Mended, both report again.
  dir.write("net/softnet_stat", "0001e37c 00000002 00000011 00000000\n");
  dir.write("net/udp",
            "  sl  local_address\n   0: 00000000:0044 00000000:0000 07 00000100:00000a00\n");
  CHECK(collectText(*test::makeBuiltinCollector("softnet", paths), paths)
            .find("node_softnet_processed_total{cpu=\"0\"} 123772") != std::string::npos);
  CHECK(collectText(*test::makeBuiltinCollector("udp_queues", paths), paths)
            .find("node_udp_queues{ip=\"v4\",queue=\"rx\"} 2560") != std::string::npos);
}

TEST_CASE("Node collectors: conntrack's entries come from either of the kernel's files",
          "[agent][collectors][node]") {
  // The statistics' "entries" column and nf_conntrack_count are one counter; a host whose
  // statistics cannot be read (a /proc that hides net/stat) still has the sysctl.
  WrittenProcfs procfs;
  vigil::test::TempDir& dir = procfs.dir;
  const HostPaths& paths = procfs.paths;
  std::filesystem::create_directories(dir.file("sys/net/netfilter"));
  dir.write("sys/net/netfilter/nf_conntrack_count", "5\n");
  dir.write("sys/net/netfilter/nf_conntrack_max", "262144\n");
  std::string text = collectText(*test::makeBuiltinCollector("conntrack", paths), paths);
  CHECK_THAT(text, Catch::Contains("node_nf_conntrack_entries 5\n"));
  CHECK_THAT(text, Catch::Contains("node_nf_conntrack_entries_limit 262144\n"));
  CHECK_THAT(text, !Catch::Contains("node_nf_conntrack_stat_"));

  std::filesystem::create_directories(dir.file("net/stat"));
  std::filesystem::remove(dir.file("sys/net/netfilter/nf_conntrack_count"));
  dir.write("net/stat/nf_conntrack",
            "entries  clashres found new invalid ignore delete chainlength insert insert_failed "
            "drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n"
            "0000002a  00000000 00000001 00000000 0000000a 00000002 00000000 00000000 00000003 "
            "00000000 00000000 00000000 00000000  00000000 00000000 00000000 00000001\n"
            "0000002a  00000000 00000002 00000000 00000005 00000000 00000000 00000000 00000001 "
            "00000000 00000000 00000001 00000000  00000000 00000000 00000000 00000000\n");
  text = collectText(*test::makeBuiltinCollector("conntrack", paths), paths);
  CHECK_THAT(text, Catch::Contains("node_nf_conntrack_entries 42\n"));  // once, not per CPU
  CHECK_THAT(text, Catch::Contains("node_nf_conntrack_stat_found 3\n"));
  CHECK_THAT(text, Catch::Contains("node_nf_conntrack_stat_invalid 15\n"));
  CHECK_THAT(text, Catch::Contains("node_nf_conntrack_entries_limit 262144\n"));
}

TEST_CASE("Node collectors: netstat takes a values line only when it matches its header",
          "[agent][collectors][node]") {
  WrittenProcfs procfs;
  vigil::test::TempDir& dir = procfs.dir;
  const HostPaths& paths = procfs.paths;
  auto collector = test::makeBuiltinCollector("netstat", paths);
  const std::string tcp_header =
      "Tcp: RtoAlgorithm ActiveOpens PassiveOpens InSegs OutSegs RetransSegs CurrEstab\n";
  dir.write("net/netstat",
            "TcpExt: SyncookiesSent SyncookiesRecv TCPTimeouts DelayedACKs ListenDrops\n"
            "TcpExt: 1 2 3 4 5\n");
  dir.write("net/snmp", tcp_header + "Tcp: 1 10 20 30 40 50 6\n");
  std::string text = collectText(*collector, paths);
  CHECK_THAT(text, Catch::Contains("node_netstat_TcpExt_SyncookiesRecv 2\n"));
  CHECK_THAT(text, Catch::Contains("node_netstat_TcpExt_TCPTimeouts 3\n"));
  CHECK_THAT(text, Catch::Contains("node_netstat_TcpExt_ListenDrops 5\n"));
  CHECK_THAT(text, !Catch::Contains("DelayedACKs"));  // not in node_exporter's default set
  CHECK_THAT(text, Catch::Contains("node_netstat_Tcp_ActiveOpens 10\n"));
  CHECK_THAT(text, Catch::Contains("node_netstat_Tcp_CurrEstab 6\n"));
  CHECK_THAT(text, !Catch::Contains("RtoAlgorithm"));
  // A values line one value short, or of another protocol: none of its values is taken (they
  // would land under the wrong names), the other pair still is.
  dir.write("net/snmp", tcp_header + "Tcp: 1 10 20 30 40 50\n");
  text = collectText(*collector, paths);
  CHECK_THAT(text, !Catch::Contains("node_netstat_Tcp_"));
  CHECK_THAT(text, Catch::Contains("node_netstat_TcpExt_TCPTimeouts 3\n"));
  dir.write("net/snmp", tcp_header + "Udp: 1 10 20 30 40 50 6\n");
  CHECK_THAT(collectText(*collector, paths), !Catch::Contains("node_netstat_Tcp_"));
  // Tabs and runs of spaces between values, as some kernels' tables have.
  dir.write("net/snmp", tcp_header + "Tcp:\t1  10\t20 30   40 50 6\n");
  text = collectText(*collector, paths);
  CHECK_THAT(text, Catch::Contains("node_netstat_Tcp_ActiveOpens 10\n"));
  CHECK_THAT(text, Catch::Contains("node_netstat_Tcp_CurrEstab 6\n"));
}

// A procfs of one file, /proc/stat, written by the test: its aggregate line, then `cpu_lines`.
class FakeProcStat {
 public:
  explicit FakeProcStat(const std::string& name)
      : dir_(std::filesystem::temp_directory_path() /
             ("vigil-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(dir_);
    paths_.procfs = dir_.string();
  }
  ~FakeProcStat() { std::filesystem::remove_all(dir_); }
  FakeProcStat(const FakeProcStat&) = delete;
  FakeProcStat& operator=(const FakeProcStat&) = delete;

  void write(const std::string& cpu_lines) const {
    std::ofstream(dir_ / "stat") << "cpu  0 0 0 0 0 0 0 0 0 0\n" << cpu_lines << "ctxt 1\n";
  }
  const HostPaths& paths() const { return paths_; }

 private:
  std::filesystem::path dir_;
  HostPaths paths_;
};

TEST_CASE("Node collectors: CPU counters never go backwards", "[agent][collectors][node]") {
  const FakeProcStat proc("cpu");
  auto cpu = test::makeBuiltinCollector("cpu", proc.paths());

  proc.write("cpu0 100 0 100 10000 500 0 0 0 0 0\n");
  CHECK_THAT(collectText(*cpu, proc.paths()),
             Catch::Contains("node_cpu_seconds_total{cpu=\"0\",mode=\"iowait\"} 5\n"));
  // The kernel's iowait went backwards: the exported counter holds its highest value.
  proc.write("cpu0 200 0 100 10100 400 0 0 0 0 0\n");
  std::string second = collectText(*cpu, proc.paths());
  CHECK_THAT(second, Catch::Contains("node_cpu_seconds_total{cpu=\"0\",mode=\"iowait\"} 5\n"));
  CHECK_THAT(second, Catch::Contains("node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 2\n"));
  // Idle dropped by more than 3 s: the CPU was re-plugged, so its counters start over.
  proc.write("cpu0 10 0 10 100 1 0 0 0 0 0\n");
  CHECK_THAT(collectText(*cpu, proc.paths()),
             Catch::Contains("node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"} 1\n"));
}

TEST_CASE("Node collectors: CPUs going offline and coming back, in numeric order",
          "[agent][collectors][node]") {
  const FakeProcStat proc("cpu-online");
  auto cpu = test::makeBuiltinCollector("cpu", proc.paths());
  auto userLines = [&] {
    std::string lines;
    std::istringstream in(collectText(*cpu, proc.paths()));
    for (std::string line; std::getline(in, line);) {
      if (line.find("mode=\"user\"") != std::string::npos &&
          line.rfind("node_cpu_seconds_total", 0) == 0) {
        lines += line + "\n";
      }
    }
    return lines;
  };
  proc.write(
      "cpu0 100 0 0 0 0 0 0 0 0 0\ncpu2 200 0 0 0 0 0 0 0 0 0\ncpu10 300 0 0 0 0 0 0 0 0 0\n");
  CHECK(userLines() ==
        "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 1\n"
        "node_cpu_seconds_total{cpu=\"2\",mode=\"user\"} 2\n"
        "node_cpu_seconds_total{cpu=\"10\",mode=\"user\"} 3\n");
  // cpu2 goes offline: its series go; the others keep their highest values.
  proc.write("cpu0 100 0 0 0 0 0 0 0 0 0\ncpu10 400 0 0 0 0 0 0 0 0 0\n");
  CHECK(userLines() ==
        "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 1\n"
        "node_cpu_seconds_total{cpu=\"10\",mode=\"user\"} 4\n");
  // It comes back, listed out of order; a damaged line with an id no CPU has is ignored, and a
  // CPU listed twice is reported once, as its first line has it.
  proc.write(
      "cpu10 400 0 0 0 0 0 0 0 0 0\ncpu99999999999 1 0 0 0 0 0 0 0 0 0\n"
      "cpu0 100 0 0 0 0 0 0 0 0 0\ncpu2 500 0 0 0 0 0 0 0 0 0\ncpu0 900 0 0 0 0 0 0 0 0 0\n");
  CHECK(userLines() ==
        "node_cpu_seconds_total{cpu=\"0\",mode=\"user\"} 1\n"
        "node_cpu_seconds_total{cpu=\"2\",mode=\"user\"} 5\n"
        "node_cpu_seconds_total{cpu=\"10\",mode=\"user\"} 4\n");
}

TEST_CASE("Node collectors: filesystem labels, exclusions, escapes, errors and a hung mount",
          "[agent][collectors][node][filesystem]") {
  const HostPaths paths = test::nodeFixturePaths();
  // Shared with the collector's helper threads, which are left to finish on their own and may
  // still be in the fake statfs after the test returns: the state lives as long as they do.
  struct Hang {
    std::mutex mu;
    std::condition_variable cv;
    bool release = false;
  };
  auto hang = std::make_shared<Hang>();
  auto fakeStatfs = [hang](const std::string& path, struct statfs& st) -> int {
    if (path.find("/stuck") != std::string::npos) {
      std::unique_lock lock(hang->mu);  // an NFS server that does not answer
      hang->cv.wait(lock, [&] { return hang->release; });
    }
    if (path.find("/gone") != std::string::npos) {
      return ENOENT;
    }
    answerStatfs(st);
    return 0;
  };
  auto fs = collectors::node::makeFilesystemCollectorForTest(paths, fakeStatfs,
                                                             std::chrono::milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  std::string got = collectText(*fs, paths);
  // The hung mount cost one mount timeout, not a blocked cycle.
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  // /home, after the hung mount in the table, is measured all the same.
  CHECK(got == readText(kFixtures + "/expected/filesystem.prom"));
  // Next cycle: the stuck mount is skipped at once, still reported as an error.
  const auto again = std::chrono::steady_clock::now();
  got = collectText(*fs, paths);
  CHECK(std::chrono::steady_clock::now() - again < std::chrono::milliseconds(150));
  CHECK_THAT(got,
             Catch::Contains("node_filesystem_device_error{device=\"server:/stuck\",fstype=\"nfs\","
                             "mountpoint=\"/stuck\"} 1"));
  {
    std::lock_guard lock(hang->mu);
    hang->release = true;
  }
  hang->cv.notify_all();
  // Once the mount answers again it is measured again.
  bool recovered = false;
  for (int i = 0; i < 50 && !recovered; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    recovered =
        collectText(*fs, paths).find("node_filesystem_size_bytes{device=\"server:/stuck\"") !=
        std::string::npos;
  }
  CHECK(recovered);
}

TEST_CASE("Node collectors: filesystem asks local mounts at once, and mounts under NFS aside",
          "[agent][collectors][node][filesystem]") {
  namespace fs = std::filesystem;
  const std::string dir =
      (fs::temp_directory_path() / ("vigil-fs-inline-" + std::to_string(::getpid()))).string();
  fs::create_directories(dir + "/proc/1");
  {
    std::ofstream m(dir + "/proc/1/mountinfo");
    m << "27 1 254:0 / / rw - ext4 /dev/vda rw\n"
         "36 27 0:35 / /stuck rw - nfs server:/stuck rw\n"
         "37 36 254:3 / /stuck/inner rw - ext4 /dev/vdd rw\n"
         "38 27 0:36 / /net rw - autofs auto.net rw\n"
         "39 38 254:4 / /net/backup rw - xfs /dev/vde rw\n"
         "40 27 254:5 / /stuckless rw - tmpfs tmpfs rw\n";
  }
  HostPaths paths;
  paths.procfs = dir + "/proc";
  paths.rootfs = "/";
  // Shared with the collector's helper threads, which may outlive the test (see above).
  struct Hang {
    std::mutex mu;
    std::condition_variable cv;
    bool release = false;
    std::map<std::string, std::thread::id> asked_on;
  };
  auto hang = std::make_shared<Hang>();
  auto fakeStatfs = [hang](const std::string& path, struct statfs& st) -> int {
    std::unique_lock lock(hang->mu);
    hang->asked_on[path] = std::this_thread::get_id();
    // Walking a path through a dead NFS server waits as long as statfs on it would.
    if (path.starts_with("/stuck/") || path == "/stuck") {
      hang->cv.wait_for(lock, std::chrono::seconds(3), [&] { return hang->release; });
    }
    answerStatfs(st);
    return 0;
  };
  auto collector = collectors::node::makeFilesystemCollectorForTest(paths, fakeStatfs,
                                                                    std::chrono::milliseconds(200));
  const auto start = std::chrono::steady_clock::now();
  const std::string got = collectText(*collector, paths);
  // Neither the NFS mount nor the ext4 mount under it held the cycle for their 3 s.
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
  CHECK_THAT(got,
             Catch::Contains("node_filesystem_device_error{device=\"/dev/vdd\",fstype=\"ext4\","
                             "mountpoint=\"/stuck/inner\"} 1"));
  CHECK_THAT(got, Catch::Contains("node_filesystem_size_bytes{device=\"/dev/vda\",fstype=\"ext4\","
                                  "mountpoint=\"/\"} 4096000"));
  CHECK_THAT(got, Catch::Contains("node_filesystem_size_bytes{device=\"tmpfs\",fstype=\"tmpfs\","
                                  "mountpoint=\"/stuckless\"} 4096000"));
  {
    std::lock_guard lock(hang->mu);
    auto& asked_on = hang->asked_on;
    // Filesystems that answer from memory are asked on the collecting thread; the rest, and
    // those reached through a mount that may hang (NFS, an automounter), on the helper.
    CHECK(asked_on["/"] == std::this_thread::get_id());
    CHECK(asked_on["/stuckless"] == std::this_thread::get_id());
    CHECK(asked_on["/stuck"] != std::this_thread::get_id());
    CHECK(asked_on.count("/net/backup") == 1);
    CHECK(asked_on["/net/backup"] != std::this_thread::get_id());
    hang->release = true;
  }
  hang->cv.notify_all();
  collector.reset();
  fs::remove_all(dir);
}

TEST_CASE("Cgroup collector: kubepods paths of both drivers and every QoS class",
          "[agent][collectors][cgroup]") {
  using collectors::parseKubepodsPath;
  const std::string id(64, 'a');
  auto c = parseKubepodsPath(
      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1234_ab.slice/"
      "cri-containerd-" +
      id + ".scope");
  CHECK(c.is_container);
  CHECK(c.pod_uid == "1234-ab");
  CHECK(c.qos == "burstable");
  CHECK(c.runtime == "containerd");
  CHECK(c.container_id == id);
  auto pod = parseKubepodsPath("/kubepods.slice/kubepods-pod99_00.slice");
  CHECK(pod.is_pod);
  CHECK(pod.qos == "guaranteed");
  CHECK(pod.pod_uid == "99-00");
  auto cgroupfs = parseKubepodsPath("/kubepods/besteffort/pod0000aaaa-bbbb/" + id);
  CHECK(cgroupfs.is_container);
  CHECK(cgroupfs.qos == "besteffort");
  CHECK(cgroupfs.pod_uid == "0000aaaa-bbbb");
  CHECK(cgroupfs.runtime.empty());
  auto kind = parseKubepodsPath(
      "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
      "kubelet-kubepods-besteffort-pod12_34.slice/crio-" +
      id + ".scope");
  CHECK(kind.is_container);
  CHECK(kind.qos == "besteffort");
  CHECK(kind.runtime == "cri-o");
  CHECK_FALSE(parseKubepodsPath("/kubepods.slice/kubepods-pod12.slice/crio-conmon-" + id + ".scope")
                  .is_container);
  CHECK_FALSE(parseKubepodsPath("/system.slice/nginx.service").is_container);
  CHECK_FALSE(parseKubepodsPath("/system.slice/nginx.service").is_pod);
}

TEST_CASE("Cgroup collector: recorded cgroup v2 tree gives cAdvisor's metrics",
          "[agent][collectors][cgroup]") {
  HostPaths paths;
  paths.sysfs = VIGIL_FIXTURES "/cgroup/sys";
  paths.procfs = VIGIL_FIXTURES "/cgroup/proc";
  auto cgroup = test::makeBuiltinCollector("cgroup", paths);
  CHECK(collectText(*cgroup, paths) == readText(VIGIL_FIXTURES "/cgroup/expected.prom"));
}

// The collector keeps each cgroup's files open between cycles and lists the tree again only
// when the root's cgroup.stat (its count of descendants) changes, a cgroup's cpu.stat cannot be
// read, or a minute of cycles has passed; limits are read once a minute, as cAdvisor reads a
// container's spec when it starts.
TEST_CASE("Cgroup collector: cgroups that come and go between cycles",
          "[agent][collectors][cgroup]") {
  test::TempDir tree;
  const std::string root = "fs/cgroup";
  std::filesystem::create_directories(tree.file(root));
  tree.write(root + "/cgroup.controllers", "cpu io memory pids\n");
  // Every cgroup has cpu.stat; the collector takes a missing one for a cgroup that went away.
  std::filesystem::create_directories(tree.file(root + "/system.slice"));
  tree.write(root + "/system.slice/cpu.stat", "usage_usec 0\n");
  auto service = [&](const std::string& name, int usage_usec, const std::string& memory_max) {
    const std::string dir = root + "/system.slice/" + name + ".service";
    std::filesystem::create_directories(tree.file(dir));
    tree.write(dir + "/cpu.stat", "usage_usec " + std::to_string(usage_usec) + "\n");
    tree.write(dir + "/memory.max", memory_max + "\n");
  };
  auto usage = [](const std::string& name, const std::string& value) {
    return "container_cpu_usage_seconds_total{cpu=\"total\",id=\"/system.slice/" + name +
           ".service\"} " + value + "\n";
  };
  auto limit = [](const std::string& name, const std::string& value) {
    return "container_spec_memory_limit_bytes{id=\"/system.slice/" + name + ".service\"} " + value +
           "\n";
  };
  HostPaths paths;
  paths.sysfs = tree.path();
  paths.procfs = tree.path();

  SECTION("with the kernel's cgroup.stat") {
    tree.write(root + "/cgroup.stat", "nr_descendants 2\nnr_dying_descendants 0\n");
    service("a", 1'000'000, "max");
    auto cgroup = test::makeBuiltinCollector("cgroup", paths);
    std::string got = collectText(*cgroup, paths);
    CHECK_THAT(got, Catch::Contains(usage("a", "1")));
    CHECK_THAT(got, Catch::Contains(limit("a", "0")));

    // Counters are read every cycle from the files kept open.
    service("a", 2'500'000, "max");
    CHECK_THAT(collectText(*cgroup, paths), Catch::Contains(usage("a", "2.5")));

    // A new cgroup changes the root's count of descendants: it shows in the next cycle.
    service("b", 3'000'000, "1048576");
    tree.write(root + "/cgroup.stat", "nr_descendants 3\nnr_dying_descendants 0\n");
    got = collectText(*cgroup, paths);
    CHECK_THAT(got, Catch::Contains(usage("b", "3")));
    CHECK_THAT(got, Catch::Contains(limit("b", "1048576")));

    // One removed: gone in the next cycle.
    std::filesystem::remove_all(tree.file(root + "/system.slice/a.service"));
    tree.write(root + "/cgroup.stat", "nr_descendants 2\nnr_dying_descendants 1\n");
    got = collectText(*cgroup, paths);
    CHECK_THAT(got, !Catch::Contains("/system.slice/a.service"));
    CHECK_THAT(got, Catch::Contains(usage("b", "3")));

    // A cgroup made while the count says the same (one made, one removed, within a cycle)
    // shows within a minute of cycles; a changed limit too.
    service("c", 4'000'000, "max");
    service("b", 3'000'000, "2097152");
    int cycles = 1;
    while (cycles <= 60 &&
           !Catch::Contains(usage("c", "4")).match(got = collectText(*cgroup, paths))) {
      ++cycles;
    }
    INFO("cycles until c.service showed: " << cycles);
    CHECK(cycles <= 60);
    for (int i = 0; i < 60 && !Catch::Contains(limit("b", "2097152")).match(got); ++i) {
      got = collectText(*cgroup, paths);
    }
    CHECK_THAT(got, Catch::Contains(limit("b", "2097152")));
  }

  SECTION("without cgroup.stat (a recorded tree): listed every cycle") {
    service("a", 1'000'000, "max");
    auto cgroup = test::makeBuiltinCollector("cgroup", paths);
    CHECK_THAT(collectText(*cgroup, paths), Catch::Contains(usage("a", "1")));
    service("b", 3'000'000, "max");
    CHECK_THAT(collectText(*cgroup, paths), Catch::Contains(usage("b", "3")));
    std::filesystem::remove_all(tree.file(root + "/system.slice/a.service"));
    CHECK_THAT(collectText(*cgroup, paths), !Catch::Contains("/system.slice/a.service"));
  }
}

TEST_CASE("Node collectors: os-release replaced by an upgrade is read again",
          "[agent][collectors][node]") {
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("vigil-os-" + std::to_string(::getpid()));
  fs::create_directories(root / "etc");
  // As a package manager writes it: a new file renamed over the old one.
  auto install = [&](const std::string& version_id) {
    std::ofstream(root / "etc/os-release.new")
        << "NAME=\"Debian GNU/Linux\"\nID=debian\nVERSION_ID=\"" << version_id << "\"\n";
    fs::rename(root / "etc/os-release.new", root / "etc/os-release");
  };
  install("12");
  HostPaths paths;
  paths.rootfs = root.string();
  auto os = test::makeBuiltinCollector("os", paths);
  // Cycles a second apart, as the scheduler stamps them.
  int64_t timestamp_ms = 1'700'000'000'000;
  auto collectAt = [&](int64_t t, Status* status = nullptr) {
    MetricBatch batch;
    CollectContext ctx{std::chrono::steady_clock::now() + std::chrono::seconds(1), &paths};
    ctx.timestamp_ms = t;
    const Status st = os->collect(ctx, batch);
    if (status != nullptr) {
      *status = st;
    }
    std::string out;
    const MetricBatch* batches[] = {&batch};
    exporters::renderTextFormat(batches, out);
    return out;
  };
  CHECK_THAT(collectAt(timestamp_ms), Catch::Contains("node_os_version{id=\"debian\",id_like=\"\","
                                                      "name=\"Debian GNU/Linux\"} 12\n"));
  CHECK_THAT(collectAt(timestamp_ms += 1000), Catch::Contains("version_id=\"12\"} 1\n"));
  install("13");
  // The file is looked at once a minute: the new version shows within one.
  CHECK_THAT(collectAt(timestamp_ms += 1000), Catch::Contains("version_id=\"12\"} 1\n"));
  const std::string after = collectAt(timestamp_ms += 60'000);
  CHECK_THAT(after, Catch::Contains("name=\"Debian GNU/Linux\"} 13\n"));
  CHECK_THAT(after, Catch::Contains("version_id=\"13\"} 1\n"));
  // Gone: the metric is absent and the collector says which files it looked for.
  fs::remove(root / "etc/os-release");
  Status st;
  collectAt(timestamp_ms += 60'000, &st);
  CHECK(st.code() == StatusCode::kNotFound);
  CHECK_THAT(st.message(), Catch::Contains("usr/lib/os-release"));
  fs::remove_all(root);
}

// netclass takes most attributes from netlink, which sees vigil's network namespace, and the
// rest from the sysfs root, which may show another (a container with the host's /sys): devices
// of the same names there are other devices, and their attributes must come from sysfs.
TEST_CASE("Node collectors: netclass reads a sysfs that shows other devices than netlink's",
          "[agent][collectors][node]") {
  LinkDumper dumper;
  std::vector<LinkAttributes> links;
  REQUIRE(dumper.dump(links).isOk());
  test::TempDir other;
  for (const LinkAttributes& link : links) {
    // The same name and index as here, another hardware address and MTU.
    const std::string device = "class/net/" + link.name;
    std::filesystem::create_directories(other.file(device));
    other.write(device + "/ifindex", std::to_string(link.index) + "\n");
    other.write(device + "/address", "02:00:00:00:00:99\n");
    other.write(device + "/mtu", "1234\n");
    other.write(device + "/operstate", "testing\n");
  }
  HostPaths paths;
  paths.sysfs = other.path();
  auto netclass = test::makeBuiltinCollector("netclass", paths);
  // Over cycles that dump the links and cycles that skip the dump once the disagreement holds.
  for (int cycle = 0; cycle < 12; ++cycle) {
    const std::string got = collectText(*netclass, paths);
    for (const LinkAttributes& link : links) {
      INFO("cycle " << cycle << ", device " << link.name);
      CHECK_THAT(got,
                 Catch::Contains("node_network_mtu_bytes{device=\"" + link.name + "\"} 1234\n"));
      CHECK_THAT(got, Catch::Contains("address=\"02:00:00:00:00:99\""));
      CHECK_THAT(got, Catch::Contains("operstate=\"testing\""));
      // Attributes its sysfs does not have are absent, not taken from netlink.
      CHECK_THAT(got, !Catch::Contains("node_network_transmit_queue_length{device=\"" + link.name));
    }
  }

  SECTION("and this machine's own sysfs agrees with netlink") {
    HostPaths here;
    here.sysfs = "/sys";
    auto live = test::makeBuiltinCollector("netclass", here);
    const std::string ours = collectText(*live, here);
    for (const LinkAttributes& link : links) {
      INFO("device " << link.name);
      CHECK_THAT(ours, Catch::Contains("node_network_mtu_bytes{device=\"" + link.name + "\"} " +
                                       std::to_string(*link.mtu) + "\n"));
      CHECK_THAT(ours, Catch::Contains("node_network_iface_id{device=\"" + link.name + "\"} " +
                                       std::to_string(link.index) + "\n"));
    }
  }
}

namespace {
// This machine's network devices, as netlink lists them, in a sysfs tree under `tree`: their
// names, indexes and addresses (so that netclass takes netlink's word for them) and these
// attributes, the same for each.
std::vector<LinkAttributes> mirrorLinks(
    test::TempDir& tree, const std::vector<std::pair<std::string, std::string>>& attributes) {
  LinkDumper dumper;
  std::vector<LinkAttributes> links;
  REQUIRE(dumper.dump(links).isOk());
  REQUIRE_FALSE(links.empty());
  for (const LinkAttributes& link : links) {
    const std::string device = "class/net/" + link.name;
    std::filesystem::create_directories(tree.file(device));
    tree.write(device + "/ifindex", std::to_string(link.index) + "\n");
    tree.write(device + "/address", link.address + "\n");
    for (const auto& [file, value] : attributes) {
      tree.write(device + "/" + file, value + "\n");
    }
  }
  return links;
}
}  // namespace

// A device created or removed between the directory read and the link dump makes sysfs and
// netlink disagree once in the same namespace: netclass must not stay on sysfs for good. Here
// sysfs shows this machine's devices (names, indexes, addresses) with another MTU, so the MTU
// reported says where the attributes came from; one device's index is wrong while the test
// wants them to disagree.
TEST_CASE("Node collectors: netclass goes back to netlink when sysfs agrees with it again",
          "[agent][collectors][node]") {
  test::TempDir same;
  const std::vector<LinkAttributes> links = mirrorLinks(same, {{"mtu", "1234"}});
  const LinkAttributes& first = links.front();
  const std::string first_ifindex = "class/net/" + first.name + "/ifindex";
  auto disagree = [&] { same.write(first_ifindex, std::to_string(first.index + 1000) + "\n"); };
  auto agree = [&] { same.write(first_ifindex, std::to_string(first.index) + "\n"); };
  const std::string from_sysfs = "node_network_mtu_bytes{device=\"" + first.name + "\"} 1234\n";
  const std::string from_netlink =
      "node_network_mtu_bytes{device=\"" + first.name + "\"} " + std::to_string(*first.mtu) + "\n";
  REQUIRE(*first.mtu != 1234);
  HostPaths paths;
  paths.sysfs = same.path();
  auto netclass = test::makeBuiltinCollector("netclass", paths);

  SECTION("after one cycle of disagreement") {
    disagree();
    CHECK_THAT(collectText(*netclass, paths), Catch::Contains(from_sysfs));
    agree();
    CHECK_THAT(collectText(*netclass, paths), Catch::Contains(from_netlink));
    CHECK_THAT(collectText(*netclass, paths), Catch::Contains(from_netlink));
  }
  SECTION("after a confirmed disagreement, within ten cycles") {
    disagree();
    CHECK_THAT(collectText(*netclass, paths), Catch::Contains(from_sysfs));
    CHECK_THAT(collectText(*netclass, paths), Catch::Contains(from_sysfs));
    agree();
    int cycles = 0;
    while (collectText(*netclass, paths).find(from_netlink) == std::string::npos && cycles < 50) {
      ++cycles;
    }
    // Confirmed, so the next cycles skip the dump; the one after them tries again.
    CHECK(cycles >= 1);
    CHECK(cycles < 10);
  }
}

TEST_CASE(
    "Node collectors: netclass lists sysfs again only when netlink announces a change, or "
    "within a minute of cycles",
    "[agent][collectors][node]") {
  // A sysfs tree with this machine's devices, so that netlink is used; then a device that only
  // the tree shows (as if its namespace had one more), which no netlink announcement covers.
  test::TempDir tree;
  const std::vector<LinkAttributes> links = mirrorLinks(tree, {{"mtu", "1234"}});
  HostPaths paths;
  paths.sysfs = tree.path();
  auto netclass = test::makeBuiltinCollector("netclass", paths);
  const std::string from_netlink = "node_network_mtu_bytes{device=\"" + links.front().name +
                                   "\"} " + std::to_string(*links.front().mtu) + "\n";
  REQUIRE_THAT(collectText(*netclass, paths), Catch::Contains(from_netlink));
  std::filesystem::create_directories(tree.file("class/net/vigiltest0"));
  tree.write("class/net/vigiltest0/mtu", "1500\n");
  const std::string extra = "device=\"vigiltest0\"";
  int cycles = 0;
  std::string text;
  while ((text = collectText(*netclass, paths)).find(extra) == std::string::npos && cycles < 200) {
    // Until sysfs is listed again, netlink's word is taken for the devices it agreed on.
    CHECK_THAT(text, Catch::Contains(from_netlink));
    ++cycles;
  }
  // Not listed every cycle (a listing would have shown it at once), but within 60 of them.
  CHECK(cycles >= 10);
  CHECK(cycles < 60);
  // Listed, sysfs and netlink disagree: the attributes come from sysfs, the extra device too.
  CHECK_THAT(text, Catch::Contains("node_network_mtu_bytes{device=\"vigiltest0\"} 1500\n"));
}

TEST_CASE("Node collectors: netclass's fixed properties follow sysfs within a minute of cycles",
          "[agent][collectors][node]") {
  // A sysfs tree with this machine's devices (names, indexes, addresses), so that netlink is
  // used: name_assign_type, dev_id and addr_assign_type are read from sysfs when a device is
  // first seen, and a change to them shows within kFixedRefreshCycles (60) cycles.
  test::TempDir tree;
  const std::vector<LinkAttributes> links =
      mirrorLinks(tree, {{"name_assign_type", "1"}, {"dev_id", "0x0"}});
  const std::string name = links.front().name;
  HostPaths paths;
  paths.sysfs = tree.path();
  auto netclass = test::makeBuiltinCollector("netclass", paths);
  const std::string before = "node_network_name_assign_type{device=\"" + name + "\"} 1\n";
  const std::string after = "node_network_name_assign_type{device=\"" + name + "\"} 4\n";
  CHECK_THAT(collectText(*netclass, paths), Catch::Contains(before));
  CHECK_THAT(collectText(*netclass, paths),
             Catch::Contains("node_network_device_id{device=\"" + name + "\"} 0\n"));
  tree.write("class/net/" + name + "/name_assign_type", "4\n");
  int cycles = 0;
  std::string text;
  while ((text = collectText(*netclass, paths)).find(after) == std::string::npos && cycles < 200) {
    CHECK_THAT(text, Catch::Contains(before));
    ++cycles;
  }
  CHECK(cycles < 60);
  CHECK_THAT(collectText(*netclass, paths), Catch::Contains(after));
}

// A device's flags come from sysfs only (netlink's are another mix), so netclass keeps them
// while netlink announces no link change and reads them again after one. In a network namespace
// of its own, where the test can bring its loopback device up; sysfs is a tree mirroring that
// namespace's devices.
TEST_CASE("Node collectors: netclass reads a device's flags again when netlink announces a change",
          "[agent][collectors][node]") {
  test::TempDir tree;
  HostPaths paths;
  paths.sysfs = tree.path();
  auto netclass =
      test::makeBuiltinCollector("netclass", paths);  // its netlink sockets are opened on first use
  struct Seen {
    std::string error;
    std::vector<std::string> texts;  // per cycle
  } seen;
  const bool isolated = test::inNewNetworkNamespace([&] {
    LinkDumper dumper;
    std::vector<LinkAttributes> links;
    if (Status st = dumper.dump(links); !st.isOk()) {
      seen.error = st.toString();
      return;
    }
    for (const LinkAttributes& link : links) {
      const std::string device = "class/net/" + link.name;
      std::filesystem::create_directories(tree.file(device));
      tree.write(device + "/ifindex", std::to_string(link.index) + "\n");
      tree.write(device + "/address", link.address + "\n");
      tree.write(device + "/flags", "0x8\n");  // IFF_LOOPBACK, down
    }
    auto collect = [&] {
      MetricBatch batch;
      CollectContext ctx{std::chrono::steady_clock::now() + std::chrono::seconds(5), &paths};
      if (Status st = netclass->collect(ctx, batch); !st.isOk()) {
        seen.error = st.toString();
      }
      std::string text;
      const MetricBatch* batches[] = {&batch};
      exporters::renderTextFormat(batches, text);
      seen.texts.push_back(text);
    };
    collect();
    collect();
    tree.write("class/net/lo/flags", "0x9\n");  // not announced: sysfs alone changed
    collect();
    if (std::string error = test::bringLoopbackUp(); !error.empty()) {
      seen.error = error;
    }
    collect();  // lo came up: announced
  });
  if (!isolated) {
    return;
  }
  INFO(seen.error);
  REQUIRE(seen.error.empty());
  REQUIRE(seen.texts.size() == 4);
  const std::string down = "node_network_flags{device=\"lo\"} 8\n";
  const std::string up = "node_network_flags{device=\"lo\"} 9\n";
  // From netlink, not the tree's: lo is down, then up.
  CHECK_THAT(seen.texts[0], Catch::Contains("node_network_up{device=\"lo\"} 0\n"));
  CHECK_THAT(seen.texts[3], Catch::Contains("node_network_carrier{device=\"lo\"} 1\n"));
  CHECK_THAT(seen.texts[0], Catch::Contains(down));
  CHECK_THAT(seen.texts[1], Catch::Contains(down));
  CHECK_THAT(seen.texts[2], Catch::Contains(down));  // kept: nothing announced
  CHECK_THAT(seen.texts[3], Catch::Contains(up));
}

// A Kubernetes node has a network device per pod: past some 30 of them /proc/net/dev is longer
// than the page procfs hands out per read. 60 tap devices in a network namespace of the test's
// own, read through /proc/thread-self (the namespace is the thread's).
TEST_CASE("Node collectors: netdev reports every device of a node with many",
          "[agent][collectors][node]") {
  constexpr int kDevices = 60;
  HostPaths paths;
  paths.procfs = "/proc/thread-self";  // opened at the first read, on the namespace's thread
  auto netdev = test::makeBuiltinCollector("netdev", paths);
  std::string error;
  std::string text;
  const bool isolated = test::inNewNetworkNamespace([&] {
    std::vector<int> taps;  // a tap device lasts while its descriptor is open
    for (int i = 0; i < kDevices && error.empty(); ++i) {
      const int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
      ifreq req{};
      req.ifr_flags = IFF_TAP | IFF_NO_PI;
      std::snprintf(req.ifr_name, IFNAMSIZ, "vigiltap%d", i);
      if (fd < 0 || ::ioctl(fd, TUNSETIFF, &req) != 0) {
        error = std::string("making a tap device: ") + std::strerror(errno);
      }
      if (fd >= 0) {
        taps.push_back(fd);
      }
    }
    if (error.empty()) {
      MetricBatch batch;
      CollectContext ctx{std::chrono::steady_clock::now() + std::chrono::seconds(5), &paths};
      if (Status st = netdev->collect(ctx, batch); !st.isOk()) {
        error = st.toString();
      }
      const MetricBatch* batches[] = {&batch};
      exporters::renderTextFormat(batches, text);
    }
    for (int fd : taps) {
      ::close(fd);
    }
  });
  if (!isolated) {
    return;
  }
  if (error.find("making a tap device") == 0) {
    WARN(error << ": not tested here");
    return;
  }
  INFO(error);
  REQUIRE(error.empty());
  for (int i = 0; i < kDevices; ++i) {
    const std::string device = "vigiltap" + std::to_string(i);
    INFO(device);
    CHECK_THAT(text,
               Catch::Contains("node_network_receive_bytes_total{device=\"" + device + "\"} 0\n"));
  }
}

TEST_CASE(
    "Node collectors: netclass asks a driver that refused its link settings again within "
    "a minute of cycles, and never a device that is down",
    "[agent][collectors][node]") {
  // Every device of this machine with a speed and a duplex in sysfs; netlink says which are
  // up (lo always is).
  test::TempDir tree;
  const std::vector<LinkAttributes> links =
      mirrorLinks(tree, {{"speed", "1000"}, {"duplex", "full"}});
  HostPaths paths;
  paths.sysfs = tree.path();
  auto netclass = test::makeBuiltinCollector("netclass", paths);
  const std::string lo_speed = "node_network_speed_bytes{device=\"lo\"} 1.25e+08\n";
  std::string text = collectText(*netclass, paths);
  CHECK_THAT(text, Catch::Contains(lo_speed));
  CHECK_THAT(text, Catch::Contains("device=\"lo\",duplex=\"full\""));
  // sysfs refuses the speed and duplex of a device that is down: none is reported for one.
  for (const LinkAttributes& link : links) {
    if ((link.flags & IFF_UP) == 0) {
      CHECK_THAT(text, !Catch::Contains("node_network_speed_bytes{device=\"" + link.name + "\"}"));
      CHECK_THAT(text, Catch::Contains("device=\"" + link.name + "\",duplex=\"\""));
    }
  }
  // lo's driver stops answering (sysfs gives nothing), unannounced by netlink: within 60
  // cycles, no speed and an empty duplex; until then, what it last said.
  tree.write("class/net/lo/speed", "");
  tree.write("class/net/lo/duplex", "");
  int cycles = 0;
  while ((text = collectText(*netclass, paths)).find(lo_speed) != std::string::npos &&
         cycles < 200) {
    CHECK_THAT(text, Catch::Contains("device=\"lo\",duplex=\"full\""));
    ++cycles;
  }
  CHECK(cycles < 60);
  CHECK_THAT(text, !Catch::Contains("node_network_speed_bytes{device=\"lo\"}"));
  CHECK_THAT(text, Catch::Contains("device=\"lo\",duplex=\"\""));
  // It answers again: seen within 60 cycles, though lo's state did not change.
  tree.write("class/net/lo/speed", "1000\n");
  tree.write("class/net/lo/duplex", "full\n");
  cycles = 0;
  while (collectText(*netclass, paths).find(lo_speed) == std::string::npos && cycles < 200) {
    ++cycles;
  }
  CHECK(cycles < 60);
}
