// The Grafana "Node Exporter Full" (1860) dashboard's variables and core panels, evaluated by a
// real Prometheus over vigil's output: they must all return data.
#include <httplib.h>

#include <catch2/catch.hpp>

#include "tests/support/process.h"

using namespace vigil::test;
using namespace std::chrono_literals;

TEST_CASE("Node Exporter Full dashboard queries return data from vigil",
          "[integration][prometheus][dashboard]") {
  TempDir dir;
  const int vigil_port = freeLoopbackPort();
  dir.write("vigil.yaml", "global:\n  collection_interval: 1s\n");
  ChildProcess vigil({VIGIL_BINARY, "run", "--config", dir.file("vigil.yaml"), "--listen-address",
                      "127.0.0.1:" + std::to_string(vigil_port), "--data-dir", dir.file("data")},
                     dir.file("vigil.log"));
  const int prom_port = freeLoopbackPort();
  dir.write("prometheus.yml",
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: node\n    static_configs:\n"
            "      - targets: ['127.0.0.1:" +
                std::to_string(vigil_port) + "']\n");
  ChildProcess prometheus({"prometheus", "--config.file=" + dir.file("prometheus.yml"),
                           "--storage.tsdb.path=" + dir.file("tsdb"),
                           "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                          dir.file("prometheus.log"));
  httplib::Client client("127.0.0.1", prom_port);
  client.set_connection_timeout(1, 0);
  auto query = [&](const std::string& expr) -> std::string {
    auto res = client.Get("/api/v1/query", httplib::Params{{"query", expr}}, httplib::Headers{});
    return res && res->status == 200 ? res->body : "";
  };
  auto hasData = [&](const std::string& expr) {
    return query(expr).find("\"value\":[") != std::string::npos;
  };
  // Rates need a few scrapes.
  bool ready =
      eventually(60s, [&] { return hasData("count_over_time(up{job=\"node\"}[1m]) >= 4"); });
  INFO("prometheus log:\n" << readFile(dir.file("prometheus.log")));
  REQUIRE(ready);

  // The template variables: job -> nodename -> instance.
  auto job = client.Get("/api/v1/label/job/values", httplib::Params{{"match[]", "node_uname_info"}},
                        httplib::Headers{});
  REQUIRE(job);
  CHECK_THAT(job->body, Catch::Contains("\"node\""));
  auto nodename =
      client.Get("/api/v1/label/nodename/values",
                 httplib::Params{{"match[]", "node_uname_info{job=\"node\"}"}}, httplib::Headers{});
  REQUIRE(nodename);
  CHECK_THAT(nodename->body, Catch::Contains("\"data\":[\""));

  const std::string sel = "instance=\"127.0.0.1:" + std::to_string(vigil_port) + "\",job=\"node\"";
  const std::vector<std::string> panels = {
      // CPU Busy
      "100 * (1 - avg(rate(node_cpu_seconds_total{mode=\"idle\"," + sel + "}[5s])))",
      // Sys Load
      "scalar(node_load1{" + sel + "}) * 100 / count(count(node_cpu_seconds_total{" + sel +
          "}) by (cpu))",
      // RAM Used
      "clamp_min((1 - (node_memory_MemAvailable_bytes{" + sel + "} / node_memory_MemTotal_bytes{" +
          sel + "})) * 100, 0)",
      // Root FS Used
      "(node_filesystem_size_bytes{" + sel +
          ",mountpoint=\"/\",fstype!=\"rootfs\"} - "
          "node_filesystem_avail_bytes{" +
          sel +
          ",mountpoint=\"/\",fstype!=\"rootfs\"}) / "
          "node_filesystem_size_bytes{" +
          sel + ",mountpoint=\"/\",fstype!=\"rootfs\"} * 100",
      // Uptime
      "node_time_seconds{" + sel + "} - node_boot_time_seconds{" + sel + "}",
      // Network Traffic
      "rate(node_network_receive_bytes_total{" + sel + "}[5s])*8",
      // Memory Basic: used
      "node_memory_MemTotal_bytes{" + sel + "} - node_memory_MemFree_bytes{" + sel +
          "} - (node_memory_Cached_bytes{" + sel + "} + node_memory_Buffers_bytes{" + sel +
          "} + node_memory_SReclaimable_bytes{" + sel + "})",
      // Disk IOps and throughput
      "rate(node_disk_reads_completed_total{" + sel + "}[5s])",
      "rate(node_disk_written_bytes_total{" + sel + "}[5s])",
      // Context switches, file descriptors, sockets
      "rate(node_context_switches_total{" + sel + "}[5s])",
      "node_filefd_allocated{" + sel + "}",
      "node_sockstat_TCP_alloc{" + sel + "}",
      "node_netstat_Tcp_CurrEstab{" + sel + "}",
  };
  for (const auto& expr : panels) {
    INFO(expr << "\n-> " << query(expr));
    CHECK(hasData(expr));
  }
}
