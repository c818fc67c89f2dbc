// Differential test: vigil and a real node_exporter 1.5 (Debian's prometheus-node-exporter),
// the same collectors, the same machine, scraped at the same moment.
#include <httplib.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/udp_sockets.h"

using namespace vigil::test;
using namespace std::chrono_literals;

namespace {

// Whether a shared collector reads only files under the roots, so that both exporters can be
// pointed at a recorded tree.
bool readsFilesOnly(std::string_view collector) {
  return std::find_if(std::begin(kLiveSystemCollectors), std::end(kLiveSystemCollectors),
                      [&](const char* live) { return collector == live; }) ==
         std::end(kLiveSystemCollectors);
}

// Series node_exporter has and vigil does not, with the reason.
const std::map<std::string, std::string> kExpectedOnlyInNodeExporter = {
    {"node_network_receive_nohandler_total",
     "node_exporter reads netdev over netlink, whose stats have rx_nohandler; vigil reads "
     "/proc/net/dev, which has no such column"},
};

struct Sample {
  std::string type;
  double value = 0;
};
using Exposition = std::map<std::string, Sample>;  // "name{labels}" -> sample

Exposition parseExposition(const std::string& body) {
  Exposition out;
  std::map<std::string, std::string> types;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream t(line.substr(7));
      std::string name;
      std::string type;
      t >> name >> type;
      types[name] = type;
      continue;
    }
    if (line.empty() || line[0] == '#') {
      continue;
    }
    // The series key is everything up to the last space (label values may contain spaces).
    const auto space = line.rfind(' ');
    const std::string key = line.substr(0, space);
    const std::string name = key.substr(0, key.find('{'));
    out[key] = Sample{types[name], std::strtod(line.c_str() + space + 1, nullptr)};
  }
  return out;
}

std::string nameOf(const std::string& key) { return key.substr(0, key.find('{')); }

bool isShared(const std::string& key) {
  const std::string name = nameOf(key);
  // OpenCost's node_*_hourly_cost and node_gpu_count (the cost collector) are not
  // node_exporter's.
  return name.rfind("node_", 0) == 0 && name.rfind("node_scrape_", 0) != 0 &&
         name != "node_exporter_build_info" && !name.ends_with("_hourly_cost") &&
         name != "node_gpu_count";
}

// The series whose names `keep` accepts, as "name{labels}" -> value (compared as numbers: Go
// writes 2.4e+09 where vigil writes 2400000000), and their families' HELP lines (and TYPE
// lines with `with_types`), as "# HELP name" -> text.
template <typename Keep>
std::map<std::string, std::string> seriesAndMeta(const std::string& body, Keep keep,
                                                 bool with_types) {
  std::map<std::string, std::string> out;
  std::istringstream in(body);
  for (std::string line; std::getline(in, line);) {
    const bool meta =
        line.rfind("# HELP ", 0) == 0 || (with_types && line.rfind("# TYPE ", 0) == 0);
    if (!meta && line.rfind('#', 0) == 0) {
      continue;
    }
    const std::string text = meta ? line.substr(7) : line;
    if (!keep(text.substr(0, text.find_first_of(" {")))) {
      continue;
    }
    if (meta) {
      const auto space = text.find(' ');
      out[line.substr(0, 7) + text.substr(0, space)] = text.substr(space + 1);
    } else {
      const auto space = line.rfind(' ');
      char value[32];
      std::snprintf(value, sizeof value, "%.17g", std::strtod(line.c_str() + space + 1, nullptr));
      out[line.substr(0, space)] = value;
    }
  }
  return out;
}

// Every entry that is not in both maps with the same value, a line each.
std::string differencesBetween(const std::map<std::string, std::string>& theirs,
                               const std::map<std::string, std::string>& ours) {
  std::string out;
  for (const auto& [key, value] : theirs) {
    if (auto it = ours.find(key); it == ours.end() || it->second != value) {
      out += "node_exporter: " + key + " " + value + "\n";
    }
  }
  for (const auto& [key, value] : ours) {
    if (auto it = theirs.find(key); it == theirs.end() || it->second != value) {
      out += "vigil:         " + key + " " + value + "\n";
    }
  }
  return out;
}

}  // namespace

