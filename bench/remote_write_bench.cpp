// Remote write throughput per CPU second: vigil against Prometheus 2.42 in agent mode, both
// scraping the same loopback target every second and remote-writing to receivers in this
// process, measured over the same window of one run. Each side's CPU is its whole process
// (scrape, storage, reading back, encoding, sending), read from /proc.
//
//   build/bench/remote_write_bench [--series N] [--seconds S]
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "scrape_target.h"
#include "tests/support/process.h"
#include "vigil/exporters/remote_write.h"

using namespace std::chrono_literals;

namespace {

// A remote-write receiver that decodes every request and counts what it carried.
struct CountingReceiver {
  httplib::Server server;
  std::atomic<uint64_t> samples{0};
  std::atomic<uint64_t> bytes{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> bad{0};
  int port = 0;
  std::thread thread;

  CountingReceiver() {
    server.Post("/api/v1/write", [this](const httplib::Request& req, httplib::Response& res) {
      auto decoded = vigil::exporters::decodeWriteRequest(req.body);
      if (!decoded) {
        ++bad;
        res.status = 400;
        return;
      }
      uint64_t n = 0;
      for (const auto& s : decoded->series) {
        n += s.samples.size();
      }
      samples += n;
      bytes += req.body.size();
      ++requests;
      res.status = 204;
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~CountingReceiver() {
    server.stop();
    thread.join();
  }
};

}  // namespace

int main(int argc, char** argv) {
  const auto [series, seconds] = vigil::bench::parseBenchOptions(argc, argv, {10000, 60});
  // `series` counters that all move on every scrape.
  vigil::bench::ScrapeTarget target([series](uint64_t k) {
    std::string body;
    body.reserve(static_cast<std::size_t>(series) * 64);
    body += "# HELP bench_requests_total Requests served.\n# TYPE bench_requests_total counter\n";
    char line[128];
    for (int i = 0; i < series; ++i) {
      const int n = std::snprintf(line, sizeof line,
                                  "bench_requests_total{handler=\"h%d\",code=\"%d\"} %llu\n", i / 5,
                                  200 + i % 5, static_cast<unsigned long long>(k * (i % 7 + 1)));
      body.append(line, static_cast<std::size_t>(n));
    }
    return body;
  });
  CountingReceiver to_vigil;
  CountingReceiver to_prometheus;
  vigil::test::TempDir dir;
  const std::string target_address = target.address();
  const std::string config = vigil::bench::scrapeOnlyVigilConfig(
      target_address, "remote_write:\n  - url: http://127.0.0.1:" + std::to_string(to_vigil.port) +
                          "/api/v1/write\n");
  dir.write("vigil.yaml", config);
  dir.write("prometheus.yml",
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: bench\n    static_configs:\n"
            "      - targets: ['" +
                target_address + "']\nremote_write:\n  - url: http://127.0.0.1:" +
                std::to_string(to_prometheus.port) + "/api/v1/write\n");

  vigil::test::ChildProcess vigil_process(
      vigil::test::vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"),
                                vigil::test::freeLoopbackPort(), dir.file("data")),
      dir.file("vigil.log"));
  vigil::test::ChildProcess prometheus(
      {"prometheus", "--enable-feature=agent", "--config.file=" + dir.file("prometheus.yml"),
       "--storage.agent.path=" + dir.file("agent"),
       "--web.listen-address=127.0.0.1:" + std::to_string(vigil::test::freeLoopbackPort())},
      dir.file("prometheus.log"));

  std::printf("series=%d warm-up 15 s, then %d s measured\n", series, seconds);
  std::this_thread::sleep_for(15s);
  if (to_vigil.samples == 0 || to_prometheus.samples == 0) {
    std::fprintf(stderr, "no samples yet: vigil %llu, prometheus %llu\nvigil log:\n%s\n",
                 static_cast<unsigned long long>(to_vigil.samples.load()),
                 static_cast<unsigned long long>(to_prometheus.samples.load()),
                 vigil::test::readFile(dir.file("vigil.log")).c_str());
    return 1;
  }
  const double v_cpu0 = vigil::test::processCpuSeconds(vigil_process.pid());
  const double p_cpu0 = vigil::test::processCpuSeconds(prometheus.pid());
  const uint64_t v_s0 = to_vigil.samples, p_s0 = to_prometheus.samples;
  const uint64_t v_b0 = to_vigil.bytes, p_b0 = to_prometheus.bytes;
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const double v_cpu = vigil::test::processCpuSeconds(vigil_process.pid()) - v_cpu0;
  const double p_cpu = vigil::test::processCpuSeconds(prometheus.pid()) - p_cpu0;
  const double v_samples = static_cast<double>(to_vigil.samples - v_s0);
  const double p_samples = static_cast<double>(to_prometheus.samples - p_s0);
  const double v_bytes = static_cast<double>(to_vigil.bytes - v_b0);
  const double p_bytes = static_cast<double>(to_prometheus.bytes - p_b0);
  const double v_rss = vigil::test::processRssBytes(vigil_process.pid());
  const double p_rss = vigil::test::processRssBytes(prometheus.pid());

  std::printf("%-22s %12s %10s %16s %14s %10s\n", "", "samples/s", "cpu s", "samples/cpu-s",
              "bytes/sample", "RSS MiB");
  std::printf("%-22s %12.0f %10.2f %16.0f %14.2f %10.1f\n", "vigil", v_samples / seconds, v_cpu,
              v_samples / v_cpu, v_bytes / v_samples, v_rss / 1048576);
  std::printf("%-22s %12.0f %10.2f %16.0f %14.2f %10.1f\n", "prometheus --agent",
              p_samples / seconds, p_cpu, p_samples / p_cpu, p_bytes / p_samples, p_rss / 1048576);
  std::printf("vigil / prometheus samples per CPU second: %.2fx\n",
              (v_samples / v_cpu) / (p_samples / p_cpu));
  if (argc > 0 && std::getenv("BENCH_SHOW_LOG") != nullptr) {
    std::printf("%s\n", vigil::test::readFile(dir.file("vigil.log")).c_str());
  }
  std::printf("receiver errors: vigil %llu, prometheus %llu\n",
              static_cast<unsigned long long>(to_vigil.bad.load()),
              static_cast<unsigned long long>(to_prometheus.bad.load()));
  vigil_process.signal(SIGTERM);
  prometheus.signal(SIGTERM);
  vigil_process.waitExit(10s);
  prometheus.waitExit(10s);
  return 0;
}
