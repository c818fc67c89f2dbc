// The scrape collector against a real HTTP server on loopback serving good, malformed, huge and
// slow bodies: Prometheus's target labels and synthetic series, honor_labels, limits, and one
// bad target never affecting another.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <mutex>
#include <thread>

#include "agent/collectors/service/scrape_collector.h"
#include "tests/support/collect.h"
#include "tests/support/loopback_server.h"
#include "tests/support/process.h"
#include "tests/support/relabel.h"

using namespace vigil;
using namespace vigil::test;
using namespace std::chrono_literals;

namespace {

const char* kGood = R"(# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="200"} 10
http_requests_total{code="500",job="from-app"} 1
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 3
latency_seconds_bucket{le="+Inf"} 4
latency_seconds_sum 0.5
latency_seconds_count 4
)";

// A target serving good, malformed, huge and slow bodies.
struct Target : LoopbackServer {
  Target() {
    http.Get("/good", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(kGood, "text/plain; version=0.0.4");
    });
    http.Get("/malformed", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok_metric 1\nbroken{x=\"1\" 2\n", "text/plain");
    });
    http.Get("/huge", [](const httplib::Request&, httplib::Response& res) {
      std::string body;
      for (int i = 0; i < 5000; ++i) {
        body += "series_" + std::to_string(i) + " 1\n";
      }
      res.set_content(body, "text/plain");
    });
    http.Get("/slow", [](const httplib::Request&, httplib::Response& res) {
      std::this_thread::sleep_for(3s);
      res.set_content("late 1\n", "text/plain");
    });
    start();
  }
};

ScrapeConfig job(const std::string& name, const std::string& path, const std::string& address) {
  ScrapeConfig c;
  c.job_name = name;
  c.metrics_path = path;
  c.targets.push_back({address, {{"team", "web"}}});
  return c;
}

// One scrape of every target (1.5 s allowed), flattened.
std::map<std::string, double> scrapeOnce(Collector& collector) {
  return flattenBatch(collectBatch(collector, 1500ms));
}

}  // namespace

TEST_CASE("Scrape collector: targets labelled, bad targets fail alone", "[scrape][integration]") {
  Target target;
  const std::string a = target.address();
  CollectorSettings settings;
  ScrapeConfig huge = job("huge", "/huge", a);
  huge.body_size_limit = 10 * 1024;
  ScrapeConfig limited = job("limited", "/huge", a);
  limited.sample_limit = 100;
  limited.body_size_limit = 1 << 20;
  // The slow one first: it must not cost the others their scrape.
  settings.scrapes = {job("slow", "/slow", a), job("app", "/good", a),
                      job("broken", "/malformed", a), huge, limited};
  auto collector = collectors::makeScrapeCollector(settings, HostPaths{});
  REQUIRE(collector);
  auto m = scrapeOnce(**collector);
  const std::string t = "|instance=" + a;
  auto labels = [&](const std::string& job) { return t + "|job=" + job + "|team=web"; };
  CHECK(m["up" + labels("app")] == 1);
  CHECK(m["up" + labels("broken")] == 0);
  CHECK(m["up" + labels("huge")] == 0);
  CHECK(m["up" + labels("limited")] == 0);
  CHECK(m["up" + labels("slow")] == 0);
  CHECK(m["scrape_samples_scraped" + labels("app")] == 6);
  CHECK(m["scrape_series_added" + labels("app")] == 6);
  CHECK(m["scrape_duration_seconds" + labels("app")] > 0);
  // The target's labels added; the app's own job label kept as exported_job.
  CHECK(m["http_requests_total|code=200" + t + "|job=app|team=web"] == 10);
  CHECK(m["http_requests_total|code=500|exported_job=from-app" + t + "|job=app|team=web"] == 1);
  CHECK(m["latency_seconds_bucket" + t + "|job=app|le=+Inf|team=web"] == 4);
  CHECK(m["latency_seconds_count" + t + "|job=app|team=web"] == 4);
  // Nothing of the malformed body is used, not even the line before the bad one.
  for (const auto& [key, v] : m) {
    CHECK(key.find("ok_metric") == std::string::npos);
    CHECK(key.find("series_1") == std::string::npos);
  }

  // A second scrape adds no new series; honor_labels keeps the app's job.
  CHECK(scrapeOnce(**collector)["scrape_series_added" + labels("app")] == 0);
  CollectorSettings honoring;
  ScrapeConfig honor = job("app", "/good", a);
  honor.honor_labels = true;
  honoring.scrapes = {honor};
  auto honoring_collector = collectors::makeScrapeCollector(honoring, HostPaths{});
  REQUIRE(honoring_collector);
  CHECK(scrapeOnce(
            **honoring_collector)["http_requests_total|code=500" + t + "|job=from-app|team=web"] ==
        1);
}

