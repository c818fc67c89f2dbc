// PromQL engine benchmark against Prometheus 2.42 in one run:
//
//   build/bench/query_bench
//
// The shared workload's 20,000 series (bench/workload.h), here with 70 minutes of samples at
// 15 s ending a minute ago, are loaded into a real Prometheus (by remote write, into its head)
// and into vigil (a store checkpoint in its data directory);
// both are then asked, over their HTTP query APIs, 500 instant queries (the ten alert
// expressions with 50 thresholds each) and 50 range queries (the same expressions without
// thresholds, over the last hour at a 15 s step, as the issue asks). Reported: each server's
// CPU for the whole set (from /proc/PID/stat, after a warm-up pass), vigil's ratio, and how
// many answers differ from Prometheus's (series, timestamps, values to 1e-9 relative).
#include <httplib.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/workload.h"
#include "tests/support/process.h"
#include "vigil/exporters/remote_write.h"

using namespace vigil;
using namespace vigil::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// 70 minutes: the hour the range queries cover plus the 5-minute windows of its first step.
constexpr int kSamples = 70 * 4;
constexpr int64_t kRangeSeconds = 3600;

struct Query {
  std::string expr;
  bool range = false;
};

std::vector<Query> queries() {
  std::vector<Query> out;
  const auto templates = bench::alertTemplates();
  for (int i = 0; i < 50; ++i) {
    for (const auto& t : templates) {
      out.push_back({bench::withThreshold(t.expr, std::to_string(1 + i * 2)), false});
    }
  }
  for (int i = 0; i < 5; ++i) {
    for (const auto& t : templates) {
      const std::string e = t.expr.substr(
          0, t.expr.find(" >") == std::string::npos
                 ? (t.expr.find(" <") == std::string::npos ? t.expr.size() : t.expr.find(" <"))
                 : t.expr.find(" >"));
      out.push_back({e, true});
    }
  }
  return out;
}

// One query's answer: each series (its labels as JSON) with its points.
using Answer = std::map<std::string, std::vector<std::pair<double, double>>>;

Answer answerOf(const json& result) {
  Answer out;
  for (const auto& series : result) {
    auto& points = out[series["metric"].dump()];
    auto add = [&](const json& p) {
      points.emplace_back(p[0].get<double>(),
                          std::strtod(p[1].get<std::string>().c_str(), nullptr));
    };
    if (series.contains("values")) {
      for (const auto& p : series["values"]) {
        add(p);
      }
    } else {
      add(series["value"]);
    }
  }
  return out;
}

bool sameValue(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) {
    return std::isnan(a) && std::isnan(b);
  }
  // Sums may add in another order (Prometheus's series order is its map's), so the last bits
  // may differ.
  return a == b || std::fabs(a - b) <= 1e-9 * std::max(std::fabs(a), std::fabs(b));
}

// Empty when the answers agree, else what differs first.
std::string difference(const Answer& prom, const Answer& vig) {
  if (prom.size() != vig.size()) {
    return "series count " + std::to_string(prom.size()) + " vs " + std::to_string(vig.size());
  }
  for (const auto& [metric, points] : prom) {
    auto it = vig.find(metric);
    if (it == vig.end()) {
      return "series " + metric + " missing";
    }
    if (it->second.size() != points.size()) {
      return "series " + metric + ": " + std::to_string(points.size()) + " vs " +
             std::to_string(it->second.size()) + " points";
    }
    for (std::size_t i = 0; i < points.size(); ++i) {
      if (points[i].first != it->second[i].first ||
          !sameValue(points[i].second, it->second[i].second)) {
        return "series " + metric + " at " + std::to_string(points[i].first) + ": " +
               std::to_string(points[i].second) + " vs " + std::to_string(it->second[i].second);
      }
    }
  }
  return {};
}

struct Pass {
  double cpu_seconds = 0;
  double instant_cpu_seconds = 0;                   // of it, the instant queries (they come first)
  std::map<std::string, double> range_cpu_seconds;  // by expression (clock-tick resolution)
  double wall_seconds = 0;
  std::vector<Answer> answers;  // per query
};

Pass run(const char* name, pid_t pid, int port, const std::vector<Query>& qs, int64_t end_ms) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(120, 0);
  const std::string end = std::to_string(end_ms / 1000);
  const std::string start = std::to_string(end_ms / 1000 - kRangeSeconds);
  Pass p;
  const double cpu = processCpuSeconds(pid);
  const auto t0 = std::chrono::steady_clock::now();
  bool in_range_part = false;
  for (const auto& q : qs) {
    if (q.range && !in_range_part) {
      p.instant_cpu_seconds = processCpuSeconds(pid) - cpu;
      in_range_part = true;
    }
    httplib::Params params{{"query", q.expr}};
    std::string path;
    if (q.range) {
      params.emplace("start", start);
      params.emplace("end", end);
      params.emplace("step", "15");
      path = "/api/v1/query_range";
    } else {
      params.emplace("time", end);
      path = "/api/v1/query";
    }
    const double before = q.range ? processCpuSeconds(pid) : 0;
    auto res = client.Post(path, params);
    if (q.range) {
      p.range_cpu_seconds[q.expr] += processCpuSeconds(pid) - before;
    }
    if (!res || res->status != 200) {
      std::fprintf(stderr, "%s failed on %s: %s\n", name, q.expr.c_str(),
                   res ? res->body.c_str() : "no answer");
      std::exit(1);
    }
    p.answers.push_back(answerOf(json::parse(res->body)["data"]["result"]));
  }
  p.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  p.cpu_seconds = processCpuSeconds(pid) - cpu;
  return p;
}

