// vigil against a real Alertmanager 0.25: the same route configuration and the same alert
// stream go to both; the notifications (receiver, group key, and the alerts with their status)
// must be the same. Both notify webhooks on loopback, whose payloads are compared field by field
// (all but the start times and externalURL, which differ by nature).
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "tests/support/alerting_vigil.h"

using namespace vigil::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// A webhook payload without what legitimately differs between the two senders: alerts' start
// times (each stamps the time it received the alert) and externalURL. The alerts stay in the
// order they came in: Alertmanager's (by job, instance, then labels), which templates see too.
std::string comparable(const json& payload) {
  json out = payload;
  out.erase("externalURL");
  std::vector<json> alerts;
  for (auto a : payload["alerts"]) {
    a.erase("startsAt");
    a.erase("generatorURL");
    alerts.push_back(a);
  }
  out["alerts"] = alerts;
  return out.dump();
}

std::string alertJson(const std::string& labels, bool resolved) {
  std::string out = "{\"labels\":" + labels;
  if (resolved) {
    out += ",\"endsAt\":\"2020-01-01T00:00:00Z\",\"startsAt\":\"2019-12-31T00:00:00Z\"";
  }
  return out + "}";
}

}  // namespace

TEST_CASE("Alertmanager 0.25 and vigil send the same notifications for the same stream",
          "[integration][alerting]") {
  TempDir dir;
  // The webhooks: /am for Alertmanager, /vigil for vigil.
  std::mutex mu;
  std::map<std::string, std::multiset<std::string>> received;
  httplib::Server hook;
  hook.Post(R"(/(am|vigil))", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    received[req.matches[1]].insert(comparable(json::parse(req.body)));
    res.status = 200;
  });
  const int hook_port = hook.bind_to_any_port("127.0.0.1");
  std::thread hook_thread([&] { hook.listen_after_bind(); });

  const std::string hook_url = "http://127.0.0.1:" + std::to_string(hook_port) + "/SENDER";
  std::string routing = R"(route:
  receiver: team
  group_by: [alertname, cluster]
  group_wait: 1s
  group_interval: 3s
  repeat_interval: 1h
  routes:
    - matchers: ['severity="page"']
      receiver: oncall
      continue: true
    - matchers: ['service=~"db|cache"']
      receiver: db
      group_by: ['...']