TEST_CASE("Scrape collector: a target that never finishes its body is cut off at the deadline",
          "[scrape][integration]") {
  // A valid start, then a line every 100 ms for ever: every read succeeds, so only the
  // scrape's own deadline ends it, and the other target is scraped meanwhile.
  LoopbackServer endless;
  endless.http.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [](size_t, httplib::DataSink& sink) {
      std::this_thread::sleep_for(100ms);
      static const std::string line = "trickle 1\n";
      return sink.write(line.data(), line.size());
    });
  });
  endless.start();
  Target target;
  CollectorSettings settings;
  settings.scrapes = {job("endless", "/metrics", endless.address()),
                      job("app", "/good", target.address())};
  auto collector = collectors::makeScrapeCollector(settings, HostPaths{});
  REQUIRE(collector);
  const auto started = std::chrono::steady_clock::now();
  auto m = scrapeOnce(**collector);
  CHECK(std::chrono::steady_clock::now() - started < 2500ms);
  CHECK(m["up|instance=" + endless.address() + "|job=endless|team=web"] == 0);
  CHECK(m["up|instance=" + target.address() + "|job=app|team=web"] == 1);
  for (const auto& [key, v] : m) {
    CHECK(key.find("trickle") == std::string::npos);
  }
}

TEST_CASE(
    "Scrape collector: relabel_configs pick and label targets, metric_relabel_configs "
    "rewrite samples",
    "[scrape][integration]") {
  Target target;
  const std::string a = target.address();
  ScrapeConfig c = job("app", "/nowhere", a);
  c.targets.push_back({"127.0.0.2:1", {{"team", "db"}}});
  c.relabel_configs = {
      // Only the web team's targets; the path comes from a label; instance named by hand.
      relabelRule(RelabelAction::kKeep, {"team"}, "web"),
      relabelRule(RelabelAction::kReplace, {}, ".*", "__metrics_path__", "/good"),
      relabelRule(RelabelAction::kReplace, {"__address__"}, "127\\.0\\.0\\.1:(.*)", "instance",
                  "local-$1"),
  };
  c.metric_relabel_configs = {
      relabelRule(RelabelAction::kDrop, {"__name__"}, "latency_seconds_(sum|count)"),
      relabelRule(RelabelAction::kReplace, {"__name__"}, "http_requests_total", "__name__",
                  "app_requests_total"),
      relabelRule(RelabelAction::kLabelDrop, {}, "team"),
  };
  CollectorSettings settings;
  settings.scrapes = {c};
  auto collector = collectors::makeScrapeCollector(settings, HostPaths{});
  REQUIRE(collector);
  auto m = scrapeOnce(**collector);
  const std::string t = "|instance=local-" + std::to_string(target.port) + "|job=app";
  CHECK(m["up" + t + "|team=web"] == 1);
  CHECK(m.count("up|instance=127.0.0.2:1|job=app|team=db") == 0);  // dropped, not scraped
  CHECK(m["scrape_samples_scraped" + t + "|team=web"] == 6);
  CHECK(m["scrape_samples_post_metric_relabeling" + t + "|team=web"] == 4);
  CHECK(m["app_requests_total|code=200" + t] == 10);
  CHECK(m.count("http_requests_total|code=200" + t) == 0);
  CHECK(m["latency_seconds_bucket" + t + "|le=+Inf"] == 4);
  CHECK(m.count("latency_seconds_sum" + t) == 0);
}

