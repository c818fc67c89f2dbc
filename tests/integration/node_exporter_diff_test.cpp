// Differential test: vigil and a real node_exporter 1.5 (Debian's prometheus-node-exporter),
// the same collectors, the same machine, scraped at the same moment.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "tests/support/process.h"

using namespace vigil::test;
using namespace std::chrono_literals;

namespace {

// The node_exporter collectors vigil implements, by node_exporter's names.
const char* const kSharedCollectors[] = {
    "cpu",       "meminfo",    "loadavg",  "stat",    "vmstat",   "filefd",
    "pressure",  "netdev",     "netclass", "netstat", "sockstat", "conntrack",
    "diskstats", "filesystem", "uname",    "time",    "os",       "timex"};

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

}  // namespace

TEST_CASE("node_exporter differential: same series, counters agree", "[integration][node]") {
  TempDir dir;
  const int ne_port = freeLoopbackPort();
  std::vector<std::string> ne_args = {"prometheus-node-exporter",
                                      "--web.listen-address=127.0.0.1:" + std::to_string(ne_port),
                                      "--collector.disable-defaults"};
  for (const char* c : kSharedCollectors) {
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
  // A fresh vigil cycle, then both scrapes back to back: vigil first, so that whatever it
  // serves was collected before node_exporter collects (a vigil cycle can run between the two).
  std::this_thread::sleep_for(1100ms);
  auto b = vg.Get("/metrics");
  auto a = ne.Get("/metrics");
  REQUIRE(a);
  REQUIRE(b);
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

  // Same types, and counters within a small tolerance (vigil's values are up to one collection
  // interval older than node_exporter's, which collects at scrape time).
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
      const double tolerance = std::max(5.0, std::fabs(s.value) * 0.02);
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
    std::map<std::string, std::string> out;
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);) {
      const bool help = line.rfind("# HELP ", 0) == 0;
      const std::string text = help ? line.substr(7) : line;
      if (text.rfind("tf_", 0) != 0 && text.rfind("node_textfile_", 0) != 0) {
        continue;
      }
      if (help) {
        out["# HELP " + text.substr(0, text.find(' '))] = text.substr(text.find(' ') + 1);
      } else {
        // Values compared as numbers: Go writes 1.796284128e+09 where vigil writes 1796284128.
        const auto space = line.rfind(' ');
        char value[32];
        std::snprintf(value, sizeof value, "%.17g", std::strtod(line.c_str() + space + 1, nullptr));
        out[line.substr(0, space)] = value;
      }
    }
    return out;
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
  std::string differences;
  for (const auto& [key, value] : from_ne) {
    if (auto it = from_vigil.find(key); it == from_vigil.end() || it->second != value) {
      differences += "node_exporter: " + key + " " + value + "\n";
    }
  }
  for (const auto& [key, value] : from_vigil) {
    if (auto it = from_ne.find(key); it == from_ne.end() || it->second != value) {
      differences += "vigil:         " + key + " " + value + "\n";
    }
  }
  INFO(differences);
  CHECK(differences.empty());
  CHECK(from_ne["node_textfile_scrape_error"] == "1");
  CHECK(from_ne.count("tf_jobs_total{job=\"x\"}") == 1);
  CHECK(from_ne.count("tf_retyped") == 0);
}
