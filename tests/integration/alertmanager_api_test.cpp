// vigil as an Alertmanager: alerts posted over API v2 and from its own rules, grouped and
// notified, queried and silenced with the real amtool 0.25, and surviving kill -9.
#include <httplib.h>
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/support/alerting_vigil.h"

using namespace vigil::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

const char* kConfig = R"(global:
  log_level: info
  external_labels:
    node: n1
rule_files: [rules.yml]
alerting:
  route:
    receiver: team
    group_by: [alertname]
    group_wait: 1s
    group_interval: 2s
    repeat_interval: 1h
    routes:
      - matchers: ['severity="page"']
        receiver: oncall
  receivers:
    - name: team
    - name: oncall
)";

const char* kRules = R"(groups:
  - name: always
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
        labels:
          severity: info
        annotations:
          summary: it fires
)";

}  // namespace

TEST_CASE("Alertmanager API: alerts in, notifications out, amtool queries and silences",
          "[integration][alerting]") {
  AlertingVigil vigil(kConfig);
  auto post = [&](const std::string& body) {
    return vigil.client().Post("/api/v2/alerts", body, "application/json");
  };
  // One bad alert among good ones: 400 naming it, the good one kept.
  auto res = post(R"([{"labels":{"alertname":"DiskFull","instance":"n1","severity":"page"},
                       "annotations":{"summary":"Disk almost full"}},
                      {"labels":{}},
                      {"labels":{"alertname":"X"},"startsAt":"2026-01-01T00:00:00Z",
                       "endsAt":"2025-01-01T00:00:00Z"}])");
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK(
      res->body ==
      R"("alerts[1]: at least one label pair required; alerts[2]: start time must be before end time")");
  res = post("not json");
  REQUIRE(res);
  CHECK(res->status == 400);
  res = post(R"({"labels":{"a":"b"}})");
  REQUIRE(res);
  CHECK(res->body == R"("expected a JSON array of alerts")");
  // Every kind of bad alert names its index and what is wrong; unknown fields are ignored.
  res = post(R"([{"labels":"x"}, {"labels":{"a":1}}, {"labels":{"a":"b"},"startsAt":5},
                 {"labels":{"a":"b"},"endsAt":"yesterday"}, 7,
                 {"labels":{"alertname":"Extra"},"extra":{"deep":[1,{"x":2}]},"status":{}}])");
  REQUIRE(res);
  CHECK(res->status == 400);
  CHECK(res->body ==
        R"("alerts[0]: labels must be an object of strings; alerts[1]: labels.a must be a string; )"
        R"(alerts[2]: startsAt must be a date-time string; alerts[3]: endsAt: cannot parse )"
        R"(\"yesterday\" to a valid timestamp; alerts[4]: expected an object")");

  // Routed by severity to oncall, grouped by alertname, notified after group_wait.
  REQUIRE(eventually(10s, [&] { return vigil.notifications("receiver=oncall") == 1; }));
  CHECK(vigil.notifications(R"(group={}/{severity=\"page\"}:{alertname=\"DiskFull\"})") == 1);
  CHECK(vigil.notifications(R"(reason=\"first notification\")") >= 1);

  auto query = vigil.amtool({"alert", "query", "alertname=DiskFull"});
  INFO(query.output);
  CHECK(query.exit_code == 0);
  CHECK(query.output.find("Disk almost full") != std::string::npos);
  CHECK(query.output.find("active") != std::string::npos);

  auto api = vigil.client().Get("/api/v2/alerts?filter=alertname%3D%22DiskFull%22");
  REQUIRE(api);
  auto alerts = json::parse(api->body);
  REQUIRE(alerts.size() == 1);
  CHECK(std::regex_match(alerts[0]["fingerprint"].get<std::string>(), std::regex("[0-9a-f]{16}")));
  CHECK(alerts[0]["receivers"][0]["name"] == "oncall");
  CHECK(alerts[0]["status"]["state"] == "active");

  auto added =
      vigil.amtool({"silence", "add", "alertname=DiskFull", "-c", "maintenance", "-d", "1h"});
  INFO(added.output);
  REQUIRE(added.exit_code == 0);
  CHECK(std::regex_search(added.output, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-")));
  auto silenced = vigil.amtool({"alert", "query", "--silenced", "alertname=DiskFull"});
  CHECK(silenced.output.find("suppressed") != std::string::npos);
  auto silences = vigil.amtool({"silence", "query", "-o", "json"});
  REQUIRE(silences.exit_code == 0);
  const auto silence_list = json::parse(silences.output.substr(silences.output.find('[')));
  REQUIRE(silence_list.size() == 1);
  CHECK(silence_list[0]["comment"] == "maintenance");
  CHECK(silence_list[0]["status"]["state"] == "active");

  // kill -9 and restart: the alert, the silence and the notification log come back, and
  // nothing is notified a second time.
  vigil.kill9();
  vigil.start();
  std::this_thread::sleep_for(3s);
  CHECK(vigil.notifications("alertname=\\\"DiskFull\\\"") == 1);
  auto after = vigil.amtool({"silence", "query", "-o", "json"});
  CHECK(after.output.find("maintenance") != std::string::npos);
  auto expired = vigil.amtool({"silence", "expire", silence_list[0]["id"].get<std::string>()});
  CHECK(expired.exit_code == 0);
  auto gone = vigil.client().Delete("/api/v2/silence/no-such-id");
  REQUIRE(gone);
  CHECK(gone->status == 404);

  auto status = vigil.client().Get("/api/v2/status");
  REQUIRE(status);
  CHECK(json::parse(status->body)["config"]["original"].get<std::string>().find("oncall") !=
        std::string::npos);
}

TEST_CASE("Alertmanager API: the rule engine's alerts are grouped and notified",
          "[integration][alerting]") {
  AlertingVigil vigil(kConfig, kRules);
  // Firing from the first evaluation (no `for`), sent with the external labels, notified once.
  REQUIRE(eventually(15s, [&] { return vigil.notifications("AlwaysFiring") == 1; }));
  CHECK(vigil.notifications("receiver=team") == 1);
  CHECK(vigil.notifications(R"(node=\"n1\")") == 1);
  auto query = vigil.amtool({"alert", "query", "-o", "json", "alertname=AlwaysFiring"});
  REQUIRE(query.exit_code == 0);
  const auto alerts = json::parse(query.output.substr(query.output.find('[')));
  REQUIRE(alerts.size() == 1);
  CHECK(alerts[0]["labels"]["node"] == "n1");
  CHECK(alerts[0]["annotations"]["summary"] == "it fires");
  // Still one notification after several evaluations and group_interval ticks.
  std::this_thread::sleep_for(4s);
  CHECK(vigil.notifications("AlwaysFiring") == 1);
  const std::string metrics = vigil.client().Get("/metrics")->body;
  CHECK(metrics.find("vigil_alerting_notifications_total 1") != std::string::npos);
}

TEST_CASE("Alertmanager API: a slow webhook does not hold up alert ingestion",
          "[integration][alerting]") {
  std::atomic<int> requests{0};
  httplib::Server hook;
  hook.Post("/slow", [&](const httplib::Request&, httplib::Response& res) {
    ++requests;
    std::this_thread::sleep_for(3s);
    res.status = 200;
  });
  const int hook_port = hook.bind_to_any_port("127.0.0.1");
  std::thread hook_thread([&] { hook.listen_after_bind(); });
  AlertingVigil vigil(std::string(R"(alerting:
  route:
    receiver: slow
    group_by: [alertname]
    group_wait: 0s
  receivers:
    - name: slow
      webhook_configs: [{url: 'http://127.0.0.1:)") +
                      std::to_string(hook_port) + R"(/slow'}]
)");
  auto post = [&](const std::string& name) {
    return vigil.client().Post("/api/v2/alerts", R"([{"labels":{"alertname":")" + name + R"("}}])",
                               "application/json");
  };
  REQUIRE(post("First"));
  REQUIRE(eventually(10s, [&] { return requests.load() >= 1; }));
  // The webhook is busy for 3 s; new alerts are still taken at once.
  const auto started = std::chrono::steady_clock::now();
  auto res = post("Second");
  const auto took = std::chrono::steady_clock::now() - started;
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(took < 1s);
  hook.stop();
  hook_thread.join();
}
