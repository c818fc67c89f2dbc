#pragma once
// A running vigil scraped every second by a real Prometheus (Debian's package), both on loopback,
// for tests that check what Prometheus sees of vigil's output.
#include <httplib.h>

#include <memory>
#include <string>

#include "tests/support/process.h"

namespace vigil::test {

class ScrapedVigil {
 public:
  explicit ScrapedVigil(const std::string& job) : vigil_port_(freeLoopbackPort()) {
    dir_.write("vigil.yaml", "global:\n  collection_interval: 1s\n");
    vigil_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{VIGIL_BINARY, "run", "--config", dir_.file("vigil.yaml"),
                                 "--listen-address", "127.0.0.1:" + std::to_string(vigil_port_),
                                 "--data-dir", dir_.file("data")},
        dir_.file("vigil.log"));
    const int prom_port = freeLoopbackPort();
    dir_.write("prometheus.yml",
               "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
               "scrape_configs:\n  - job_name: " +
                   job + "\n    static_configs:\n      - targets: ['127.0.0.1:" +
                   std::to_string(vigil_port_) + "']\n");
    prometheus_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"prometheus", "--config.file=" + dir_.file("prometheus.yml"),
                                 "--storage.tsdb.path=" + dir_.file("tsdb"),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
        dir_.file("prometheus.log"));
    client_ = std::make_unique<httplib::Client>("127.0.0.1", prom_port);
    client_->set_connection_timeout(1, 0);
  }

  int vigilPort() const { return vigil_port_; }
  httplib::Client& prometheus() { return *client_; }

  // The body of Prometheus's /api/v1/query answer, or "" when it did not answer 200.
  std::string query(const std::string& expr) {
    auto res = client_->Get("/api/v1/query", httplib::Params{{"query", expr}}, httplib::Headers{});
    return res && res->status == 200 ? res->body : "";
  }
  bool hasData(const std::string& expr) {
    return query(expr).find("\"value\":[") != std::string::npos;
  }

  std::string prometheusLog() const { return readFile(dir_.file("prometheus.log")); }
  std::string vigilLog() const { return readFile(dir_.file("vigil.log")); }

 private:
  TempDir dir_;
  int vigil_port_;
  std::unique_ptr<ChildProcess> vigil_;
  std::unique_ptr<ChildProcess> prometheus_;
  std::unique_ptr<httplib::Client> client_;
};

}  // namespace vigil::test