TEST_CASE("node_exporter differential: same series, counters agree", "[integration][node]") {
  TempDir dir;
  // 80 sockets with a datagram waiting in each: /proc/net/udp is then longer than the page
  // procfs hands out per read, and both must read it all for their queue sizes to agree.
  UdpSockets sockets(80);
  sockets.queueDatagrams(100);
  const int ne_port = freeLoopbackPort();
  std::vector<std::string> ne_args = {"prometheus-node-exporter",
                                      "--web.listen-address=127.0.0.1:" + std::to_string(ne_port),
                                      "--collector.disable-defaults"};
  for (const char* c : kNodeExporterCollectors) {
    ne_args.push_back(std::string("--collector.") + c);
  }
  ChildProcess node_exporter(ne_args, dir.file("node_exporter.log"));

  const int vigil_port = freeLoopbackPort();
  dir.write("vigil.yaml", "global:\n  collection_interval: 1s\n");
  ChildProcess vigil(
      vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), vigil_port, dir.file("data")),
      dir.file("vigil.log"));

  httplib::Client ne("127.0.0.1", ne_port);
  httplib::Client vg("127.0.0.1", vigil_port);
  std::string ne_body;
  std::string vg_body;
  bool up = eventually(15s, [&] {
    auto a = ne.Get("/metrics");
    auto b = vg.Get("/-/ready");
    return a && a->status == 200 && b && b->status == 200;
  });
  INFO(readFile(dir.file("node_exporter.log")) << readFile(dir.file("vigil.log")));
  REQUIRE(up);
  // node_exporter once, a fresh vigil cycle, then both scrapes back to back: vigil first, so
  // that whatever it serves was collected before node_exporter collects (a vigil cycle can run
  // between the two). node_exporter's first scrape tells how fast each counter moves.
  auto before = ne.Get("/metrics");
  std::this_thread::sleep_for(1100ms);
  auto b = vg.Get("/metrics");
  auto a = ne.Get("/metrics");
  REQUIRE(before);
  REQUIRE(a);
  REQUIRE(b);
  const Exposition theirs_before = parseExposition(before->body);
  const Exposition theirs = parseExposition(a->body);
  const Exposition ours = parseExposition(b->body);

  std::set<std::string> only_theirs;
  std::set<std::string> only_ours;
  for (const auto& [key, s] : theirs) {
    if (isShared(key) && ours.count(key) == 0 &&
        kExpectedOnlyInNodeExporter.count(nameOf(key)) == 0) {
      only_theirs.insert(key);
    }
  }
  for (const auto& [key, s] : ours) {
    if (isShared(key) && theirs.count(key) == 0) {
      only_ours.insert(key);
    }
  }
  std::string report;
  for (const auto& k : only_theirs) {
    report += "only in node_exporter: " + k + "\n";
  }
  for (const auto& k : only_ours) {
    report += "only in vigil: " + k + "\n";
  }
  INFO(report);
  CHECK(only_theirs.empty());
  CHECK(only_ours.empty());

  // Same types, and counters within a small tolerance: vigil's values are up to one collection
  // interval older than node_exporter's, which collects at scrape time, so a counter may lag
  // by as much as node_exporter saw it move in the 1.1 s between its scrapes (on a loaded
  // machine, TCP opens and forks move fast while their totals are still small).
  std::size_t compared = 0;
  std::size_t network_gauges = 0;
  for (const auto& [key, s] : theirs) {
    auto it = ours.find(key);
    if (!isShared(key) || it == ours.end()) {
      continue;
    }
    INFO(key);
    CHECK(it->second.type == s.type);
    if (s.type == "counter") {
      const auto earlier = theirs_before.find(key);
      const double moved = earlier == theirs_before.end() ? 0 : s.value - earlier->second.value;
      const double tolerance = std::max({5.0, std::fabs(s.value) * 0.02, moved});
      CHECK(std::fabs(it->second.value - s.value) <= tolerance);
      CHECK(it->second.value <= s.value + 1e-9);  // ours is not from the future
      ++compared;
    }
    // Network device properties (MTU, indexes, carrier, speed...) hold still: the same value.
    if (s.type == "gauge" && key.rfind("node_network_", 0) == 0) {
      CHECK(it->second.value == s.value);
      ++network_gauges;
    }
  }
  CHECK(compared > 50);
  CHECK(network_gauges > 10);
  // What waits in the sockets above holds still while nothing reads it.
  const std::string udp_rx = "node_udp_queues{ip=\"v4\",queue=\"rx\"}";
  REQUIRE(theirs.count(udp_rx) == 1);
  REQUIRE(ours.count(udp_rx) == 1);
  CHECK(theirs.at(udp_rx).value >= 80 * 100);
  CHECK(ours.at(udp_rx).value == theirs.at(udp_rx).value);
}

