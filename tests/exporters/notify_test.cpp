// The notifiers against real HTTP receivers on loopback: the payload of each kind field by
// field, delivery through the outbox with retries, back-off, Retry-After, restarts, limits,
// authentication and TLS with a test CA.
#include <httplib.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/process.h"
#include "tests/support/test_ca.h"
#include "vigil/alerting/config.h"
#include "vigil/exporters/notify.h"

using namespace vigil;
using namespace vigil::exporters;
using json = nlohmann::json;
using namespace std::chrono_literals;

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

namespace {

alerting::Receiver receiverWith(const std::function<void(alerting::Receiver&)>& fill) {
  alerting::Receiver r;
  r.name = "team.db";
  fill(r);
  return r;
}

// A notification for `receiver` (kept alive by the caller).
alerting::Notification notificationFor(const alerting::Receiver& receiver, int index = 0) {
  alerting::Notification n = notification();
  n.receiver = receiver.name;
  n.receiver_config = &receiver;
  n.alerts[0].labels[1].value = "host-" + std::to_string(index);
  return n;
}

// An HTTP(S) receiver on loopback that answers with `status` and records what it got.
class TestReceiver {
 public:
  struct Got {
    std::string path;
    std::string body;
    httplib::Headers headers;
    std::string method;
    int remote_port = 0;  // the client's end of the connection it came on
  };

  explicit TestReceiver(const std::string& cert = "", const std::string& key = "") {
    if (cert.empty()) {
      server_ = std::make_unique<httplib::Server>();
    } else {
      server_ = std::make_unique<httplib::SSLServer>(cert.c_str(), key.c_str());
    }
    const auto handle = [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      attempts_.push_back(std::chrono::steady_clock::now());
      res.status = status.load();
      if (!retry_after.empty()) {
        res.set_header("Retry-After", retry_after);
      }
      if (res.status >= 200 && res.status < 300) {
        got_.push_back({req.path, req.body, req.headers, req.method, req.remote_port});
      }
      res.set_content(res.status < 300 ? "ok" : "no thanks", "text/plain");
    };
    server_->Post(".*", handle);
    server_->Put(".*", handle);  // OpsGenie's updates
    port_ = server_->bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    while (!server_->is_running()) {
      std::this_thread::sleep_for(1ms);
    }
  }
  ~TestReceiver() {
    server_->stop();
    thread_.join();
  }
  std::string url(const std::string& path = "/hook") const {
    return std::string(dynamic_cast<httplib::SSLServer*>(server_.get()) ? "https" : "http") +
           "://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<Got> got() const {
    std::lock_guard lock(mu_);
    return got_;
  }
  std::vector<std::chrono::steady_clock::time_point> attempts() const {
    std::lock_guard lock(mu_);
    return attempts_;
  }

  std::atomic<int> status{200};
  std::string retry_after;  // set before traffic

 private:
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Got> got_;
  std::vector<std::chrono::steady_clock::time_point> attempts_;
};

alerting::Receiver webhookTo(const std::string& url) {
  return receiverWith([&](alerting::Receiver& r) { r.webhooks.push_back({url, true, 0, {}}); });
}

NotificationServiceOptions fastOptions(const test::TempDir& dir) {
  NotificationServiceOptions o;
  o.outbox_dir = dir.file("outbox");
  o.external_url = "http://vigil:9810";
  o.timeout = 2s;
  o.backoff_initial = 20ms;
  o.backoff_max = 100ms;
  return o;
}

std::shared_ptr<NotificationService> openService(const NotificationServiceOptions& o) {
  auto s = NotificationService::open(o);
  INFO((s ? std::string() : s.status().message()));
  REQUIRE(s);
  return std::move(s).value();
}

double metric(const NotificationService& s, const std::string& name, const LabelSet& labels) {
  MetricBatch batch;
  s.appendStats(batch);
  for (const auto& f : batch.families()) {
    for (const auto& sample : f.samples) {
      if (f.name + sample.suffix == name && sample.labels == labels) {
        return sample.value;
      }
    }
  }
  return -1;
}

std::size_t filesIn(const std::string& dir) {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    n += e.path().extension() == ".json" ? 1 : 0;
  }
  return n;
}

}  // namespace

