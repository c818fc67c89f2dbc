// Notifications that are never lost: vigil's outbox against a real receiver on loopback that
// is down for a while, and vigil killed with SIGKILL in the middle of delivery and restarted.
#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/alerting_vigil.h"

using namespace vigil::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// Counts the notifications per alert name; answers with `status` after `delay`.
struct CountingReceiver {
  httplib::Server server;
  std::atomic<int> status{200};
  std::atomic<int> delay_ms{0};
  std::mutex mu;
  std::map<std::string, int> received;  // alertname -> notifications that named it firing
  int port = 0;
  std::thread thread;

  CountingReceiver() {
    server.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
      res.status = status.load();
      if (res.status == 200) {
        const auto body = json::parse(req.body);
        std::lock_guard lock(mu);
        for (const auto& a : body["alerts"]) {
          ++received[a["labels"]["alertname"].get<std::string>()];
        }
      }
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~CountingReceiver() {
    server.stop();
    thread.join();
  }
  std::size_t distinct() {
    std::lock_guard lock(mu);
    return received.size();
  }
  int duplicates() {
    std::lock_guard lock(mu);
    int d = 0;
    for (const auto& [name, n] : received) {
      d += n - 1;
    }
    return d;
  }
};

std::string config(int hook_port) {
  return R"(global:
  log_level: info
alerting:
  route:
    receiver: hook
    group_by: [alertname]
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 24h
  receivers:
    - name: hook
      webhook_configs: [{url: 'http://127.0.0.1:)" +
         std::to_string(hook_port) + R"(/hook'}]
)";
}

double metricValue(AlertingVigil& vigil, const std::string& series) {
  auto res = vigil.client().Get("/metrics");
  if (!res) {
    return -1;
  }
  const auto pos = res->body.find("\n" + series + " ");
  return pos == std::string::npos ? -1 : std::stod(res->body.substr(pos + series.size() + 2));
}

void postAlerts(AlertingVigil& vigil, const std::string& prefix, int count) {
  json alerts = json::array();
  for (int i = 0; i < count; ++i) {
    alerts.push_back({{"labels", {{"alertname", prefix + std::to_string(i)}}}});
  }
  auto res = vigil.client().Post("/api/v2/alerts", alerts.dump(), "application/json");
  REQUIRE(res);
  REQUIRE(res->status == 200);
}

}  // namespace

TEST_CASE("Notifications: a receiver down for a while, and vigil killed while they wait",
          "[integration][notify]") {
  CountingReceiver hook;
  hook.status = 503;
  AlertingVigil vigil(config(hook.port));
  // The configured webhook's health series exist from the start, at 0 (so that rate() sees
  // the first failure); no receiver uses Slack, so it has none.
  CHECK(metricValue(vigil, R"(vigil_notifications_total{notifier="webhook",result="retry"})") == 0);
  CHECK(metricValue(vigil, R"(vigil_notifications_total{notifier="slack",result="retry"})") == -1);
  constexpr int kAlerts = 30;
  postAlerts(vigil, "Down", kAlerts);
  // Every group notified into the outbox; the receiver refuses them all.
  REQUIRE(eventually(15s, [&] { return metricValue(vigil, "vigil_outbox_pending") == kAlerts; }));
  vigil.kill9();
  vigil.start();
  std::this_thread::sleep_for(1s);
  CHECK(hook.distinct() == 0);
  hook.status = 200;  // the receiver recovers
  const bool all = eventually(60s, [&] { return hook.distinct() == kAlerts; });
  INFO(vigil.log());
  CHECK(all);
  std::this_thread::sleep_for(1s);
  CHECK(hook.duplicates() == 0);  // nothing was sent twice: nothing was ever taken
  CHECK(metricValue(vigil, "vigil_outbox_pending") == 0);
  std::printf(
      "outage: %zu of %d notifications delivered after the receiver came back, "
      "%d duplicates\n",
      hook.distinct(), kAlerts, hook.duplicates());
}

TEST_CASE("Notifications: vigil killed in the middle of delivery loses none",
          "[integration][notify]") {
  CountingReceiver hook;
  hook.delay_ms = 100;  // slow enough to kill vigil halfway
  AlertingVigil vigil(config(hook.port));
  constexpr int kAlerts = 40;
  postAlerts(vigil, "Busy", kAlerts);
  REQUIRE(eventually(20s, [&] { return hook.distinct() >= 5; }));
  vigil.kill9();
  const std::size_t before = hook.distinct();
  CHECK(before < kAlerts);  // killed in the middle
  vigil.start();
  const bool all = eventually(60s, [&] { return hook.distinct() == kAlerts; });
  INFO(vigil.log());
  CHECK(all);
  std::this_thread::sleep_for(1s);
  // At-least-once: the one request in flight at the kill may come again, no more.
  CHECK(hook.duplicates() <= 2);
  std::printf(
      "kill -9 during delivery: %zu delivered before the kill, %zu of %d after the "
      "restart, %d duplicates\n",
      before, hook.distinct(), kAlerts, hook.duplicates());
}

TEST_CASE("Notifications: from a rule firing to the webhook", "[integration][notify]") {
  CountingReceiver hook;
  std::atomic<int64_t> received_at_ms{0};
  std::atomic<int64_t> starts_at_ms{0};
  httplib::Server timed;
  timed.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    const auto body = json::parse(req.body);
    std::tm tm{};
    const std::string starts = body["alerts"][0]["startsAt"];
    strptime(starts.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
    if (auto dot = starts.find('.'); dot != std::string::npos) {
      // Go drops trailing zeros: ".5Z" is 500 ms.
      std::string frac = starts.substr(dot + 1, starts.find('Z') - dot - 1);
      frac = (frac + "000").substr(0, 3);
      ms += std::stoi(frac);
    }
    if (received_at_ms == 0) {
      starts_at_ms = ms;
      received_at_ms = now;
    }
    res.status = 200;
  });
  const int port = timed.bind_to_any_port("127.0.0.1");
  std::thread t([&] { timed.listen_after_bind(); });
  AlertingVigil vigil(config(port) + "rule_files: [rules.yml]\n", R"(groups:
  - name: fast
    interval: 1s
    rules:
      - alert: Fires
        expr: vector(1)
)");
  const bool got = eventually(20s, [&] { return received_at_ms.load() != 0; });
  timed.stop();
  t.join();
  REQUIRE(got);
  const double latency = static_cast<double>(received_at_ms - starts_at_ms) / 1000.0;
  std::printf("rule firing to webhook receipt: %.3f s (group_wait 0s)\n", latency);
  CHECK(latency >= 0);
  CHECK(latency < 10);  // one evaluation, one flush, one POST; seconds, not minutes
}