TEST_CASE(
    "Scrape collector: a body laid out as the last one updates the values of the same batch "
    "shape",
    "[scrape][integration]") {
  std::mutex mu;
  std::string body;
  auto serve = [&](const std::string& text) {
    std::lock_guard lock(mu);
    body = text;
  };
  LoopbackServer server;
  server.http.Get("/metrics", [&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu);
    res.set_content(body, "text/plain");
  });
  server.start();
  const std::string address = server.address();
  ScrapeConfig c = job("app", "/metrics", address);
  c.metric_relabel_configs = {relabelRule(RelabelAction::kDrop, {"__name__"}, "dropped")};
  CollectorSettings settings;
  settings.scrapes = {c};
  auto collector = collectors::makeScrapeCollector(settings, HostPaths{});
  REQUIRE(collector);
  auto collect = [&](MetricBatch* spare) {
    MetricBatch batch;
    CollectContext ctx;
    ctx.deadline = std::chrono::steady_clock::now() + 1500ms;
    ctx.spare = spare;
    REQUIRE((*collector)->collect(ctx, batch).isOk());
    return batch;
  };
  const std::string t = "|instance=" + address + "|job=app|team=web";

  serve("# TYPE a counter\na{x=\"1\"} 1\ndropped 5\nb 2\na{x=\"2\"} 3\n");
  MetricBatch first = collect(nullptr);
  CHECK(first.layout() != 0);
  CHECK(flattenBatch(first)["a" + t + "|x=2"] == 3);
  const auto first_flat = flattenBatch(first);

  // New values only: the batch of before, handed back, gets them; nothing else changes.
  serve("# TYPE a counter\na{x=\"1\"} 10\ndropped 50\nb 20\na{x=\"2\"} 30 1700000000000\n");
  MetricBatch spare = first;
  MetricBatch second = collect(&spare);
  CHECK(spare.empty());  // taken
  CHECK(second.layout() == first.layout());
  auto m = flattenBatch(second);
  CHECK(m["a" + t + "|x=1"] == 10);
  CHECK(m["b" + t] == 20);
  CHECK(m["a" + t + "|x=2"] == 30);
  CHECK(m.count("dropped" + t) == 0);
  CHECK(m["scrape_samples_scraped" + t] == 4);
  CHECK(m["scrape_samples_post_metric_relabeling" + t] == 3);
  CHECK(m["scrape_series_added" + t] == 0);
  CHECK(m.size() == first_flat.size());
  // The same batch, built afresh when there is no spare.
  MetricBatch rebuilt = collect(nullptr);
  CHECK(rebuilt.layout() == first.layout());
  auto r = flattenBatch(rebuilt);
  r.erase("scrape_duration_seconds" + t);
  m.erase("scrape_duration_seconds" + t);
  CHECK(r == m);

  // A new series changes the shape; a spare of the old shape is not used.
  serve("# TYPE a counter\na{x=\"1\"} 11\ndropped 5\nb 21\na{x=\"2\"} 31\nc 4\n");
  MetricBatch old_shape = second;
  MetricBatch third = collect(&old_shape);
  CHECK_FALSE(old_shape.empty());
  CHECK(third.layout() != first.layout());
  m = flattenBatch(third);
  CHECK(m["c" + t] == 4);
  CHECK(m["a" + t + "|x=1"] == 11);
  CHECK(m["scrape_series_added" + t] == 1);

  // A malformed body fails the target, and the layout with it; the next good one is read.
  serve("# TYPE a counter\na{x=\"1\"} 11\ndropped 5\nb 21\na{x=\"2\"} 31\nc four\n");
  MetricBatch failed = collect(nullptr);
  CHECK(flattenBatch(failed)["up" + t] == 0);
  CHECK(flattenBatch(failed).count("c" + t) == 0);
  CHECK(failed.layout() != third.layout());
  serve("# TYPE a counter\na{x=\"1\"} 12\ndropped 5\nb 22\na{x=\"2\"} 32\nc 5\n");
  MetricBatch recovered = collect(&failed);
  CHECK(recovered.layout() != failed.layout());
  m = flattenBatch(recovered);
  CHECK(m["up" + t] == 1);
  CHECK(m["c" + t] == 5);
  CHECK(m["scrape_series_added" + t] == 0);

  // Changed metadata is read in full: the family's type follows it.
  serve("# TYPE a gauge\na{x=\"1\"} 12\ndropped 5\nb 22\na{x=\"2\"} 32\nc 5\n");
  MetricBatch retyped = collect(nullptr);
  bool gauge = false;
  for (const auto& f : retyped.families()) {
    gauge = gauge || (f.name == "a" && f.type == MetricType::kGauge);
  }
  CHECK(gauge);
  CHECK(retyped.layout() != recovered.layout());
}
