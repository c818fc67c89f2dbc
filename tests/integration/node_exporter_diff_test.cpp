// Differential test: vigil and a real node_exporter 1.5 (Debian's prometheus-node-exporter),
// the same collectors, the same machine, scraped at the same moment.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <cmath>
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