// The recorded tree of the golden tests (tests/fixtures/node: offline CPUs, a softnet table
// whose rows skip a CPU, cpufreq without cpuinfo_cur_freq on one CPU, device-mapper disks with
// udev data, hardware monitors on the platform and PCI buses, one without a device, one
// without a name, a fan that reports no number, thermal zones, ECC counters, DMI, NVMe...) read by
// a real node_exporter and by vigil: every series, value, HELP and TYPE the same, which also says
// that the golden files hold node_exporter's exposition.
TEST_CASE("node_exporter differential: the recorded tree gives the same exposition",
          "[integration][node]") {
  const std::string tree = VIGIL_SOURCE_DIR "/tests/fixtures/node";
  TempDir dir;
  const int ne_port = freeLoopbackPort();
  std::vector<std::string> ne_args = {
      "prometheus-node-exporter", "--web.listen-address=127.0.0.1:" + std::to_string(ne_port),
      "--path.procfs=" + tree + "/proc", "--path.sysfs=" + tree + "/sys",
      "--path.rootfs=" + tree + "/root", "--path.udev.data=" + tree + "/root/run/udev/data",
      // vigil reads /proc/net/dev; node_exporter's default, netlink, would ask this machine.
      "--no-collector.netdev.netlink", "--collector.disable-defaults"};
  for (const char* c : kNodeExporterCollectors) {
    if (readsFilesOnly(c)) {
      ne_args.push_back(std::string("--collector.") + c);
    }
  }
  ChildProcess node_exporter(ne_args, dir.file("node_exporter.log"));

  std::string yaml =
      "global:\n  collection_interval: 1s\nanomaly:\n  enabled: false\n"
      "collectors:\n  paths: {procfs: " +
      tree + "/proc, sysfs: " + tree + "/sys, rootfs: " + tree + "/root}\n";
  // The collectors that ask the running system rather than the tree, and vigil's own.
  for (const char* live : kLiveSystemCollectors) {
    yaml += std::string("  ") + live + ": {enabled: false}\n";
  }
  for (const char* other : {"textfile", "cgroup", "cost", "process", "push", "statsd", "postgres",
                            "probe", "redis", "scrape"}) {
    yaml += std::string("  ") + other + ": {enabled: false}\n";
  }
  dir.write("vigil.yaml", yaml);
  const int vigil_port = freeLoopbackPort();
  ChildProcess vigil(
      vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), vigil_port, dir.file("data")),
      dir.file("vigil.log"));

  auto exposition = [](const std::string& body) {
    return seriesAndMeta(
        body, [](const std::string& name) { return isShared(name); }, true);
  };
  httplib::Client ne("127.0.0.1", ne_port);
  httplib::Client vg("127.0.0.1", vigil_port);
  std::map<std::string, std::string> theirs;
  std::map<std::string, std::string> ours;
  INFO(readFile(dir.file("node_exporter.log")) << readFile(dir.file("vigil.log")));
  REQUIRE(eventually(15s, [&] {
    auto a = ne.Get("/metrics");
    auto b = vg.Get("/metrics");
    if (!a || a->status != 200 || !b || b->status != 200) {
      return false;
    }
    theirs = exposition(a->body);
    ours = exposition(b->body);
    return ours.count("node_udp_queues{ip=\"v4\",queue=\"rx\"}") == 1;  // a cycle has run
  }));
  const std::string differences = differencesBetween(theirs, ours);
  INFO(differences);
  CHECK(differences.empty());
  // Each collector's families are there (the tree has something for every one of them).
  for (const char* family : {"node_cpu_seconds_total",
                             "node_memory_MemTotal_bytes",
                             "node_disk_info",
                             "node_network_info",
                             "node_netstat_Tcp_CurrEstab",
                             "node_nf_conntrack_entries",
                             "node_os_info",
                             "node_entropy_available_bits",
                             "node_softnet_processed_total",
                             "node_udp_queues",
                             "node_arp_entries",
                             "node_schedstat_running_seconds_total",
                             "node_cpu_scaling_frequency_hertz",
                             "node_pressure_io_stalled_seconds_total",
                             "node_hwmon_temp_celsius",
                             "node_hwmon_fan_rpm",
                             "node_hwmon_sensor_label",
                             "node_dmi_info",
                             "node_thermal_zone_temp",
                             "node_cooling_device_max_state",
                             "node_edac_csrow_correctable_errors_total",
                             "node_nvme_info",
                             "node_rapl_dram_joules_total"}) {
    INFO(family);
    CHECK(theirs.count(std::string("# TYPE ") + family) == 1);
  }
  CHECK(theirs.size() > 250);
}