// Loads the samples into Prometheus's head by remote write, as a Prometheus that is sent
// them would hold them. In time order, a few minutes at a time: the head refuses samples more
// than an hour older than the newest it has.
bool remoteWrite(int port, const std::vector<bench::SeriesSpec>& specs, int64_t start_ms) {
  httplib::Client client("127.0.0.1", port);
  client.set_write_timeout(60, 0);
  client.set_read_timeout(60, 0);
  constexpr int kSamplesPerRequest = 8;
  for (int from = 0; from < kSamples; from += kSamplesPerRequest) {
    exporters::WriteRequestContent content;
    for (const auto& spec : specs) {
      auto& series = content.series.emplace_back();
      series.labels = spec.labels;
      for (int i = from; i < std::min(kSamples, from + kSamplesPerRequest); ++i) {
        series.samples.push_back({start_ms + i * bench::kScrapeMs, spec.base + spec.slope * i});
      }
    }
    httplib::Headers headers{{"Content-Encoding", "snappy"},
                             {"X-Prometheus-Remote-Write-Version", "0.1.0"}};
    auto res = client.Post("/api/v1/write", headers, exporters::encodeWriteRequest(content),
                           "application/x-protobuf");
    if (!res || res->status / 100 != 2) {
      std::fprintf(stderr, "prometheus refused the remote write: %s\n",
                   res ? res->body.c_str() : "no answer");
      return false;
    }
  }
  return true;
}

bool ready(int port, const std::string& path) {
  return eventually(60s, [&] {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Get(path);
    return r && r->status == 200;
  });
}

}  // namespace

int main() {
  TempDir dir;
  const auto specs = bench::benchSeries();
  // The data ends a minute ago, on a 15 s boundary.
  const int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
  const int64_t end_ms = (now_ms / 15000 - 4) * 15000;
  const int64_t start_ms = end_ms - (kSamples - 1) * bench::kScrapeMs;

  dir.write("prometheus.yml", "global: {}\n");

  // vigil: the same samples as a store checkpoint in its data directory.
  std::filesystem::create_directories(dir.file("vigil-data"));
  {
    auto store = makeMemStore();
    bench::loadSeries(*store, specs, start_ms, kSamples);
    if (!store->saveCheckpoint(dir.file("vigil-data/store.checkpoint")).isOk()) {
      std::fprintf(stderr, "cannot write the vigil checkpoint\n");
      return 1;
    }
  }
  dir.write("vigil.yaml", bench::collectorsDisabledYaml() + bench::unlimitedLoopbackWebYaml());

  const auto qs = queries();
  Pass prom;
  Pass vig;
  {
    const int port = freeLoopbackPort();
    ChildProcess p({"prometheus", "--config.file=" + dir.file("prometheus.yml"),
                    "--storage.tsdb.path=" + dir.file("prom-data"),
                    "--storage.tsdb.retention.time=1d", "--web.enable-remote-write-receiver",
                    "--web.listen-address=127.0.0.1:" + std::to_string(port), "--log.level=warn"},
                   dir.file("prometheus.log"));
    if (!ready(port, "/-/ready")) {
      std::fprintf(stderr, "prometheus did not start\n");
      return 1;
    }
    if (!remoteWrite(port, specs, start_ms)) {
      return 1;
    }
    (void)run("prometheus", p.pid(), port, qs, end_ms);  // warm-up: blocks loaded, caches hot
    prom = run("prometheus", p.pid(), port, qs, end_ms);
  }
  {
    const int port = freeLoopbackPort();
    ChildProcess p({VIGIL_BINARY, "run", "--config", dir.file("vigil.yaml"), "--listen-address",
                    "127.0.0.1:" + std::to_string(port), "--data-dir", dir.file("vigil-data")},
                   dir.file("vigil.log"));
    if (!ready(port, "/-/healthy")) {
      std::fprintf(stderr, "vigil did not start\n");
      return 1;
    }
    (void)run("vigil", p.pid(), port, qs, end_ms);
    vig = run("vigil", p.pid(), port, qs, end_ms);
  }
  std::size_t differing = 0;
  for (std::size_t i = 0; i < qs.size(); ++i) {
    const std::string diff = difference(prom.answers[i], vig.answers[i]);
    if (!diff.empty()) {
      ++differing;
      std::fprintf(stderr, "answers differ (%s): %s%s\n", diff.c_str(), qs[i].expr.c_str(),
                   qs[i].range ? " (range)" : "");
    }
  }
  std::printf("queries      %zu (500 instant, 50 range over 1 h at 15 s) over %zu series\n",
              qs.size(), specs.size());
  std::printf("range CPU by expression (ms, all repetitions): prometheus, vigil, ratio\n");
  for (const auto& [expr, seconds] : prom.range_cpu_seconds) {
    const double v = vig.range_cpu_seconds[expr];
    std::printf("  %6.0f %6.0f %5.1fx  %s\n", seconds * 1000, v * 1000, v > 0 ? seconds / v : 0.0,
                expr.c_str());
  }
  for (const auto* pass : {&prom, &vig}) {
    std::printf("%-12s %.0f ms CPU (instant %.0f, range %.0f), %.0f ms wall\n",
                pass == &prom ? "prometheus" : "vigil", pass->cpu_seconds * 1000,
                pass->instant_cpu_seconds * 1000,
                (pass->cpu_seconds - pass->instant_cpu_seconds) * 1000, pass->wall_seconds * 1000);
  }
  std::printf(
      "ratio        vigil/prometheus CPU %.2f (%.1fx faster; target >= 5x); %zu answers "
      "differ (series, timestamps or values beyond 1e-9 relative)\n",
      vig.cpu_seconds / prom.cpu_seconds, prom.cpu_seconds / vig.cpu_seconds, differing);
  return differing == 0 ? 0 : 1;
}