TEST_CASE("Slack: readable text and blocks", "[exporters][slack]") {
  alerting::SlackConfig c;
  c.channel = "#db-oncall";
  c.username = "vigil";
  auto n = notification();
  n.alerts[0].annotations.push_back({"runbook_url", "https://runbooks/disk"});
  n.alerts[0].generator_url = "http://node-1:9810/graph?g0.expr=up";
  n.alerts.pop_back();  // one firing alert
  const auto body = json::parse(slackPayload(n, c, "http://vigil:9810"));
  CHECK(body["channel"] == "#db-oncall");
  CHECK(body["username"] == "vigil");
  // The notification text: Alertmanager's default title.
  CHECK(body["text"] == "[FIRING:1] DiskFull (a page)");
  // The title leads; the rest is in an attachment whose bar is red while anything fires.
  REQUIRE(body["blocks"].size() == 1);
  CHECK(body["blocks"][0]["type"] == "header");
  CHECK(body["blocks"][0]["text"]["text"] == "[FIRING:1] DiskFull (a page)");
  REQUIRE(body["attachments"].size() == 1);
  CHECK(body["attachments"][0]["color"] == "danger");
  const auto& blocks = body["attachments"][0]["blocks"];
  REQUIRE(blocks.size() == 3);
  const auto& fields = blocks[0]["fields"];
  CHECK(fields[0]["text"] == "*Alert:*\nDiskFull");
  CHECK(fields[1]["text"] == "*Severity:*\npage");
  CHECK(fields[2]["text"] == "*Status:*\nfiring");
  const std::string text = blocks[1]["text"]["text"];
  CHECK(text.find("[firing] Disk almost full (instance=a, severity=page)") == 0);
  CHECK(text.find("since 2026-08-22T10:00:00.123Z") != std::string::npos);
  CHECK(text.find("runbook: https://runbooks/disk") != std::string::npos);
  CHECK(blocks[2]["elements"][0]["text"] ==
        "<http://node-1:9810/graph?g0.expr=up|Source> · <https://runbooks/disk|Runbook>");

  // Slack's limits hold whatever the alerts say.
  auto big = notification();
  big.group_labels = {{"alertname", std::string(400, 'x')}};
  big.alerts[0].annotations = {{"summary", std::string(5000, 'y')}};
  const auto limited = json::parse(slackPayload(big, c, ""));
  CHECK(limited["blocks"][0]["text"]["text"].get<std::string>().size() <= 150 + 2);
  CHECK(limited["attachments"][0]["blocks"][1]["text"]["text"].get<std::string>().size() <=
        3000 + 2);

  // Templates override the title and text.
  c.title = "{{ .CommonLabels.alertname }} on {{ .Receiver }}";
  c.text = "{{ .NumFiring }} firing: {{ .CommonAnnotations.summary | toUpper }}";
  const auto templated = json::parse(slackPayload(n, c, ""));
  // The receiver's name as Alertmanager gives templates: through regexp.QuoteMeta.
  CHECK(templated["text"] == "DiskFull on team\\.db");
  CHECK(templated["attachments"][0]["blocks"][1]["text"]["text"] == "1 firing: DISK ALMOST FULL");

  // Alertmanager's attachment keys: the bar's colour, a line above and below, the notification
  // text, and fields (one whose value expands to nothing keeps its title, as in Alertmanager).
  c.color = R"({{ if eq .Status "firing" }}#FF0000{{ else }}#00FF00{{ end }})";
  c.pretext = "{{ .CommonLabels.severity | toUpper }}";
  c.footer = "sent to {{ .Receiver }}";
  c.fallback = "{{ .CommonLabels.alertname }} is {{ .Status }}";
  c.fields = {{"Instance", "{{ range .Alerts }}{{ .Labels.instance }}{{ end }}"},
              {"Empty", "{{ .CommonLabels.nothere }}"},
              {"Cluster of {{ .CommonLabels.alertname }}", "eu-1"}};
  const auto shaped = json::parse(slackPayload(n, c, ""));
  CHECK(shaped["text"] == "DiskFull is firing");
  CHECK(shaped["attachments"][0]["color"] == "#FF0000");
  REQUIRE(shaped["blocks"].size() == 2);
  CHECK(shaped["blocks"][0]["text"]["text"] == "PAGE");
  CHECK(shaped["blocks"][1]["type"] == "header");
  const auto& shaped_blocks = shaped["attachments"][0]["blocks"];
  const auto& shaped_fields = shaped_blocks[0]["fields"];
  REQUIRE(shaped_fields.size() == 7);
  CHECK(shaped_fields[4]["text"] == "*Instance:*\na");
  CHECK(shaped_fields[5]["text"] == "*Empty:*");
  CHECK(shaped_fields[6]["text"] == "*Cluster of DiskFull:*\neu-1");
  CHECK(shaped_blocks.back()["elements"][0]["text"] == "sent to team\\.db");
  // Resolved: the default bar turns green, the template's too.
  auto resolved = notification();
  for (auto& a : resolved.alerts) {
    a.ends_at = a.starts_at + 60'000;
  }
  resolved.alerts.pop_back();
  alerting::SlackConfig plain;
  plain.send_resolved = true;
  CHECK(json::parse(slackPayload(resolved, plain, ""))["attachments"][0]["color"] == "good");
  c.send_resolved = true;
  CHECK(json::parse(slackPayload(resolved, c, ""))["attachments"][0]["color"] == "#00FF00");
  // A section holds at most ten fields: more go on in another.
  c.fields.assign(12, {"F", "v"});
  const auto many = json::parse(slackPayload(n, c, ""));
  CHECK(many["attachments"][0]["blocks"][0]["fields"].size() == 10);
  CHECK(many["attachments"][0]["blocks"][1]["fields"].size() == 6);
}

