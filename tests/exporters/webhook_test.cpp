#include <httplib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "vigil/exporters/webhook.h"

using namespace vigil;
using namespace vigil::exporters;
using json = nlohmann::json;

namespace {

alerting::Notification notification() {
  alerting::Notification n;
  n.receiver = "team.db";
  n.group_key = R"({}:{alertname="DiskFull"})";
  n.group_labels = {{"alertname", "DiskFull"}};
  alerting::Alert firing;
  firing.labels = {{"alertname", "DiskFull"}, {"instance", "a"}, {"severity", "page"}};
  firing.annotations = {{"summary", "Disk almost full"}};
  firing.starts_at = 1787392800123;  // 2026-08-22T10:00:00.123Z
  alerting::Alert resolved = firing;
  resolved.labels[1].value = "b";
  resolved.ends_at = 1787393400000;
  n.alerts = {firing, resolved};
  return n;
}

}  // namespace

TEST_CASE("Webhook: Alertmanager's version 4 payload", "[exporters][webhook]") {
  const auto body = json::parse(webhookPayload(notification(), {}, "http://vigil:9810"));
  CHECK(body["version"] == "4");
  CHECK(body["status"] == "firing");
  CHECK(body["receiver"] == R"(team\.db)");  // regexp.QuoteMeta, as Alertmanager sends it
  CHECK(body["groupKey"] == R"({}:{alertname="DiskFull"})");
  CHECK(body["externalURL"] == "http://vigil:9810");
  CHECK(body["truncatedAlerts"] == 0);
  CHECK(body["commonLabels"] == json{{"alertname", "DiskFull"}, {"severity", "page"}});
  CHECK(body["commonAnnotations"] == json{{"summary", "Disk almost full"}});
  REQUIRE(body["alerts"].size() == 2);
  CHECK(body["alerts"][0]["status"] == "firing");
  CHECK(body["alerts"][0]["startsAt"] == "2026-08-22T10:00:00.123Z");
  CHECK(body["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z");
  CHECK(body["alerts"][0]["fingerprint"].get<std::string>().size() == 16);
  CHECK(body["alerts"][1]["status"] == "resolved");
  CHECK(body["alerts"][1]["endsAt"] == "2026-08-22T10:10:00Z");

  alerting::WebhookConfig only_firing;
  only_firing.send_resolved = false;
  CHECK(json::parse(webhookPayload(notification(), only_firing, ""))["alerts"].size() == 1);
  alerting::WebhookConfig one;
  one.max_alerts = 1;
  const auto truncated = json::parse(webhookPayload(notification(), one, ""));
  CHECK(truncated["alerts"].size() == 1);
  CHECK(truncated["truncatedAlerts"] == 1);
}

TEST_CASE("Webhook: 2xx delivered, 5xx and 429 retried, other 4xx failed for good",
          "[exporters][webhook]") {
  httplib::Server server;
  std::string last_body;
  server.Post(R"(/status/(\d+))", [&](const httplib::Request& req, httplib::Response& res) {
    last_body = req.body;
    res.status = std::stoi(req.matches[1]);
    res.set_content("nope", "text/plain");
  });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread t([&] { server.listen_after_bind(); });
  const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/status/";
  const auto timeout = std::chrono::seconds(2);
  CHECK(postJson(base + "200", "{}", timeout).result == DeliveryResult::kDelivered);
  CHECK(last_body == "{}");
  CHECK(postJson(base + "503", "{}", timeout).result == DeliveryResult::kRetry);
  CHECK(postJson(base + "429", "{}", timeout).result == DeliveryResult::kRetry);
  const Delivery bad = postJson(base + "400", "{}", timeout);
  CHECK(bad.result == DeliveryResult::kFailed);
  CHECK(bad.status == 400);
  CHECK(bad.detail == "nope");
  server.stop();
  t.join();
  // Nobody listening: retried later.
  CHECK(postJson(base + "200", "{}", std::chrono::milliseconds(500)).result ==
        DeliveryResult::kRetry);
}
