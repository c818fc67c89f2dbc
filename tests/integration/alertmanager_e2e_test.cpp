// vigil against a real Alertmanager 0.25: the same route configuration and the same alert
// stream go to both; the notifications (receiver, group key, and the alerts with their status)
// must be the same. Alertmanager's go to a webhook in this test; vigil's are read from its log.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <thread>

#include "tests/support/process.h"

using namespace vigil::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// {a="1", b="2"}: both sides' alerts in one canonical form.
std::string canonical(const json& labels) {
  std::map<std::string, std::string> sorted;
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    sorted[it.key()] = it.value().get<std::string>();
  }
  std::string out = "{";
  for (const auto& [k, v] : sorted) {
    out += (out.size() > 1 ? ", " : "") + k + "=\"" + v + "\"";
  }
  return out + "}";
}

std::string notificationKey(const std::string& receiver, const std::string& group,
                            std::vector<std::string> alerts) {
  std::sort(alerts.begin(), alerts.end());
  std::string out = receiver + " " + group + " [";
  for (const auto& a : alerts) {
    out += a + " ";
  }
  return out + "]";
}

// The notifications in vigil's log: msg="notification receiver=R group=G ... alerts=[...]".
std::multiset<std::string> vigilNotifications(const std::string& log) {
  std::multiset<std::string> out;
  std::size_t pos = 0;
  while ((pos = log.find("msg=\"notification ", pos)) != std::string::npos) {
    const std::size_t end = log.find('\n', pos);
    std::string line = log.substr(pos, end - pos);
    line = std::regex_replace(line, std::regex(R"(\\")"), "\"");
    std::smatch m;
    REQUIRE(std::regex_search(line, m, std::regex(R"(receiver=(\S+) group=(.*) reason=)")));
    const std::string receiver = m[1];
    const std::string group = m[2];
    const std::string list = line.substr(line.find("alerts=[") + 8);
    std::vector<std::string> alerts;
    const std::regex item(R"((\{[^}]*\})(\(resolved\))?)");
    for (auto it = std::sregex_iterator(list.begin(), list.end(), item);
         it != std::sregex_iterator(); ++it) {
      alerts.push_back((*it)[1].str() + ((*it)[2].matched ? " resolved" : " firing"));
    }
    out.insert(notificationKey(receiver, group, alerts));
    pos = end;
  }
  return out;
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
  // The webhook Alertmanager notifies.
  std::mutex mu;
  std::multiset<std::string> am_notifications;
  httplib::Server hook;
  hook.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    const auto body = json::parse(req.body);
    std::vector<std::string> alerts;
    for (const auto& a : body["alerts"]) {
      alerts.push_back(canonical(a["labels"]) + " " + a["status"].get<std::string>());
    }
    std::lock_guard lock(mu);
    am_notifications.insert(notificationKey(body["receiver"].get<std::string>(),
                                            body["groupKey"].get<std::string>(), alerts));
    res.status = 200;
  });
  const int hook_port = hook.bind_to_any_port("127.0.0.1");
  std::thread hook_thread([&] { hook.listen_after_bind(); });

  const std::string hook_url = "http://127.0.0.1:" + std::to_string(hook_port) + "/hook";
  const std::string routing = R"(route:
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
  dir.write("am.yml", routing);
  std::string indented;
  std::istringstream lines(routing);
  for (std::string line; std::getline(lines, line);) {
    indented += "  " + line + "\n";
  }
  dir.write("vigil.yaml", "alerting:\n" + indented);

  const int am_port = freeLoopbackPort();
  ChildProcess am(
      {"prometheus-alertmanager", "--config.file=" + dir.file("am.yml"),
       "--storage.path=" + dir.file("am-data"),
       "--web.listen-address=127.0.0.1:" + std::to_string(am_port), "--cluster.listen-address="},
      dir.file("am.log"));
  const int vigil_port = freeLoopbackPort();
  ChildProcess vigil(
      {VIGIL_BINARY, "run", "--config", dir.file("vigil.yaml"), "--listen-address",
       "127.0.0.1:" + std::to_string(vigil_port), "--data-dir", dir.file("vigil-data")},
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
  {
    std::lock_guard lock(mu);
    am_seen = am_notifications;
  }
  const auto vigil_seen = vigilNotifications(readFile(dir.file("vigil.log")));
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
