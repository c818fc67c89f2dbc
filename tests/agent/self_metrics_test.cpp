// vigil's own health metrics: counted from any thread, one series per label set, and read in
// place by every scrape (the batch a scrape recycles keeps seeing the current values).
#include <catch2/catch.hpp>
#include <thread>
#include <vector>

#include "agent/core/self_metrics.h"
#include "tests/support/collect.h"

using namespace vigil;

TEST_CASE("Self metrics: requests counted from many threads, a series per handler and code",
          "[agent][self]") {
  SelfMetrics self("1.2.3", "abc");
  constexpr int kThreads = 4;
  constexpr int kRequests = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&self, t] {
      for (int i = 0; i < kRequests; ++i) {
        self.httpRequest(t % 2 == 0 ? "/metrics" : "/api/v1/query", i % 10 == 0 ? 400 : 200);
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  self.httpRefused("forbidden");
  MetricBatch batch;
  self.snapshot(batch);
  const auto got = test::flattenBatch(batch);
  const auto at = [&](const std::string& key) {
    const auto it = got.find(key);
    return it == got.end() ? -1.0 : it->second;
  };
  // Two threads per handler, one request in ten a 400.
  CHECK(at("vigil_http_requests_total|code=200|handler=/metrics") == 2 * kRequests * 9 / 10);
  CHECK(at("vigil_http_requests_total|code=400|handler=/metrics") == 2 * kRequests / 10);
  CHECK(at("vigil_http_requests_total|code=200|handler=/api/v1/query") == 2 * kRequests * 9 / 10);
  CHECK(at("vigil_http_requests_total|code=400|handler=/api/v1/query") == 2 * kRequests / 10);
  std::size_t request_series = 0;
  for (const auto& [key, value] : got) {
    request_series += key.rfind("vigil_http_requests_total|", 0) == 0 ? 1 : 0;
  }
  CHECK(request_series == 4);
  CHECK(at("vigil_http_requests_refused_total|reason=forbidden") == 1);
  CHECK(at("vigil_build_info|revision=abc|version=1.2.3") == 1);
  // Made at 0 up front, so that rate() sees the first one.
  CHECK(at("vigil_clock_jumps_total|direction=backward") == 0);
  CHECK(at("vigil_store_checkpoint_failures_total") == 0);
  // Nothing refused for a missing token yet: no series, and no family without series.
  CHECK(at("vigil_http_requests_refused_total|reason=unauthenticated") == -1);
  CHECK(at("vigil_http_tls_reloads_total|result=success") == -1);
  for (const auto& f : batch.families()) {
    CHECK(!f.samples.empty());
  }

  // A recycled batch, as the agent keeps between scrapes, shows the values of the moment.
  self.configReload(false, 0);
  self.clockJumped(-5000, 7);
  batch.recycle();
  self.snapshot(batch);
  const auto again = test::flattenBatch(batch);
  CHECK(again.at("vigil_config_last_reload_successful") == 0);
  CHECK(again.at("vigil_config_reload_failures_total") == 1);
  CHECK(again.at("vigil_clock_jumps_total|direction=backward") == 1);
  CHECK(again.at("vigil_clock_dropped_samples_total") == 7);
  CHECK(again.at("vigil_http_requests_total|code=200|handler=/metrics") == 2 * kRequests * 9 / 10);
}