receivers:
  - name: team
    webhook_configs: [{url: ')" +
                        hook_url + R"('}]
  - name: oncall
    webhook_configs: [{url: ')" +
                        hook_url + R"('}]
  - name: db
    webhook_configs: [{url: ')" +
                        hook_url + R"('}]
)";
  auto forSender = [&](const std::string& sender) {
    return std::regex_replace(routing, std::regex("SENDER"), sender);
  };
  std::string indented;
  std::istringstream lines(forSender("vigil"));
  for (std::string line; std::getline(lines, line);) {
    indented += "  " + line + "\n";
  }
  dir.write("vigil.yaml", openOnLoopback("alerting:\n" + indented));

  RealAlertmanager am(dir, forSender("am"));
  const int am_port = am.port;
  const int vigil_port = freeLoopbackPort();
  ChildProcess vigil(
      vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), vigil_port, dir.file("vigil-data")),
      dir.file("vigil.log"));
  httplib::Client am_client("127.0.0.1", am_port);
  httplib::Client vigil_client("127.0.0.1", vigil_port);
  REQUIRE(eventually(15s, [&] {
    auto a = am_client.Get("/-/ready");
    auto v = vigil_client.Get("/-/healthy");
    return a && a->status == 200 && v && v->status == 200;
  }));

  auto send = [&](const std::vector<std::string>& alerts) {
    std::string body = "[";
    for (std::size_t i = 0; i < alerts.size(); ++i) {
      body += (i ? "," : "") + alerts[i];
    }
    body += "]";
    auto a = am_client.Post("/api/v2/alerts", body, "application/json");
    auto v = vigil_client.Post("/api/v2/alerts", body, "application/json");
    REQUIRE(a);
    REQUIRE(v);
    CHECK(a->status == 200);
    CHECK(v->status == 200);
  };
  const std::string a1 = R"({"alertname":"HighLatency","cluster":"eu","severity":"page","i":"1"})";
  const std::string a2 = R"({"alertname":"HighLatency","cluster":"eu","severity":"page","i":"2"})";
  const std::string b1 = R"({"alertname":"DiskFull","cluster":"us","service":"db"})";
  const std::string c1 = R"({"alertname":"CacheMiss","cluster":"us","service":"cache","i":"1"})";
  const std::string d1 = R"({"alertname":"Other","cluster":"eu"})";
  // Each phase is given time for group_wait or a group_interval tick on both sides.
  send({alertJson(a1, false), alertJson(b1, false), alertJson(d1, false)});
  std::this_thread::sleep_for(5s);
  send({alertJson(a1, false), alertJson(a2, false), alertJson(b1, false), alertJson(c1, false),
        alertJson(d1, false)});
  std::this_thread::sleep_for(5s);
  send({alertJson(a1, true), alertJson(a2, false), alertJson(b1, false), alertJson(c1, false),
        alertJson(d1, true)});
  std::this_thread::sleep_for(5s);
  send({alertJson(a2, true), alertJson(b1, true), alertJson(c1, true)});
  std::this_thread::sleep_for(5s);

  std::multiset<std::string> am_seen;
  std::multiset<std::string> vigil_seen;
  {
    std::lock_guard lock(mu);
    am_seen = received["am"];
    vigil_seen = received["vigil"];
  }
  std::string am_text;
  for (const auto& n : am_seen) {
    am_text += n + "\n";
  }
  std::string vigil_text;
  for (const auto& n : vigil_seen) {
    vigil_text += n + "\n";
  }
  INFO("Alertmanager:\n" << am_text << "vigil:\n" << vigil_text);
  CHECK(am_seen.size() >= 8);
  CHECK(vigil_seen == am_seen);
  hook.stop();
  hook_thread.join();
}

// OpsGenie: Alertmanager 0.25 and vigil, with the same opsgenie_configs pointed at a loopback
// API, must make the same requests: the create with every field a configuration can set
// (alias, message, description, details over the common labels, source, responders with a
// "teams" list split, tags and actions lists, note, priority, entity) while the group fires, the
// close by alias once it is resolved, each with the GenieKey authorization; and with
// update_alerts, the message and description set by alias after each create.
TEST_CASE("Alertmanager 0.25 and vigil make the same OpsGenie requests",
          "[integration][alerting][opsgenie]") {
  TempDir dir;
  std::mutex mu;
  std::map<std::string, std::multiset<std::string>> received;
  httplib::Server api;
  const auto record = [&](const httplib::Request& req, httplib::Response& res) {
    std::string query;
    for (const auto& [k, v] : req.params) {
      query += (query.empty() ? "?" : "&") + k + "=" + v;
    }
    const json request = {{"method", req.method},
                          {"path", "/" + std::string(req.matches[2]) + query},
                          {"authorization", req.get_header_value("Authorization")},
                          {"content_type", req.get_header_value("Content-Type")},
                          {"body", json::parse(req.body)}};
    std::lock_guard lock(mu);
    received[req.matches[1]].insert(request.dump());
    res.status = 202;
    res.set_content(R"({"result":"Request will be processed","requestId":"x"})",
                    "application/json");
  };
  api.Post(R"(/(am|vigil)/(.*))", record);
  api.Put(R"(/(am|vigil)/(.*))", record);  // update_alerts
  const int api_port = api.bind_to_any_port("127.0.0.1");
  std::thread api_thread([&] { api.listen_after_bind(); });

  const std::string routing = R"(route:
  receiver: og
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
receivers:
  - name: og
    opsgenie_configs:
      - api_key: k3y
        api_url: 'http://127.0.0.1:)" +
                              std::to_string(api_port) +
                              R"(/SENDER/'
        message: '{{ .CommonLabels.alertname }} on {{ .CommonLabels.cluster }}: {{ .CommonLabels.long }}'
        description: '{{ range .Alerts }}{{ .Labels.instance }} {{ end }}'
        source: 'node {{ .CommonLabels.cluster }}'
        tags: 'db, {{ .CommonLabels.severity }} ,, x'
        note: 'note {{ .Status }}'
        priority: '{{ if eq .CommonLabels.severity "page" }}P1{{ else }}P3{{ end }}'
        entity: '{{ .GroupLabels.alertname }}'
        actions: 'restart,page'
        details: {team: db, firing: '{{ .Alerts.Firing | len }}'}
        responders:
          - {name: db-team, type: team}
          - {username: alice@example.com, type: User}
          - {name: 'ops,web', type: teams}
      - api_key: k3y
        api_url: 'http://127.0.0.1:)" +
                              std::to_string(api_port) + R"(/SENDER/updating/'
        update_alerts: true
        source: vigil
        message: 'now {{ .CommonLabels.alertname }}'
        description: '{{ .Alerts.Firing | len }} firing'
)";
  auto forSender = [&](const std::string& sender) {
    return std::regex_replace(routing, std::regex("SENDER"), sender);
  };
  std::string indented;
  std::istringstream lines(forSender("vigil"));
  for (std::string line; std::getline(lines, line);) {
    indented += "  " + line + "\n";
  }
  dir.write("vigil.yaml", openOnLoopback("alerting:\n" + indented));
  RealAlertmanager am(dir, forSender("am"));
  const int vigil_port = freeLoopbackPort();
  ChildProcess vigil(
      vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), vigil_port, dir.file("vigil-data")),
      dir.file("vigil.log"));
  httplib::Client am_client("127.0.0.1", am.port);
  httplib::Client vigil_client("127.0.0.1", vigil_port);
  REQUIRE(eventually(15s, [&] {
    auto a = am_client.Get("/-/ready");
    auto v = vigil_client.Get("/-/healthy");
    return a && a->status == 200 && v && v->status == 200;
  }));
  // A message longer than OpsGenie takes, in characters of two bytes: cut at 130 characters.
  std::string long_text;
  for (int i = 0; i < 150; ++i) {
    long_text += "é";
  }
  const std::string common =
      R"({"alertname":"DiskFull","cluster":"eu","severity":"page","long":")" + long_text + "\"";
  auto send = [&](bool resolved) {
    const std::string body = "[" + alertJson(common + R"(,"instance":"db-1"})", resolved) + "," +
                             alertJson(common + R"(,"instance":"db-2"})", resolved) + "]";
    auto a = am_client.Post("/api/v2/alerts", body, "application/json");
    auto v = vigil_client.Post("/api/v2/alerts", body, "application/json");
    REQUIRE(a);
    REQUIRE(v);
    CHECK(a->status == 200);
    CHECK(v->status == 200);
  };
  // Firing: a create from the first integration; a create, then the message and the
  // description set by alias, from the one with update_alerts. Resolved: a close from each.
  send(false);
  REQUIRE(eventually(15s, [&] {
    std::lock_guard lock(mu);
    return received["am"].size() == 4 && received["vigil"].size() == 4;
  }));
  send(true);
  REQUIRE(eventually(15s, [&] {
    std::lock_guard lock(mu);
    return received["am"].size() == 6 && received["vigil"].size() == 6;
  }));
  std::this_thread::sleep_for(3s);  // nothing more comes: no repeat, no second close
  std::lock_guard lock(mu);
  std::string am_text;
  for (const auto& r : received["am"]) {
    am_text += r + "\n";
  }
  std::string vigil_text;
  for (const auto& r : received["vigil"]) {
    vigil_text += r + "\n";
  }
  INFO("Alertmanager:\n" << am_text << "vigil:\n" << vigil_text);
  CHECK(received["am"].size() == 6);
  CHECK(received["vigil"] == received["am"]);
  api.stop();
  api_thread.join();
}