TEST_CASE("OpsGenie: an alert per group, created and closed by alias", "[exporters][opsgenie]") {
  alerting::OpsGenieConfig c;
  c.api_url = "https://api.opsgenie.example/";
  auto n = notification();  // one alert firing, one resolved: the group fires
  const auto create = opsGenieRequest(n, c, "http://vigil:9810");
  CHECK(create.url == "https://api.opsgenie.example/v2/alerts");
  CHECK(create.updates.empty());  // without update_alerts
  const auto body = json::parse(create.body);
  // The alias: the group key's SHA-256, as for PagerDuty's dedup_key.
  CHECK(body["alias"] == pagerDutyDedupKey(n.group_key));
  CHECK(body["alias"].get<std::string>().size() == 64);
  // Unconfigured: vigil's title and text, the common labels as details, the external URL.
  CHECK(body["message"] == "[FIRING:1] DiskFull (page)");
  CHECK(body["description"].get<std::string>().find("Disk almost full") != std::string::npos);
  CHECK(body["details"] == json({{"alertname", "DiskFull"}, {"severity", "page"}}));
  CHECK(body["source"] == "http://vigil:9810");
  CHECK_FALSE(body.contains("responders"));
  CHECK_FALSE(body.contains("tags"));
  CHECK_FALSE(body.contains("priority"));

  // Configured: templates everywhere; details over the common labels; lists split at commas
  // (empty entries left out); a "teams" responder becomes one team each.
  c.message = "{{ .CommonLabels.alertname }}: " + std::string(200, 'm');
  c.priority = R"({{ if eq .CommonLabels.severity "page" }}P1{{ else }}P3{{ end }})";
  c.tags = "db,,{{ .CommonLabels.severity }}";
  c.details = {{"severity", "overridden"}, {"count", "{{ len .Alerts }}"}};
  c.responders = {{"", "ops,web", "", "teams"}, {"", "", "{{ .Receiver }}@example.com", "user"}};
  const auto shaped = json::parse(opsGenieRequest(n, c, "").body);
  // OpsGenie takes at most 130 characters.
  CHECK(shaped["message"] == "DiskFull: " + std::string(119, 'm') + "…");
  CHECK(shaped["priority"] == "P1");
  CHECK(shaped["tags"] == json({"db", "page"}));
  CHECK(shaped["details"] ==
        json({{"alertname", "DiskFull"}, {"severity", "overridden"}, {"count", "2"}}));
  CHECK(shaped["responders"] ==
        json::array({{{"name", "ops"}, {"type", "team"}},
                     {{"name", "web"}, {"type", "team"}},
                     {{"type", "user"}, {"username", "team\\.db@example.com"}}}));

  // update_alerts: the create is followed by setting the message, then the description, of the
  // alert with this alias (a create of an open alias leaves them as they were).
  c.update_alerts = true;
  const auto updating = opsGenieRequest(n, c, "");
  CHECK(json::parse(updating.body) == shaped);
  const std::string by_alias =
      "https://api.opsgenie.example/v2/alerts/" + pagerDutyDedupKey(n.group_key);
  REQUIRE(updating.updates.size() == 2);
  CHECK(updating.updates[0].url == by_alias + "/message?identifierType=alias");
  CHECK(json::parse(updating.updates[0].body) == json({{"message", shaped["message"]}}));
  CHECK(updating.updates[1].url == by_alias + "/description?identifierType=alias");
  CHECK(json::parse(updating.updates[1].body) == json({{"description", shaped["description"]}}));

  // Everything resolved: the alert is closed by its alias.
  for (auto& a : n.alerts) {
    a.ends_at = a.starts_at + 60'000;
  }
  c.source = "vigil on {{ .CommonLabels.alertname }}";
  const auto close = opsGenieRequest(n, c, "");
  CHECK(close.url == "https://api.opsgenie.example/v2/alerts/" + pagerDutyDedupKey(n.group_key) +
                         "/close?identifierType=alias");
  CHECK(json::parse(close.body) == json({{"source", "vigil on DiskFull"}}));
  CHECK(close.updates.empty());  // nothing to update on a close
}

TEST_CASE(
    "OpsGenie with update_alerts: create, then message and description, in order, also "
    "after a restart",
    "[exporters][opsgenie][outbox]") {
  test::TempDir dir;
  TestReceiver genie;
  const auto receiver = receiverWith([&](alerting::Receiver& r) {
    alerting::OpsGenieConfig c;
    c.api_url = genie.url("/og/");
    c.update_alerts = true;
    c.message = "{{ .CommonLabels.alertname }} {{ (index .Alerts 0).Labels.instance }}";
    c.http.auth_type = "GenieKey";
    c.http.credentials = "k";
    r.opsgenie.push_back(c);
  });
  const std::string by_alias =
      "/og/v2/alerts/" + pagerDutyDedupKey(notificationFor(receiver).group_key);
  // The requests from the `from`th on are one notification's, for host-`instance`: the create,
  // then its message and description set by alias.
  const auto checkSent = [&](std::size_t from, int instance) {
    const auto got = genie.got();
    REQUIRE(got.size() == from + 3);
    CHECK(got[from].method + " " + got[from].path == "POST /og/v2/alerts");
    CHECK(got[from + 1].method + " " + got[from + 1].path == "PUT " + by_alias + "/message");
    CHECK(got[from + 1].body ==
          R"({"message":"DiskFull host-)" + std::to_string(instance) + R"("})");
    CHECK(got[from + 2].method + " " + got[from + 2].path == "PUT " + by_alias + "/description");
    CHECK(json::parse(got[from + 2].body).contains("description"));
    CHECK(got[from + 2].headers.find("Authorization")->second == "GenieKey k");
    // On one connection: the updates do not pay for a connection (a TLS handshake) each.
    CHECK(got[from + 1].remote_port == got[from].remote_port);
    CHECK(got[from + 2].remote_port == got[from].remote_port);
  };
  {
    auto service = openService(fastOptions(dir));
    REQUIRE(service->deliver(notificationFor(receiver, 1)));
    REQUIRE(service->waitIdle(10s));
    checkSent(0, 1);
    // Down when vigil stops: the message waits on disk with its follow-ups.
    genie.status = 503;
    REQUIRE(service->deliver(notificationFor(receiver, 2)));
    service->shutdown();
  }
  genie.status = 200;
  auto service = openService(fastOptions(dir));
  REQUIRE(service->waitIdle(10s));
  checkSent(3, 2);
}

