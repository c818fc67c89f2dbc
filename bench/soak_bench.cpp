// The soak test: vigil under a production-sized load for a long time, to see what only time
// shows (memory that creeps, latency that drifts, notifications that go missing).
//
// Load: every node collector on this machine; 50 loopback scrape targets of 400 series each
// (20,000 series), every 5 s; 500 rules in 10 groups every 5 s (250 recording rules, 200
// alerts that never fire and 50 that make an alert storm: 200 alerts firing and resolving
// every minute); anomaly detection on (its defaults); StatsD at 50,000 datagrams/s; a webhook
// receiving every notification; the store keeps a third of the run (1 to 10 minutes).
// Measured: RSS every 5 s and its slope over the second half (MiB per hour), /metrics latency
// p50/p99 (one scrape a second), errors in vigil's log, and notifications: every alert vigil listed
// as firing must reach the webhook as firing.
//
// Usage: soak_bench [--minutes M] [--check]   (default 30 minutes; --check exits 1 on a lost
// notification, an error logged, a target down or vigil gone: the short CI run uses it)
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bench/sample_stats.h"
#include "bench/scrape_target.h"
#include "bench/workload.h"
#include "tests/support/process.h"

using namespace std::chrono_literals;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kTargets = 50;
constexpr int kPaths = 100;   // x 2 codes = 200 counters per target
constexpr int kShards = 200;  // gauges per target; the first kStormShards storm
constexpr int kStormShards = 4;
constexpr int kStatsdPerSecond = 50000;

int64_t unixSeconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The k-th scrape of target t: counters that grow, gauges of which a few cross 0.5 every
// other minute.
std::string targetBody(int t, uint64_t k) {
  std::string out;
  out.reserve(32 * 1024);
  out += "# HELP soak_requests_total Requests.\n# TYPE soak_requests_total counter\n";
  for (int p = 0; p < kPaths; ++p) {
    for (const char* code : {"200", "500"}) {
      out += "soak_requests_total{path=\"/p" + std::to_string(p) + "\",code=\"" + code + "\"} " +
             std::to_string(k * (code[0] == '2' ? 10 + p : 1) + t) + "\n";
    }
  }
  const bool storm = (unixSeconds() / 60) % 2 == 1;
  out += "# HELP soak_gauge A level.\n# TYPE soak_gauge gauge\n";
  for (int s = 0; s < kShards; ++s) {
    const double v = s < kStormShards ? (storm ? 0.9 : 0.1) : 0.01 * (s % 40);
    out += "soak_gauge{shard=\"s" + std::to_string(s) + "\"} " + std::to_string(v) + "\n";
  }
  return out;
}

std::string rulesYaml() {
  std::string out = "groups:\n";
  int rule = 0;
  for (int g = 0; g < 10; ++g) {
    out += "  - name: soak-" + std::to_string(g) + "\n    interval: 5s\n    rules:\n";
    for (int i = 0; i < 50; ++i, ++rule) {
      const std::string job = "t" + std::to_string(rule % kTargets);
      if (rule < 250) {
        out += "      - record: soak:requests:rate1m_" + std::to_string(rule) +
               "\n        expr: sum by (code) (rate(soak_requests_total{job=\"" + job +
               "\",path=~\"/p" + std::to_string(rule % 10) + ".*\"}[1m]))\n";
      } else if (rule < 450) {
        out += "      - alert: SoakNeverFires" + std::to_string(rule) +
               "\n        expr: sum(rate(soak_requests_total{job=\"" + job +
               "\",code=\"500\"}[1m])) > 1e12\n";
      } else {
        out += "      - alert: SoakStorm\n        expr: soak_gauge{job=\"" + job +
               "\"} > 0.5\n        labels: {severity: warning}\n";
      }
    }
  }
  return out;
}

struct Webhook {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  std::mutex mu;
  std::set<std::string> firing;  // alertname|job|shard|startsAt received as firing
  std::atomic<uint64_t> posts{0};