TEST_CASE("node_exporter differential: the textfile collector, good files and bad",
          "[integration][node]") {
  TempDir dir;
  std::filesystem::create_directories(dir.file("textfile"));
  auto write = [&](const std::string& name, const std::string& text) {
    dir.write("textfile/" + name, text);
  };
  write("backup.prom",
        "# HELP tf_backup_last_success_timestamp_seconds Last good backup.\n"
        "# TYPE tf_backup_last_success_timestamp_seconds gauge\n"
        "tf_backup_last_success_timestamp_seconds{db=\"app\"} 1.7e9\n"
        "tf_backup_last_success_timestamp_seconds{db=\"a \\\"quoted\\\" \\\\ name\"} 1.6e9\n");
  write("jobs.prom",
        "# TYPE tf_jobs_total counter\ntf_jobs_total{job=\"x\"} 5\n"
        "tf_untyped_no_help 3\n"
        "# TYPE tf_latency_seconds histogram\ntf_latency_seconds_bucket{le=\"0.5\"} 2\n"
        "tf_latency_seconds_bucket{le=\"+Inf\"} 3\ntf_latency_seconds_sum 1.25\n"
        "tf_latency_seconds_count 3\n");
  // Each of these is skipped by both, and flagged in node_textfile_scrape_error.
  write("broken.prom", "tf_half_written{job=\"x\" 1\n");
  write("stamped.prom", "tf_with_time 1 1700000000000\n");
  write("retyped.prom", "# TYPE tf_retyped gauge\ntf_retyped 1\n# TYPE tf_retyped gauge\n");
  write("rehelped.prom", "# HELP tf_rehelped One.\n# HELP tf_rehelped Two.\ntf_rehelped 1\n");
  write("notes.txt", "tf_not_a_prom_file 1\n");

  const int ne_port = freeLoopbackPort();
  ChildProcess node_exporter(nodeExporterTextfileArgv(ne_port, dir.file("textfile")),
                             dir.file("node_exporter.log"));
  const int vigil_port = freeLoopbackPort();
  dir.write("vigil.yaml",
            "global:\n  collection_interval: 1s\ncollectors:\n  textfile:\n"
            "    enabled: true\n    directory: " +
                dir.file("textfile") + "\n");
  ChildProcess vigil(
      vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), vigil_port, dir.file("data")),
      dir.file("vigil.log"));
  httplib::Client ne("127.0.0.1", ne_port);
  httplib::Client vg("127.0.0.1", vigil_port);

  // The textfile's series, node_textfile_*'s, and the HELP lines of the textfile's families.
  auto textfileSeries = [](const std::string& body) {
    return seriesAndMeta(
        body,
        [](const std::string& name) {
          return name.rfind("tf_", 0) == 0 || name.rfind("node_textfile_", 0) == 0;
        },
        false);
  };
  std::map<std::string, std::string> from_ne;
  std::map<std::string, std::string> from_vigil;
  INFO(readFile(dir.file("vigil.log")) << readFile(dir.file("node_exporter.log")));
  REQUIRE(eventually(15s, [&] {
    auto a = ne.Get("/metrics");
    auto b = vg.Get("/metrics");
    if (!a || a->status != 200 || !b || b->status != 200) {
      return false;
    }
    from_ne = textfileSeries(a->body);
    from_vigil = textfileSeries(b->body);
    return from_vigil.count("node_textfile_scrape_error") == 1;
  }));
  const std::string differences = differencesBetween(from_ne, from_vigil);
  INFO(differences);
  CHECK(differences.empty());
  CHECK(from_ne["node_textfile_scrape_error"] == "1");
  CHECK(from_ne.count("tf_jobs_total{job=\"x\"}") == 1);
  CHECK(from_ne.count("tf_retyped") == 0);
}