TEST_CASE("PagerDuty: Events API v2 trigger and resolve", "[exporters][pagerduty]") {
  alerting::PagerDutyConfig c;
  c.routing_key = "R0UT1NGKEY";
  c.url = "http://127.0.0.1/v2/enqueue";
  auto n = notification();
  const auto trigger = json::parse(pagerDutyEvent(n, c, "http://vigil:9810", "node-1"));
  CHECK(trigger["routing_key"] == "R0UT1NGKEY");
  CHECK(trigger["event_action"] == "trigger");
  // sha256 of the group key {}:{alertname="DiskFull"}, as Alertmanager's dedup key.
  CHECK(trigger["dedup_key"] == "17c4e445d234645c9e547ff6d32a864af0ebdadcd1902771c24c8d366637ff41");
  CHECK(trigger["client"] == "vigil");
  CHECK(trigger["client_url"] == "http://vigil:9810");
  CHECK(trigger["payload"]["summary"] == "[FIRING:1] DiskFull (page): Disk almost full");
  CHECK(trigger["payload"]["severity"] == "critical");  // severity=page
  CHECK(trigger["payload"]["source"] == "node-1");      // the instances differ
  CHECK(trigger["payload"]["custom_details"]["num_firing"] == "1");
  CHECK(trigger["payload"]["custom_details"]["num_resolved"] == "1");

  // The same group resolves with the same key.
  n.alerts[0].ends_at = n.alerts[1].ends_at;
  const auto resolve = json::parse(pagerDutyEvent(n, c, "", "node-1"));
  CHECK(resolve["event_action"] == "resolve");
  CHECK(resolve["dedup_key"] == trigger["dedup_key"]);
  CHECK_FALSE(resolve.contains("payload"));

  // An acknowledged group: PagerDuty's acknowledge for the same key; Slack says who.
  auto acked = notification();
  acked.acknowledgement = alerting::Acknowledgement{"alice", "on it", 0, 0};
  const auto ack_event = json::parse(pagerDutyEvent(acked, c, "", "node-1"));
  CHECK(ack_event["event_action"] == "acknowledge");
  CHECK(ack_event["dedup_key"] == trigger["dedup_key"]);
  CHECK_FALSE(ack_event.contains("payload"));
  const auto ack_slack = json::parse(slackPayload(acked, {}, ""));
  CHECK(ack_slack["text"].get<std::string>().starts_with("[ACK] [FIRING:1] DiskFull"));
  CHECK(ack_slack["attachments"][0]["blocks"][1]["text"]["text"].get<std::string>().starts_with(
      "Acknowledged by alice: on it (until resolved)"));

  // Summary at most 1024 characters; severities mapped from the label.
  auto big = notification();
  big.alerts[0].annotations = {{"summary", std::string(3000, 's')}};
  big.alerts[1].annotations = big.alerts[0].annotations;
  for (auto& a : big.alerts) {
    a.labels[2].value = "warning";
  }
  const auto long_one = json::parse(pagerDutyEvent(big, c, "", "node-1"));
  CHECK(long_one["payload"]["summary"].get<std::string>().size() <= 1024);
  CHECK(long_one["payload"]["severity"] == "warning");
}

TEST_CASE("Notifier: a receiver that is down for a while gets every notification, in order",
          "[exporters][outbox]") {
  test::TempDir dir;
  TestReceiver hook;
  hook.status = 503;
  const auto receiver = webhookTo(hook.url());
  auto service = openService(fastOptions(dir));
  constexpr int kNotifications = 20;
  for (int i = 0; i < kNotifications; ++i) {
    REQUIRE(service->deliver(notificationFor(receiver, i)));
  }
  // Down: every message waits on disk, attempts are retried.
  REQUIRE(test::eventually(5s, [&] { return hook.attempts().size() >= 3; }));
  CHECK(service->pending() == kNotifications);
  CHECK(filesIn(dir.file("outbox")) == kNotifications);
  // The receiver sees an attempt before the notifier has its answer: the third attempt's
  // result may still be on its way to the counter.
  CHECK(test::eventually(5s, [&] {
    return metric(*service, "vigil_notifications_total",
                  {{"notifier", "webhook"}, {"result", "retry"}}) >= 3;
  }));
  // Up again: everything arrives, in the order it was made, and the outbox empties.
  hook.status = 200;
  REQUIRE(service->waitIdle(10s));
  const auto got = hook.got();
  REQUIRE(got.size() == kNotifications);
  for (int i = 0; i < kNotifications; ++i) {
    const auto body = json::parse(got[i].body);
    CHECK(body["alerts"][0]["labels"]["instance"] == "host-" + std::to_string(i));
  }
  CHECK(filesIn(dir.file("outbox")) == 0);
  CHECK(metric(*service, "vigil_notifications_total",
               {{"notifier", "webhook"}, {"result", "delivered"}}) == kNotifications);
  CHECK(metric(*service, "vigil_notification_latency_seconds_count", {{"notifier", "webhook"}}) ==
        kNotifications);
  CHECK(metric(*service, "vigil_outbox_pending", {}) == 0);
}

TEST_CASE("Notifier: back-off grows between attempts and Retry-After is honoured",
          "[exporters][outbox]") {
  test::TempDir dir;
  TestReceiver hook;
  hook.status = 503;
  const auto receiver = webhookTo(hook.url());
  auto options = fastOptions(dir);
  options.backoff_initial = 100ms;
  options.backoff_max = 400ms;
  auto service = openService(options);
  REQUIRE(service->deliver(notificationFor(receiver)));
  REQUIRE(test::eventually(5s, [&] { return hook.attempts().size() >= 5; }));
  const auto a = hook.attempts();
  auto gap = [&](std::size_t i) { return a[i + 1] - a[i]; };
  // Equal jitter: each wait is between half and all of 100, 200, 400, 400 ms (less a few ms:
  // the retry time is kept in whole wall-clock milliseconds, the gap measured on another clock).
  CHECK(gap(0) >= 45ms);
  CHECK(gap(2) >= 190ms);
  CHECK(gap(3) >= 190ms);
  CHECK(gap(3) < 1500ms);
  service->shutdown();

  test::TempDir dir2;
  TestReceiver limited;
  limited.status = 429;
  limited.retry_after = "1";
  const auto receiver2 = webhookTo(limited.url());
  auto service2 = openService(fastOptions(dir2));
  REQUIRE(service2->deliver(notificationFor(receiver2)));
  REQUIRE(test::eventually(5s, [&] { return limited.attempts().size() >= 2; }));
  const auto b = limited.attempts();
  CHECK(b[1] - b[0] >= 900ms);  // the back-off alone would retry after 20 ms
}