  Webhook() {
    server.Post("/hook", [this](const httplib::Request& req, httplib::Response&) {
      ++posts;
      auto body = json::parse(req.body, nullptr, false);
      if (body.is_discarded()) {
        return;
      }
      std::lock_guard lock(mu);
      for (const auto& a : body["alerts"]) {
        if (a.value("status", "") == "firing") {
          firing.insert(key(a["labels"], a.value("startsAt", "")));
        }
      }
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~Webhook() {
    server.stop();
    thread.join();
  }
  static std::string key(const json& labels, const std::string& starts_at) {
    return labels.value("alertname", "") + "|" + labels.value("job", "") + "|" +
           labels.value("shard", "") + "|" + starts_at.substr(0, 19);
  }
};

// StatsD datagrams at `per_second`, paced in 10 ms slices.
void sendStatsd(int port, int per_second, const std::atomic<bool>& stop,
                std::atomic<uint64_t>& sent) {
  const int fd = vigil::test::connectedLoopbackUdpSocket(port);
  std::vector<std::string> lines;
  for (int r = 0; r < 100; ++r) {
    lines.push_back("soak.requests:1|c|#route:r" + std::to_string(r));
  }
  const int per_slice = per_second / 100;
  auto next = Clock::now();
  uint64_t n = 0;
  while (!stop.load()) {
    for (int i = 0; i < per_slice; ++i, ++n) {
      const std::string& l = lines[n % lines.size()];
      if (::send(fd, l.data(), l.size(), 0) > 0) {
        ++sent;
      }
    }
    next += 10ms;
    std::this_thread::sleep_until(next);
  }
  ::close(fd);
}

// Least-squares slope of (t, y), in y per unit of t.
double slope(const std::vector<std::pair<double, double>>& points) {
  const double n = static_cast<double>(points.size());
  if (n < 2) {
    return NAN;
  }
  double st = 0, sy = 0, stt = 0, sty = 0;
  for (const auto& [t, y] : points) {
    st += t;
    sy += y;
    stt += t * t;
    sty += t * y;
  }
  return (n * sty - st * sy) / (n * stt - st * st);
}

}  // namespace

int main(int argc, char** argv) {
  double minutes = 30;
  bool check = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--minutes") == 0 && i + 1 < argc) {
      minutes = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--check") == 0) {
      check = true;
    }
  }

