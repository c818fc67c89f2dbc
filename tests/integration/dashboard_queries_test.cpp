// The Grafana "Node Exporter Full" (1860) dashboard's variables and core panels, evaluated by a
// real Prometheus over vigil's output: they must all return data.
#include <catch2/catch.hpp>

#include "tests/support/scraped_vigil.h"

using namespace vigil::test;
using namespace std::chrono_literals;

TEST_CASE("Node Exporter Full dashboard queries return data from vigil",
          "[integration][prometheus][dashboard]") {
  ScrapedVigil stack("node");
  const int vigil_port = stack.vigilPort();
  httplib::Client& client = stack.prometheus();
  // Rates need a few scrapes.
  bool ready =
      eventually(60s, [&] { return stack.hasData("count_over_time(up{job=\"node\"}[1m]) >= 4"); });
  INFO("prometheus log:\n" << stack.prometheusLog());
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
    INFO(expr << "\n-> " << stack.query(expr));
    CHECK(stack.hasData(expr));
  }
}
