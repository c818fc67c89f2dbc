// Alert ingestion benchmark against Alertmanager 0.25, in one run:
//
//   build/bench/alerting_bench
//
// The same streams are posted to a real Alertmanager and to vigil (one after the other, each
// alone on the machine), over /api/v2/alerts:
//   repeated  50,000 alerts in batches of 100 over 200 label sets (the same alerts re-sent,
//             as Prometheus re-sends firing alerts);
//   distinct  50,000 different alerts in batches of 100, in 50 groups.
// Reported: the server's CPU per 1,000 alerts (from /proc/PID/stat), alerts per CPU second and
// the ratio vigil/Alertmanager; after `distinct`, resident memory per active alert (RSS growth
// over the idle process divided by 50,000).
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "bench/workload.h"
#include "tests/support/process.h"

using namespace vigil::test;
using namespace std::chrono_literals;

namespace {

// Long timers: nothing is flushed while the bench runs, so the cost is ingestion and grouping.
const char* kRouting = R"(route:
  receiver: sink
  group_by: [alertname]
  group_wait: 1h
  group_interval: 1h
  repeat_interval: 4h
receivers:
  - name: sink
)";

std::string batch(int first, int count, int modulo, int groups) {
  std::string body = "[";
  for (int i = first; i < first + count; ++i) {
    const int id = modulo > 0 ? i % modulo : i;
    body += (i > first ? "," : "") + std::string("{\"labels\":{\"alertname\":\"Alert") +
            std::to_string(id % groups) + "\",\"instance\":\"node-" + std::to_string(id) +
            ":9100\",\"job\":\"node\",\"severity\":\"warning\"},\"annotations\":{\"summary\":" +
            "\"Something is wrong on node-" + std::to_string(id) + "\"}}";
  }
  return body + "]";
}

struct Figures {
  double cpu_ms_per_1000_repeated = 0;
  double cpu_ms_per_1000_distinct = 0;
  double bytes_per_alert = 0;
};

Figures measure(const char* name, pid_t pid, int port) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  // One persistent connection, as Prometheus's notifier keeps to each Alertmanager, without
  // Nagle's algorithm, as Go's net/http sends. With it, the body of a request waits for the
  // acknowledgement of its header, which the server's delayed ACK holds back: each request can
  // stall for 40 ms, and the server wakes up more often for less data.
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true);
  if (!eventually(20s, [&] {
        auto r = client.Get("/api/v2/status");
        return r && r->status == 200;
      })) {
    std::fprintf(stderr, "%s did not start\n", name);
    std::exit(1);
  }
  std::this_thread::sleep_for(1s);
  const double rss_idle = processRssBytes(pid);
  auto post = [&](const std::string& body) {
    auto r = client.Post("/api/v2/alerts", body, "application/json");
    if (!r || r->status != 200) {
      std::fprintf(stderr, "%s rejected a batch\n", name);
      std::exit(1);
    }
  };
  constexpr int kAlerts = 50000;
  constexpr int kBatch = 100;
  std::vector<std::string> repeated;
  std::vector<std::string> distinct;
  for (int i = 0; i < kAlerts; i += kBatch) {
    repeated.push_back(batch(i, kBatch, 200, 50));
    distinct.push_back(batch(1000000 + i, kBatch, 0, 50));
  }
  Figures f;
  double cpu = processCpuSeconds(pid);
  for (const auto& b : repeated) {
    post(b);
  }
  f.cpu_ms_per_1000_repeated = (processCpuSeconds(pid) - cpu) * 1000 / (kAlerts / 1000.0);
  cpu = processCpuSeconds(pid);
  for (const auto& b : distinct) {
    post(b);
  }
  f.cpu_ms_per_1000_distinct = (processCpuSeconds(pid) - cpu) * 1000 / (kAlerts / 1000.0);
  std::this_thread::sleep_for(2s);
  f.bytes_per_alert = (processRssBytes(pid) - rss_idle) / kAlerts;
  std::printf("%-12s repeated: %6.1f ms CPU per 1,000 alerts (%8.0f alerts per CPU second)\n", name,
              f.cpu_ms_per_1000_repeated, 1e6 / f.cpu_ms_per_1000_repeated);
  std::printf(
      "%-12s distinct: %6.1f ms CPU per 1,000 alerts (%8.0f alerts per CPU second), "
      "%.0f bytes RSS per active alert\n",
      name, f.cpu_ms_per_1000_distinct, 1e6 / f.cpu_ms_per_1000_distinct, f.bytes_per_alert);
  return f;
}

}  // namespace

int main() {
  TempDir dir;
  dir.write("am.yml", kRouting);
  std::string indented;
  for (std::size_t pos = 0, next; pos < std::string(kRouting).size(); pos = next + 1) {
    next = std::string(kRouting).find('\n', pos);
    indented += "  " + std::string(kRouting).substr(pos, next - pos) + "\n";
  }
  // vigil without collectors or rules: the bench measures the alert pipeline alone.
  dir.write("vigil.yaml", vigil::bench::collectorsDisabledYaml() +
                              vigil::bench::unlimitedLoopbackWebYaml() + "alerting:\n" + indented);
  Figures am;
  {
    const int port = freeLoopbackPort();
    ChildProcess p({"prometheus-alertmanager", "--config.file=" + dir.file("am.yml"),
                    "--storage.path=" + dir.file("am-data"),
                    "--web.listen-address=127.0.0.1:" + std::to_string(port),
                    "--cluster.listen-address=", "--log.level=warn"},
                   dir.file("am.log"));
    am = measure("alertmanager", p.pid(), port);
  }
  Figures vigil;
  {
    const int port = freeLoopbackPort();
    ChildProcess p({VIGIL_BINARY, "run", "--config", dir.file("vigil.yaml"), "--listen-address",
                    "127.0.0.1:" + std::to_string(port), "--data-dir", dir.file("vigil-data")},
                   dir.file("vigil.log"));
    vigil = measure("vigil", p.pid(), port);
  }
  std::printf(
      "ratio        ingest per CPU second vigil/alertmanager: repeated %.1fx, distinct %.1fx "
      "(target >= 10x); memory per alert %.0f vs %.0f bytes (target <= 500)\n",
      am.cpu_ms_per_1000_repeated / vigil.cpu_ms_per_1000_repeated,
      am.cpu_ms_per_1000_distinct / vigil.cpu_ms_per_1000_distinct, vigil.bytes_per_alert,
      am.bytes_per_alert);
  return 0;
}