TEST_CASE("Notifications: rule alerts forwarded to a real Alertmanager 0.25",
          "[integration][notify]") {
  TempDir dir;
  RealAlertmanager am(dir, "route:\n  receiver: 'null'\nreceivers:\n  - name: 'null'\n");
  const std::string am_url = am.url();
  REQUIRE(am.waitReady());
  AlertingVigil vigil(R"(global:
  external_labels: {node: n1}
rule_files: [rules.yml]
alertmanagers:
  - url: ')" + am_url + R"('
)",
                      R"(groups:
  - name: fast
    interval: 1s
    rules:
      - alert: DiskFilling
        expr: vector(1)
        labels: {severity: warning}
        annotations: {summary: disk fills up}
)");
  // amtool, pointed at the real Alertmanager, shows the alert with vigil's external labels.
  CommandResult query;
  const bool shown = eventually(20s, [&] {
    query = runCommand({"amtool", "--alertmanager.url=" + am_url, "alert", "query", "-o", "json",
                        "alertname=DiskFilling"});
    return query.exit_code == 0 && query.output.find("DiskFilling") != std::string::npos;
  });
  INFO(query.output);
  INFO(vigil.log());
  REQUIRE(shown);
  const auto alerts = json::parse(query.output);
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0]["labels"]["node"] == "n1");
  CHECK(alerts[0]["labels"]["severity"] == "warning");
  CHECK(alerts[0]["annotations"]["summary"] == "disk fills up");
  CHECK(alerts[0]["status"]["state"] == "active");
  // The end is a lease four minutes ahead (Prometheus: 4 × max(interval, resend delay)), so
  // the Alertmanager resolves it by itself if this node disappears.
  std::tm tm{};
  const std::string ends = alerts[0]["endsAt"];
  strptime(ends.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  const auto lease = timegm(&tm) - std::time(nullptr);
  CHECK(lease > 200);
  CHECK(lease <= 241);
  CHECK(metricValue(vigil, "vigil_alertmanager_notifications_sent_total{alertmanager=\"" + am_url +
                               "\"}") >= 1);
}