TEST_CASE("Notifier: a 4xx is not retried, the body is kept for the log", "[exporters][outbox]") {
  test::TempDir dir;
  TestReceiver hook;
  hook.status = 400;
  const auto receiver = webhookTo(hook.url());
  auto service = openService(fastOptions(dir));
  REQUIRE(service->deliver(notificationFor(receiver)));
  REQUIRE(service->waitIdle(5s));
  std::this_thread::sleep_for(200ms);
  CHECK(hook.attempts().size() == 1);
  CHECK(metric(*service, "vigil_notifications_total",
               {{"notifier", "webhook"}, {"result", "rejected"}}) == 1);
  CHECK(filesIn(dir.file("outbox")) == 0);
}

TEST_CASE("Notifier: health series for the notifiers in use only, at 0 from the start",
          "[exporters][outbox]") {
  test::TempDir dir;
  TestReceiver hook;
  auto service = openService(fastOptions(dir));
  const auto count = [&](const char* notifier) {
    return metric(*service, "vigil_notification_latency_seconds_count", {{"notifier", notifier}});
  };
  // No receiver yet: an agent on every node exports no zeros for integrations nobody uses.
  for (const char* kind : {"webhook", "slack", "pagerduty", "file"}) {
    CHECK(count(kind) == -1);
  }
  CHECK(metric(*service, "vigil_outbox_pending", {}) == 0);
  const auto parsed = alerting::parseAlertingConfig(R"(route: {receiver: ops}
receivers:
  - name: ops
    slack_configs: [{api_url: 'http://127.0.0.1:9/slack', channel: '#ops'}]
  - name: db
    webhook_configs: [{url: 'http://127.0.0.1:9/hook'}]
)",
                                                    "am.yml");
  REQUIRE(parsed.config);
  service->receiversChanged(parsed.config->receivers);
  // Configured: at 0 before anything is sent, so that rate() sees the first failure.
  CHECK(count("slack") == 0);
  CHECK(count("webhook") == 0);
  CHECK(metric(*service, "vigil_notifications_total",
               {{"notifier", "webhook"}, {"result", "retry"}}) == 0);
  CHECK(count("pagerduty") == -1);
  CHECK(count("file") == -1);
  // A notifier sent to keeps its series after a reload that drops its receivers: its counts
  // stay readable.
  const auto receiver = webhookTo(hook.url());
  REQUIRE(service->deliver(notificationFor(receiver)));
  REQUIRE(service->waitIdle(5s));
  service->receiversChanged({});
  CHECK(count("webhook") == 1);
  CHECK(count("slack") == -1);
}

TEST_CASE("Notifier: what is pending when vigil stops is delivered after the restart",
          "[exporters][outbox]") {
  test::TempDir dir;
  TestReceiver hook;
  hook.status = 503;
  const auto receiver = webhookTo(hook.url());
  std::set<std::string> keys;
  {
    auto service = openService(fastOptions(dir));
    for (int i = 0; i < 5; ++i) {
      REQUIRE(service->deliver(notificationFor(receiver, i)));
    }
    service->shutdown();
  }
  // Still down when vigil starts again: all five are back from the outbox and waiting (were
  // the receiver up, some could be delivered before pending() is read).
  auto service = openService(fastOptions(dir));
  CHECK(service->pending() == 5);
  hook.status = 200;
  REQUIRE(service->waitIdle(10s));
  const auto got = hook.got();
  REQUIRE(got.size() == 5);
  for (int i = 0; i < 5; ++i) {
    CHECK(json::parse(got[i].body)["alerts"][0]["labels"]["instance"] ==
          "host-" + std::to_string(i));
    keys.insert(got[i].headers.find("Idempotency-Key")->second);
  }
  CHECK(keys.size() == 5);  // one key per message, the same on every attempt

  // A message file that cannot be read back is set aside, counted, and the rest goes on.
  hook.status = 503;
  REQUIRE(service->deliver(notificationFor(receiver, 9)));
  service->shutdown();
  std::ofstream(dir.file("outbox/0000000000000001-garbage.json")) << "{not json";
  // Valid JSON whose time is no int64 (casting 1e300 would be undefined behaviour).
  std::ofstream(dir.file("outbox/0000000000000002-huge.json"))
      << R"({"id":"0000000000000002-huge","notifier":"webhook","receiver":"r","group_key":"g",)"
      << R"("target":"http://127.0.0.1:9/","body":"{}","created_at":1e300,"http":{"auth_type":"",)"
      << R"("credentials":"","credentials_file":"","basic_username":"","basic_password":"",)"
      << R"("basic_password_file":"","ca_file":"","insecure_skip_verify":false,"headers":[]}})";
  hook.status = 200;
  auto again = openService(fastOptions(dir));
  CHECK(metric(*again, "vigil_outbox_dropped_total", {{"reason", "corrupt"}}) == 2);
  CHECK(std::filesystem::exists(dir.file("outbox/0000000000000002-huge.json.bad")));
  REQUIRE(again->waitIdle(10s));
  CHECK(hook.got().size() == 6);
  CHECK(std::filesystem::exists(dir.file("outbox/0000000000000001-garbage.json.bad")));
}

