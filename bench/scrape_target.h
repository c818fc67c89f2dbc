#pragma once
// What the scrape benchmarks share: a loopback scrape target and the configuration of a vigil
// that runs only its scrape collector.
#include <httplib.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <thread>

namespace vigil::bench {

// A loopback /metrics target; `body(k)` is the k-th scrape's body (k from 1).
struct ScrapeTarget {
  httplib::Server server;
  std::atomic<uint64_t> scrapes{0};
  std::atomic<uint64_t> scrapes_by_vigil{0};  // by User-Agent; the rest are Prometheus's
  int port = 0;
  std::thread thread;

  explicit ScrapeTarget(std::function<std::string(uint64_t)> body) {
    server.Get("/metrics", [this, body](const httplib::Request& req, httplib::Response& res) {
      if (req.get_header_value("User-Agent").starts_with("vigil")) {
        ++scrapes_by_vigil;
      }
      res.set_content(body(++scrapes), "text/plain; version=0.0.4");
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~ScrapeTarget() {
    server.stop();
    thread.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

// A vigil configuration with every collector but `scrape` off and no anomaly models, scraping
// `target` every second; `extra` is appended (a remote_write section, say).
inline std::string scrapeOnlyVigilConfig(const std::string& target, const std::string& extra = "") {
  static const char* kOtherCollectors[] = {
      "cpu",    "meminfo",  "loadavg",  "stat",     "vmstat",    "filefd",    "pressure",
      "netdev", "netclass", "netstat",  "sockstat", "conntrack", "diskstats", "filesystem",
      "uname",  "time",     "os",       "timex",    "textfile",  "cgroup",    "process",
      "push",   "statsd",   "postgres", "probe",    "redis"};
  std::string config =
      "global:\n  collection_interval: 1s\nanomaly:\n  enabled: false\ncollectors:\n";
  for (const char* c : kOtherCollectors) {
    config += std::string("  ") + c + ": {enabled: false}\n";
  }
  config +=
      "  scrape:\n    interval: 1s\n    scrape_configs:\n      - job_name: bench\n"
      "        static_configs:\n          - targets: ['" +
      target + "']\n";
  return config + extra;
}

// The benchmarks' options: --series N and --seconds S.
struct BenchOptions {
  int series;
  int seconds;
};
inline BenchOptions parseBenchOptions(int argc, char** argv, BenchOptions defaults) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--series") == 0) {
      defaults.series = std::atoi(argv[i + 1]);
    } else if (std::strcmp(argv[i], "--seconds") == 0) {
      defaults.seconds = std::atoi(argv[i + 1]);
    }
  }
  return defaults;
}

}  // namespace vigil::bench
