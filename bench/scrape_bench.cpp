// The exposition parser and the ingest behind it: vigil (only its scrape collector) and
// Prometheus 2.42 both scrape the same static body every second from a loopback target; the
// CPU each process spends per scraped sample over the same window is compared. The body is
// also parsed in this process with vigil's parser alone, for its raw rate.
//
//   build/bench/scrape_bench [--series N] [--seconds S]
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "scrape_target.h"
#include "tests/support/process.h"
#include "vigil/text_parser.h"

using namespace std::chrono_literals;

namespace {

// Counters with three labels and histograms with ten buckets, as an API's /metrics looks.
std::string staticBody(int series) {
  std::string body;
  body +=
      "# HELP api_requests_total Requests by route, method and code.\n"
      "# TYPE api_requests_total counter\n";
  const int counters = series * 7 / 10;
  char line[256];
  for (int i = 0; i < counters; ++i) {
    const int n = std::snprintf(
        line, sizeof line,
        "api_requests_total{route=\"/v1/resource/%d\",method=\"%s\",code=\"%d\"} %d\n", i / 10,
        i % 2 == 0 ? "GET" : "POST", 200 + i % 5, 1000 + i * 7);
    body.append(line, static_cast<std::size_t>(n));
  }
  body +=
      "# HELP api_request_duration_seconds Request latency.\n"
      "# TYPE api_request_duration_seconds histogram\n";
  static const char* kBounds[] = {"0.005", "0.01", "0.025", "0.05", "0.1",
                                  "0.25",  "0.5",  "1",     "2.5",  "+Inf"};
  for (int h = 0; h < (series - counters) / 12; ++h) {
    for (int b = 0; b < 10; ++b) {
      const int n = std::snprintf(line, sizeof line,
                                  "api_request_duration_seconds_bucket{route=\"/v1/resource/%d\","
                                  "le=\"%s\"} %d\n",
                                  h, kBounds[b], 10 * (b + 1) + h);
      body.append(line, static_cast<std::size_t>(n));
    }
    const int n = std::snprintf(line, sizeof line,
                                "api_request_duration_seconds_sum{route=\"/v1/resource/%d\"} "
                                "%.3f\napi_request_duration_seconds_count{route=\"/v1/resource/"
                                "%d\"} %d\n",
                                h, 12.5 + h, h, 100 + h);
    body.append(line, static_cast<std::size_t>(n));
  }
  return body;
}

}  // namespace

int main(int argc, char** argv) {
  const auto [series, seconds] = vigil::bench::parseBenchOptions(argc, argv, {50000, 60});
  const std::string body = staticBody(series);

  // vigil's parser alone, in this process.
  std::size_t parsed_samples = 0;
  const auto started = std::chrono::steady_clock::now();
  int rounds = 0;
  while (std::chrono::steady_clock::now() - started < 3s) {
    auto r = vigil::parseTextFormat(body);
    if (!r) {
      std::fprintf(stderr, "the body does not parse: %s\n", r.status().message().c_str());
      return 1;
    }
    parsed_samples += r->samples;
    ++rounds;
  }
  const double parse_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("body: %zu samples, %.1f MiB\n", parsed_samples / rounds,
              static_cast<double>(body.size()) / 1048576);
  std::printf("vigil parser alone: %.0f samples/s, %.0f MiB/s on one core\n",
              static_cast<double>(parsed_samples) / parse_seconds,
              static_cast<double>(body.size()) * rounds / parse_seconds / 1048576);

  vigil::bench::ScrapeTarget target([&body](uint64_t) { return body; });
  vigil::test::TempDir dir;
  dir.write("vigil.yaml", vigil::bench::scrapeOnlyVigilConfig(target.address()));
  dir.write("prometheus.yml",
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
            "scrape_configs:\n  - job_name: bench\n    static_configs:\n"
            "      - targets: ['" +
                target.address() + "']\n");
  const int vigil_port = vigil::test::freeLoopbackPort();
  vigil::test::ChildProcess vigil_process(
      vigil::test::vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), vigil_port, dir.file("data")),
      dir.file("vigil.log"));
  vigil::test::ChildProcess prometheus(
      {"prometheus", "--config.file=" + dir.file("prometheus.yml"),
       "--storage.tsdb.path=" + dir.file("tsdb"),
       "--web.listen-address=127.0.0.1:" + std::to_string(vigil::test::freeLoopbackPort())},
      dir.file("prometheus.log"));
  std::printf("warm-up 15 s, then %d s measured, both scraping every second\n", seconds);
  std::this_thread::sleep_for(15s);
  const uint64_t scrapes0 = target.scrapes;
  const uint64_t vigil_scrapes0 = target.scrapes_by_vigil;
  const double v0 = vigil::test::processCpuSeconds(vigil_process.pid());
  const double p0 = vigil::test::processCpuSeconds(prometheus.pid());
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  const double v = vigil::test::processCpuSeconds(vigil_process.pid()) - v0;
  const double p = vigil::test::processCpuSeconds(prometheus.pid()) - p0;
  const double vigil_scrapes = static_cast<double>(target.scrapes_by_vigil - vigil_scrapes0);
  const double prom_scrapes = static_cast<double>(target.scrapes - scrapes0) - vigil_scrapes;
  const double per_scrape = static_cast<double>(parsed_samples / rounds);
  std::printf("%-14s %10s %18s %14s\n", "", "cpu s", "samples/cpu-s", "RSS MiB");
  std::printf("%-14s %10.2f %18.0f %14.1f\n", "vigil", v, per_scrape * vigil_scrapes / v,
              vigil::test::processRssBytes(vigil_process.pid()) / 1048576);
  std::printf("%-14s %10.2f %18.0f %14.1f\n", "prometheus", p, per_scrape * prom_scrapes / p,
              vigil::test::processRssBytes(prometheus.pid()) / 1048576);
  std::printf(
      "vigil / prometheus, samples scraped per CPU second: %.2fx (scrapes: vigil %.0f, "
      "prometheus %.0f)\n",
      (per_scrape * vigil_scrapes / v) / (per_scrape * prom_scrapes / p), vigil_scrapes,
      prom_scrapes);
  vigil_process.signal(SIGTERM);
  prometheus.signal(SIGTERM);
  vigil_process.waitExit(10s);
  prometheus.waitExit(10s);
  return 0;
}