TEST_CASE("Notifier: the outbox is bounded, the oldest message goes first", "[exporters][outbox]") {
  test::TempDir dir;
  TestReceiver hook;
  hook.status = 503;
  const auto receiver = webhookTo(hook.url());
  auto options = fastOptions(dir);
  options.max_pending = 3;
  options.backoff_initial = 5s;  // the head waits: nothing is in flight while we add
  options.backoff_max = 5s;
  auto service = openService(options);
  REQUIRE(service->deliver(notificationFor(receiver, 0)));
  // Until the failed attempt is counted, the head may still be in flight (and not droppable).
  REQUIRE(test::eventually(5s, [&] {
    return metric(*service, "vigil_notifications_total",
                  {{"notifier", "webhook"}, {"result", "retry"}}) == 1;
  }));
  for (int i = 1; i < 6; ++i) {
    REQUIRE(service->deliver(notificationFor(receiver, i)));
  }
  CHECK(service->pending() == 3);
  CHECK(filesIn(dir.file("outbox")) == 3);
  CHECK(metric(*service, "vigil_outbox_dropped_total", {{"reason", "full"}}) == 3);
  service->shutdown();
  hook.status = 200;
  auto reopened = openService(fastOptions(dir));
  REQUIRE(reopened->waitIdle(10s));
  const auto got = hook.got();
  REQUIRE(got.size() == 3);
  // The newest are kept, in order. Once the head is dropped the next one is attempted at once,
  // and a message being delivered is not dropped, so an older one may survive in host-3's
  // place; never more than the one in flight.
  const auto instance = [&](std::size_t i) {
    return json::parse(got[i].body)["alerts"][0]["labels"]["instance"].get<std::string>();
  };
  CHECK((instance(0) == "host-3" || instance(0) == "host-2" || instance(0) == "host-1"));
  CHECK(instance(1) == "host-4");
  CHECK(instance(2) == "host-5");

  // Past the age limit a message is dropped instead of retried again.
  hook.status = 503;
  test::TempDir dir2;
  auto aged = fastOptions(dir2);
  aged.max_age = 50ms;
  auto service2 = openService(aged);
  REQUIRE(service2->deliver(notificationFor(receiver, 7)));
  REQUIRE(service2->waitIdle(5s));
  CHECK(metric(*service2, "vigil_outbox_dropped_total", {{"reason", "expired"}}) == 1);
}

TEST_CASE("Notifier: credentials from files, custom headers, one message per integration",
          "[exporters][outbox]") {
  test::TempDir dir;
  dir.write("token", "s3cret\n");
  dir.write("password", "hunter2\n");
  TestReceiver hook;
  const auto receiver = receiverWith([&](alerting::Receiver& r) {
    alerting::WebhookConfig bearer{hook.url("/bearer"), true, 0, {}};
    bearer.http.auth_type = "Bearer";
    bearer.http.credentials_file = dir.file("token");
    bearer.http.headers = {{"X-Team", "db"}};
    alerting::WebhookConfig basic{hook.url("/basic"), true, 0, {}};
    basic.http.auth_type = "Basic";
    basic.http.basic_username = "vigil";
    basic.http.basic_password_file = dir.file("password");
    r.webhooks = {bearer, basic};
    alerting::SlackConfig slack;
    slack.api_url = hook.url("/slack");
    r.slack.push_back(slack);
    alerting::PagerDutyConfig pd;
    pd.routing_key = "key";
    pd.url = hook.url("/pd");
    r.pagerduty.push_back(pd);
    r.files.push_back({dir.file("notifications.jsonl"), true});
  });
  auto service = openService(fastOptions(dir));
  REQUIRE(service->deliver(notificationFor(receiver)));
  REQUIRE(service->waitIdle(10s));
  std::map<std::string, TestReceiver::Got> by_path;
  for (const auto& g : hook.got()) {
    by_path[g.path] = g;
  }
  REQUIRE(by_path.size() == 4);
  auto header = [&](const std::string& path, const std::string& name) {
    auto it = by_path[path].headers.find(name);
    return it == by_path[path].headers.end() ? std::string("<none>") : it->second;
  };
  CHECK(header("/bearer", "Authorization") == "Bearer s3cret");
  CHECK(header("/bearer", "X-Team") == "db");
  CHECK(header("/basic", "Authorization") == "Basic dmlnaWw6aHVudGVyMg==");  // vigil:hunter2
  CHECK(header("/basic", "X-Team") == "<none>");
  CHECK(header("/bearer", "Content-Type") == "application/json");
  CHECK(json::parse(by_path["/slack"].body).contains("blocks"));
  CHECK(json::parse(by_path["/pd"].body)["event_action"] == "trigger");
  const std::string lines = test::readFile(dir.file("notifications.jsonl"));
  CHECK(json::parse(lines.substr(0, lines.find('\n')))["version"] == "4");
}

