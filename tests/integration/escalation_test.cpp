// Escalation through vigil end to end: levels notified in turn to real webhook receivers on
// loopback, acknowledged over the API (surviving kill -9), withdrawn, and resolved to everyone.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/alerting_vigil.h"

using namespace vigil::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

namespace {

// Records (path, status) of every webhook payload it gets.
struct LevelReceivers {
  httplib::Server server;
  std::mutex mu;
  std::vector<std::pair<std::string, std::string>> got;
  int port = 0;
  std::thread thread;

  LevelReceivers() {
    server.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu);
      got.emplace_back(req.path, json::parse(req.body)["status"].get<std::string>());
      res.status = 200;
    });
    port = server.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server.listen_after_bind(); });
  }
  ~LevelReceivers() {
    server.stop();
    thread.join();
  }
  int count(const std::string& path, const std::string& status = "firing") {
    std::lock_guard lock(mu);
    return static_cast<int>(std::count(got.begin(), got.end(), std::pair{path, status}));
  }
  std::string url(const std::string& path) const {
    return "http://127.0.0.1:" + std::to_string(port) + path;
  }
};

std::string config(const LevelReceivers& hooks) {
  auto receiver = [&](const std::string& name) {
    return "    - name: " + name + "\n      webhook_configs: [{url: '" + hooks.url("/" + name) +
           "'}]\n";
  };
  return R"(alerting:
  route:
    receiver: team
    group_by: [alertname]
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1h
    escalation_policy: page
  receivers:
)" + receiver("team") +
         receiver("primary") + receiver("secondary") + R"(  escalation_policies:
    - name: page
      levels:
        - receivers: [team]
          escalate_after: 2s
        - receivers: [primary]
          escalate_after: 2s
        - receivers: [secondary]
)";
}

json escalations(AlertingVigil& vigil) {
  auto res = vigil.client().Get("/api/v1/escalations");
  REQUIRE(res);
  REQUIRE(res->status == 200);
  return json::parse(res->body)["data"];
}

}  // namespace

TEST_CASE("Escalation: levels in turn, acknowledged, restarted, withdrawn, resolved",
          "[integration][escalation]") {
  LevelReceivers hooks;
  AlertingVigil vigil(config(hooks));
  const std::string alert = R"([{"labels":{"alertname":"DiskFull","instance":"db-1"}}])";
  REQUIRE(vigil.client().Post("/api/v2/alerts", alert, "application/json"));

  // The team first, the primary when nobody acknowledged within 2 s.
  REQUIRE(eventually(10s, [&] { return hooks.count("/team") == 1; }));
  CHECK(hooks.count("/primary") == 0);
  REQUIRE(eventually(10s, [&] { return hooks.count("/primary") == 1; }));
  auto list = escalations(vigil);
  REQUIRE(list.size() == 1);
  CHECK(list[0]["level"] == 2);
  CHECK(list[0]["notified"] == json{"team", "primary"});
  const std::string id = list[0]["id"];

  // Bad acknowledgements are refused with the field named.
  auto bad = vigil.client().Post("/api/v1/groups/" + id + "/ack", R"({"comment":"x"})",
                                 "application/json");
  REQUIRE(bad);
  CHECK(bad->status == 400);
  CHECK(json::parse(bad->body)["error"] == "by: who acknowledges is required");
  auto missing = vigil.client().Post("/api/v1/groups/0000000000000000/ack", R"({"by":"a"})",
                                     "application/json");
  REQUIRE(missing);
  CHECK(missing->status == 404);

  // Acknowledged (named by its group key this time): the secondary (due 2 s later) is never
  // paged.
  std::string encoded_key;
  for (unsigned char c : list[0]["groupKey"].get<std::string>()) {
    char buf[4];
    std::snprintf(buf, sizeof buf, "%%%02X", c);
    encoded_key += std::isalnum(c) ? std::string(1, static_cast<char>(c)) : std::string(buf);
  }
  auto ack = vigil.client().Post("/api/v1/groups/" + encoded_key + "/ack",
                                 R"({"by":"alice","comment":"on it","expires_in":"1h"})",
                                 "application/json");
  REQUIRE(ack);
  CHECK(ack->status == 200);
  std::this_thread::sleep_for(4s);
  CHECK(hooks.count("/secondary") == 0);

  // The acknowledgement survives kill -9.
  vigil.kill9();
  vigil.start();
  list = escalations(vigil);
  REQUIRE(list.size() == 1);
  CHECK(list[0]["acknowledged"] == true);
  CHECK(list[0]["acknowledgement"]["by"] == "alice");
  std::this_thread::sleep_for(3s);
  CHECK(hooks.count("/secondary") == 0);

  // Withdrawn: the current level hears again, then the next level 2 s later.
  auto unack = vigil.client().Delete("/api/v1/groups/" + id + "/ack");
  REQUIRE(unack);
  CHECK(unack->status == 200);
  REQUIRE(eventually(10s, [&] { return hooks.count("/primary") == 2; }));
  REQUIRE(eventually(10s, [&] { return hooks.count("/secondary") == 1; }));

  // Resolved: every level that was told hears it.
  const std::string resolved = R"([{"labels":{"alertname":"DiskFull","instance":"db-1"},
      "endsAt":"2020-01-01T00:00:00Z"}])";
  REQUIRE(vigil.client().Post("/api/v2/alerts", resolved, "application/json"));
  const bool all = eventually(10s, [&] {
    return hooks.count("/team", "resolved") == 1 && hooks.count("/primary", "resolved") == 1 &&
           hooks.count("/secondary", "resolved") == 1;
  });
  INFO(vigil.log());
  CHECK(all);
  CHECK(escalations(vigil).empty());
}
