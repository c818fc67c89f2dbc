// A real Prometheus (Debian's package) scrapes vigil over loopback.
#include <httplib.h>

#include <catch2/catch.hpp>

#include "tests/support/process.h"

using namespace vigil::test;
using namespace std::chrono_literals;

TEST_CASE("Prometheus scrapes vigil: up{job=\"vigil\"} is 1", "[integration][prometheus]") {
  TempDir dir;
  const int vigil_port = freeLoopbackPort();
  dir.write("vigil.yaml", "global:\n  collection_interval: 1s\n");
  ChildProcess vigil({VIGIL_BINARY, "run", "--config", dir.file("vigil.yaml"), "--listen-address",
                      "127.0.0.1:" + std::to_string(vigil_port), "--data-dir", dir.file("data")},
                     dir.file("vigil.log"));

  const int prom_port = freeLoopbackPort();
  dir.write("prometheus.yml",
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: vigil\n    static_configs:\n"
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
  bool up = eventually(60s, [&] {
    // One series, value "1".
    return query("up{job=\"vigil\"} == 1").find("\"value\":[") != std::string::npos;
  });
  INFO("prometheus log:\n" << readFile(dir.file("prometheus.log")));
  INFO("vigil log:\n" << readFile(dir.file("vigil.log")));
  REQUIRE(up);
  // What the Node Exporter Full dashboard's variables hang on arrived too.
  CHECK_THAT(query("node_uname_info"), Catch::Contains("\"nodename\":"));
  CHECK_THAT(query("scrape_samples_scraped{job=\"vigil\"} > 100"), Catch::Contains("\"value\":["));
}