  std::vector<std::unique_ptr<vigil::bench::ScrapeTarget>> targets;
  for (int t = 0; t < kTargets; ++t) {
    targets.push_back(
        std::make_unique<vigil::bench::ScrapeTarget>([t](uint64_t k) { return targetBody(t, k); }));
  }
  Webhook hook;
  vigil::test::TempDir dir;
  const int statsd_port = vigil::test::freeLoopbackUdpPort();
  // A retention that lets the store reach its steady size by half-time, so that a growing RSS
  // in the second half means a leak, not history: a series holds what the retention keeps plus
  // its head chunk (up to 120 samples, 10 minutes at this interval), so half the run less 10
  // minutes (1 to 10 minutes; the 30-minute run keeps 5).
  const int retention_s = static_cast<int>(std::clamp(minutes * 30 - 600, 60.0, 600.0));
  std::string config =
      "global:\n  collection_interval: 5s\n  evaluation_interval: 5s\nstorage:\n  retention: " +
      std::to_string(retention_s) + "s\n" + vigil::bench::unlimitedLoopbackWebYaml() +
      "collectors:\n  statsd:\n    listen_address: 127.0.0.1:" + std::to_string(statsd_port) +
      "\n  scrape:\n    scrape_configs:\n";
  for (int t = 0; t < kTargets; ++t) {
    config += "      - job_name: t" + std::to_string(t) +
              "\n        static_configs: [{targets: ['" +
              targets[static_cast<std::size_t>(t)]->address() + "']}]\n";
  }
  config +=
      "rule_files: [rules.yml]\nalerting:\n  route:\n    receiver: hook\n"
      "    group_by: [alertname, job, shard]\n    group_wait: 1s\n    group_interval: 2s\n"
      "    repeat_interval: 1h\n  receivers:\n    - name: hook\n"
      "      webhook_configs: [{url: 'http://127.0.0.1:" +
      std::to_string(hook.port) + "/hook'}]\n";
  dir.write("vigil.yaml", config);
  dir.write("rules.yml", rulesYaml());
  const int port = vigil::test::freeLoopbackPort();
  vigil::test::ChildProcess vigil(
      vigil::test::vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), port, dir.file("data")),
      dir.file("vigil.log"));
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(10, 0);
  if (!vigil::test::eventually(15s, [&] {
        auto r = client.Get("/-/ready");
        return r && r->status == 200;
      })) {
    std::fprintf(stderr, "vigil did not start:\n%s\n",
                 vigil::test::readFile(dir.file("vigil.log")).c_str());
    return 1;
  }

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> statsd_sent{0};
  std::thread statsd([&] { sendStatsd(statsd_port, kStatsdPerSecond, stop, statsd_sent); });

  std::vector<double> metrics_ms;
  std::vector<std::pair<double, double>> rss;  // (hours since start, MiB)
  std::set<std::string> seen_firing;           // alerts vigil listed as firing
  const auto start = Clock::now();
  const auto end = start + std::chrono::duration<double>(minutes * 60);
  auto next_rss = start;
  auto next_alerts = start;
  while (Clock::now() < end && vigil.running()) {
    const auto t0 = Clock::now();
    auto m = client.Get("/metrics");
    if (m && m->status == 200) {
      metrics_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    if (Clock::now() >= next_rss) {
      rss.emplace_back(std::chrono::duration<double>(Clock::now() - start).count() / 3600,
                       vigil::test::processRssBytes(vigil.pid()) / (1024.0 * 1024.0));
      next_rss += 5s;
    }
    if (Clock::now() >= next_alerts) {
      auto a = client.Get("/api/v2/alerts?active=true&silenced=false&inhibited=false");
      if (a && a->status == 200) {
        for (const auto& alert : json::parse(a->body, nullptr, false)) {
          if (alert.is_object() && alert["status"].value("state", "") == "active") {
            seen_firing.insert(Webhook::key(alert["labels"], alert.value("startsAt", "")));
          }
        }
      }
      next_alerts += 5s;
    }
    std::this_thread::sleep_until(t0 + 1s);
  }
  stop = true;
  statsd.join();
  const bool alive = vigil.running();
  // Notifications of the last alerts seen: group_wait and a retry or two.
  std::this_thread::sleep_for(8s);

  std::size_t lost = 0;
  std::string lost_example;
  {
    std::lock_guard lock(hook.mu);
    for (const auto& k : seen_firing) {
      if (hook.firing.count(k) == 0) {
        ++lost;
        lost_example = k;
      }
    }
  }
  double targets_up = -1;
  if (auto q = client.Get("/api/v1/query?query=sum(up%7Bjob%3D~%22t.*%22%7D)");
      q && q->status == 200) {
    auto r = json::parse(q->body, nullptr, false);
    if (!r.is_discarded() && !r["data"]["result"].empty()) {
      targets_up = std::stod(r["data"]["result"][0]["value"][1].get<std::string>());
    }
  }
  double statsd_received = -1;
  if (auto q = client.Get("/api/v1/query?query=vigil_statsd_packets_total");
      q && q->status == 200) {
    auto r = json::parse(q->body, nullptr, false);
    if (!r.is_discarded() && !r["data"]["result"].empty()) {
      statsd_received = std::stod(r["data"]["result"][0]["value"][1].get<std::string>());
    }
  }
  const std::string log = vigil::test::readFile(dir.file("vigil.log"));
  std::size_t errors = 0;
  for (std::size_t at = log.find("level=error"); at != std::string::npos;
       at = log.find("level=error", at + 1)) {
    ++errors;
  }
  std::vector<std::pair<double, double>> second_half;
  for (const auto& p : rss) {
    if (p.first >= rss.back().first / 2) {
      second_half.push_back(p);
    }
  }
  std::printf(
      "soak: %.1f min, vigil %s\n"
      "  RSS: start %.1f MiB, end %.1f MiB, max %.1f MiB, slope over the second half %.2f MiB/h\n"
      "  /metrics: %zu scrapes, p50 %.1f ms, p99 %.1f ms\n"
      "  scrape targets up: %.0f of %d; StatsD: %llu sent, %.0f received (%.2f %%)\n"
      "  alerts seen firing: %zu, notified firing: %zu, lost: %zu%s%s; webhook posts: %llu\n"
      "  errors logged: %zu\n",
      minutes, alive ? "alive" : "GONE", rss.empty() ? NAN : rss.front().second,
      rss.empty() ? NAN : rss.back().second,
      rss.empty() ? NAN
                  : std::max_element(rss.begin(), rss.end(),
                                     [](auto& a, auto& b) { return a.second < b.second; })
                        ->second,
      slope(second_half), metrics_ms.size(), vigil::bench::percentile(metrics_ms, 0.5),
      vigil::bench::percentile(metrics_ms, 0.99), targets_up, kTargets,
      static_cast<unsigned long long>(statsd_sent.load()), statsd_received,
      statsd_sent.load() ? 100.0 * statsd_received / static_cast<double>(statsd_sent.load()) : 0.0,
      seen_firing.size(), hook.firing.size(), lost, lost ? " e.g. " : "", lost_example.c_str(),
      static_cast<unsigned long long>(hook.posts.load()), errors);
  if (errors > 0) {
    std::size_t at = log.find("level=error");
    std::printf("  first error: %s\n", log.substr(at, log.find('\n', at) - at).c_str());
  }
  if (check &&
      (!alive || lost > 0 || errors > 0 || targets_up != kTargets || seen_firing.empty())) {
    std::printf("soak: FAILED\n");
    return 1;
  }
  return 0;
}