TEST_CASE("OpsGenie: a key from a file is read at each send, so a rotated key needs no reload",
          "[exporters][opsgenie]") {
  test::TempDir dir;
  dir.write("own.key", "own-1\n");
  dir.write("global.key", "global-1\n");
  TestReceiver genie;
  // One integration with its own api_key_file, one with the global opsgenie_api_key_file.
  const auto parsed = alerting::parseAlertingConfig(
      "global:\n  opsgenie_api_key_file: " + dir.file("global.key") +
          "\n  opsgenie_api_url: " + genie.url("/global/") +
          "\nroute:\n  receiver: og\nreceivers:\n  - name: og\n    opsgenie_configs:\n"
          "      - api_key_file: " +
          dir.file("own.key") + "\n        api_url: " + genie.url("/own/") + "\n      - {}\n",
      "am.yml");
  INFO((parsed.errors.empty() ? "" : parsed.errors[0].toString()));
  REQUIRE(parsed.config);
  const alerting::Receiver* receiver = parsed.config->receiver("og");
  REQUIRE(receiver != nullptr);
  auto service = openService(fastOptions(dir));
  const auto keysSent = [&](std::size_t from) {
    std::map<std::string, std::string> by_path;
    const auto got = genie.got();
    for (std::size_t i = from; i < got.size(); ++i) {
      by_path[got[i].path] = got[i].headers.find("Authorization")->second;
    }
    return by_path;
  };
  REQUIRE(service->deliver(notificationFor(*receiver, 0)));
  REQUIRE(service->waitIdle(10s));
  CHECK(keysSent(0) ==
        std::map<std::string, std::string>{{"/own/v2/alerts", "GenieKey own-1"},
                                           {"/global/v2/alerts", "GenieKey global-1"}});
  // Rotated on disk: the next notifications carry the new keys, and a message waiting in the
  // outbox (OpsGenie down) holds where the key is, not the key.
  dir.write("own.key", "own-2\n");
  dir.write("global.key", "global-2\n");
  genie.status = 503;
  REQUIRE(service->deliver(notificationFor(*receiver, 1)));
  REQUIRE(test::eventually(5s, [&] { return genie.attempts().size() >= 4; }));
  REQUIRE(filesIn(dir.file("outbox")) == 2);
  for (const auto& e : std::filesystem::directory_iterator(dir.file("outbox"))) {
    const std::string saved = test::readFile(e.path().string());
    CHECK(saved.find("own-") == std::string::npos);
    CHECK(saved.find("global-") == std::string::npos);
  }
  genie.status = 200;
  REQUIRE(service->waitIdle(10s));
  CHECK(keysSent(2) ==
        std::map<std::string, std::string>{{"/own/v2/alerts", "GenieKey own-2"},
                                           {"/global/v2/alerts", "GenieKey global-2"}});
}

TEST_CASE("Notifier: https with certificates verified against a configured CA",
          "[exporters][tls]") {
  test::TempDir dir;
  const auto certs = test::makeTestCertificates(dir);
  TestReceiver hook(certs.cert, certs.key);

  // Not trusted by the system's CAs: retried, never sent in the clear.
  const auto untrusted = webhookTo(hook.url("/untrusted"));
  test::TempDir dir1;
  auto service1 = openService(fastOptions(dir1));
  REQUIRE(service1->deliver(notificationFor(untrusted)));
  // Waited for rather than slept on: a handshake under a sanitizer on a busy machine can take
  // longer than any fixed pause.
  CHECK(test::eventually(10s, [&] {
    return metric(*service1, "vigil_notifications_total",
                  {{"notifier", "webhook"}, {"result", "retry"}}) >= 1;
  }));
  CHECK(service1->pending() == 1);
  service1->shutdown();

  const auto trusted = receiverWith([&](alerting::Receiver& r) {
    alerting::WebhookConfig w{hook.url("/trusted"), true, 0, {}};
    w.http.ca_file = certs.ca;
    r.webhooks.push_back(w);
  });
  test::TempDir dir2;
  auto service2 = openService(fastOptions(dir2));
  REQUIRE(service2->deliver(notificationFor(trusted)));
  REQUIRE(service2->waitIdle(10s));
  REQUIRE(hook.got().size() == 1);
  CHECK(hook.got()[0].path == "/trusted");
}

TEST_CASE("Alertmanager forwarder: Prometheus's resend semantics, batches to every target",
          "[exporters][forwarder]") {
  TestReceiver am1;
  TestReceiver am2;
  AlertmanagerForwarderOptions options;
  options.max_batch = 2;
  AlertmanagerForwarder forwarder(options);
  forwarder.setTargets({{am1.url(""), Duration(2000), {}}, {am2.url(""), Duration(2000), {}}});
  const int64_t t0 = 1787392800000;
  auto alert = [&](const std::string& name, int64_t ends_at) {
    alerting::Alert a;
    a.labels = {{"alertname", name}, {"node", "n1"}};
    a.annotations = {{"summary", "s"}};
    a.starts_at = t0;
    a.ends_at = ends_at;
    return a;
  };
  const int64_t lease = 4 * 60 * 1000;
  forwarder.forward({alert("A", t0 + lease), alert("B", t0 + lease), alert("C", t0 + lease)}, t0);
  REQUIRE(forwarder.waitIdle(5s));
  // Three alerts in batches of two, to both Alertmanagers, at their v2 API.
  REQUIRE(am1.got().size() == 2);
  REQUIRE(am2.got().size() == 2);
  CHECK(am1.got()[0].path == "/api/v2/alerts");
  const auto first = json::parse(am1.got()[0].body);
  REQUIRE(first.size() == 2);
  CHECK(first[0]["labels"] == json{{"alertname", "A"}, {"node", "n1"}});
  CHECK(first[0]["startsAt"] == "2026-08-22T10:00:00Z");
  CHECK(first[0]["endsAt"] == "2026-08-22T10:04:00Z");

  // The next evaluation 15 s later: nothing new, nothing sent.
  forwarder.forward({alert("A", t0 + 15000 + lease)}, t0 + 15000);
  REQUIRE(forwarder.waitIdle(5s));
  CHECK(am1.got().size() == 2);
  // Resolved: sent at once, with its end.
  forwarder.forward({alert("A", t0 + 20000)}, t0 + 20000);
  REQUIRE(forwarder.waitIdle(5s));
  // A minute after it was last sent, a firing alert goes again with a renewed lease.
  forwarder.forward({alert("B", t0 + 61000 + lease)}, t0 + 61000);
  REQUIRE(forwarder.waitIdle(5s));
  REQUIRE(am1.got().size() == 4);
  CHECK(json::parse(am1.got()[2].body)[0]["labels"]["alertname"] == "A");
  CHECK(json::parse(am1.got()[2].body)[0]["endsAt"] == "2026-08-22T10:00:20Z");
  CHECK(json::parse(am1.got()[3].body)[0]["labels"]["alertname"] == "B");

  // An Alertmanager that refuses: counted, not retried (the next resend covers it).
  am2.status = 500;
  forwarder.forward({alert("D", t0 + 70000 + lease)}, t0 + 70000);
  REQUIRE(forwarder.waitIdle(5s));
  MetricBatch batch;
  forwarder.appendStats(batch);
  auto value = [&](const std::string& name, const std::string& url) {
    for (const auto& f : batch.families()) {
      for (const auto& s : f.samples) {
        if (f.name == name && s.labels == LabelSet{{"alertmanager", url}}) {
          return s.value;
        }
      }
    }
    return -1.0;
  };
  CHECK(value("vigil_alertmanager_notifications_sent_total", am1.url("")) == 6);
  CHECK(value("vigil_alertmanager_notifications_sent_total", am2.url("")) == 5);
  CHECK(value("vigil_alertmanager_notifications_errors_total", am2.url("")) == 1);
  CHECK(am2.attempts().size() == 5);
}

TEST_CASE("Notifier: a receiver that trickles its answer is cut off at the total timeout",
          "[exporters][outbox]") {
  httplib::Server slow;
  std::atomic<int> requests{0};
  slow.Post("/hook", [&](const httplib::Request&, httplib::Response& res) {
    ++requests;
    // One byte every 200 ms for 6 s: every read is quick, the whole answer is not.
    res.set_chunked_content_provider("text/plain", [](size_t offset, httplib::DataSink& sink) {
      if (offset >= 30) {
        sink.done();
        return true;
      }
      std::this_thread::sleep_for(200ms);
      return sink.write("x", 1);
    });
  });
  const int port = slow.bind_to_any_port("127.0.0.1");
  std::thread t([&] { slow.listen_after_bind(); });
  test::TempDir dir;
  auto options = fastOptions(dir);
  options.timeout = 1s;
  options.backoff_initial = 10s;  // one attempt in this test
  options.backoff_max = 10s;
  auto service = openService(options);
  const auto receiver = webhookTo("http://127.0.0.1:" + std::to_string(port) + "/hook");
  const auto started = std::chrono::steady_clock::now();
  REQUIRE(service->deliver(notificationFor(receiver)));
  REQUIRE(test::eventually(10s, [&] {
    return metric(*service, "vigil_notifications_total",
                  {{"notifier", "webhook"}, {"result", "retry"}}) == 1;
  }));
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(took < 3s);  // not the 6 s the receiver takes
  CHECK(service->pending() == 1);
  service->shutdown();
  slow.stop();
  t.join();
}

TEST_CASE("Slack: receivers' templates run the named templates of the configuration's files",
          "[exporters][slack][template]") {
  vigil::test::TempDir dir;
  std::filesystem::create_directories(dir.file("templates"));
  dir.write("templates/slack.tmpl",
            R"({{ define "myorg.title" }}[{{ .Status | toUpper }}:{{ len .Alerts.Firing }}] )"
            R"({{ .CommonLabels.alertname }}{{ end }})"
            "\n"
            R"({{ define "myorg.text" }}{{ range .Alerts }}{{ .Labels.instance }} since )"
            R"({{ .StartsAt.Format "15:04" }}{{ end }}{{ end }})");
  // Relative globs are read from the configuration file's directory, as Alertmanager does.
  dir.write("alertmanager.yml", R"(
templates: ['templates/*.tmpl', 'nothing-matches/*.tmpl']
route: {receiver: team.db}
receivers:
  - name: team.db
    slack_configs:
      - api_url: http://127.0.0.1:9/hook
        title: '{{ template "myorg.title" . }}'
        text: '{{ template "myorg.text" . }}'
)");
  auto loaded = alerting::loadAlertingConfigFile(dir.file("alertmanager.yml"));
  REQUIRE(loaded.errors.empty());
  REQUIRE(loaded.config->template_library != nullptr);
  auto config = std::make_shared<const alerting::AlertingConfig>(std::move(*loaded.config));
  alerting::Notification n = notification();
  n.alerts.pop_back();  // one firing alert
  n.config = config;
  const auto body = json::parse(slackPayload(n, config->receivers[0].slack[0], ""));
  CHECK(body["text"] == "[FIRING:1] DiskFull");
  CHECK(body["attachments"][0]["blocks"][1]["text"]["text"] == "a since 10:00");

  // A template file that does not parse makes the configuration invalid, naming the file.
  dir.write("templates/broken.tmpl", R"({{ define "half" }}{{ .Status )");
  auto broken = alerting::loadAlertingConfigFile(dir.file("alertmanager.yml"));
  REQUIRE_FALSE(broken.config);
  REQUIRE(broken.errors.size() == 1);
  CHECK(broken.errors[0].message.find("broken.tmpl") != std::string::npos);
  CHECK(broken.errors[0].file == dir.file("alertmanager.yml"));
  CHECK(broken.errors[0].line == 2);  // the templates list
}
