// Escalation policies on an injected clock: levels, hours, repeats with back-off,
// acknowledgements of groups and alerts, resolution, reload and restart.
#include <catch2/catch.hpp>

#include "vigil/alerting/escalation.h"
#include "vigil/alerting/silences.h"

using namespace vigil;
using namespace vigil::alerting;

namespace {

constexpr int64_t kMinute = 60 * 1000;
// Wednesday 2026-08-19 10:00 UTC: inside business hours.
constexpr int64_t kT0 = 1787133600000;

std::shared_ptr<const AlertingConfig> config(const std::string& policies,
                                             const std::string& route_policy = "page") {
  auto r = parseAlertingConfig("route:\n  receiver: team\n  escalation_policy: " + route_policy +
                                   R"(
receivers:
  - name: team
  - name: primary
  - name: secondary
  - name: manager
time_intervals:
  - name: business-hours
    time_intervals:
      - weekdays: ['monday:friday']
        times: [{start_time: '09:00', end_time: '17:00'}]
escalation_policies:
)" + policies,
                               "am.yml");
  INFO((r.errors.empty() ? "" : r.errors[0].toString()));
  REQUIRE(r.config);
  return std::make_shared<const AlertingConfig>(std::move(*r.config));
}

const char* kPolicy = R"(  - name: page
    levels:
      - receivers: [team]
        escalate_after: 10m
      - receivers: [primary]
        escalate_after: 15m
      - receivers: [secondary, manager]
        escalate_after: 20m
    repeat: 2
    repeat_max_wait: 30m
)";

Notification notification(const std::string& reason, bool firing = true,
                          const std::string& instance = "a") {
  Notification n;
  n.receiver = "team";
  n.group_key = R"({}:{alertname="DiskFull"})";
  n.group_labels = {{"alertname", "DiskFull"}};
  n.escalation_policy = "page";
  n.reason = reason;
  Alert a;
  a.labels = {{"alertname", "DiskFull"}, {"instance", instance}};
  a.starts_at = kT0;
  a.ends_at = firing ? 0 : kT0 + 1;
  n.alerts = {a};
  return n;
}

using Names = std::vector<std::string>;

Names receiversOf(const std::vector<EscalationAction>& actions) {
  Names out;
  for (const auto& a : actions) {
    out.insert(out.end(), a.receivers.begin(), a.receivers.end());
  }
  return out;
}

}  // namespace

TEST_CASE("Escalation: levels in turn until acknowledged, repeats wait longer each time",
          "[alerting][escalation]") {
  Escalator esc(config(kPolicy));
  CHECK(esc.route(notification("first notification"), kT0) == Names{"team"});
  int64_t next = 0;
  CHECK(esc.advance(kT0 + 9 * kMinute, &next).empty());
  CHECK(next == kT0 + 10 * kMinute);
  auto due = esc.advance(kT0 + 10 * kMinute, &next);
  REQUIRE(due.size() == 1);
  CHECK(due[0].receivers == Names{"primary"});
  CHECK(due[0].reason == "escalated to level 2 of page");
  CHECK(next == kT0 + 25 * kMinute);
  CHECK(receiversOf(esc.advance(kT0 + 25 * kMinute, &next)) == Names{"secondary", "manager"});
  // Later news about the group goes to every level told so far.
  CHECK(esc.route(notification("new alerts added"), kT0 + 26 * kMinute) ==
        Names{"team", "primary", "secondary", "manager"});
  // After the last level: the policy again from the top, first after the last level's 20m,
  // then after 40m capped at 30m.
  CHECK(next == kT0 + 45 * kMinute);
  due = esc.advance(kT0 + 45 * kMinute, &next);
  REQUIRE(due.size() == 1);
  CHECK(due[0].receivers == Names{"team"});
  CHECK(due[0].reason == "repeat 1 of page");
  esc.advance(kT0 + 55 * kMinute, &next);  // primary
  esc.advance(kT0 + 70 * kMinute, &next);  // secondary, manager
  CHECK(next == kT0 + 100 * kMinute);      // 20m × 2 = 40m, capped at 30m
  CHECK(receiversOf(esc.advance(kT0 + 100 * kMinute, &next)) == Names{"team"});
  esc.advance(kT0 + 110 * kMinute, &next);
  esc.advance(kT0 + 125 * kMinute, &next);
  CHECK(next == INT64_MAX);  // two repeats done: the policy has run its course
  CHECK(esc.stats().escalated == 8);

  // Resolution ends it and tells everyone who was told.
  CHECK(esc.route(notification("all alerts resolved", false), kT0 + 130 * kMinute) ==
        Names{"team", "primary", "secondary", "manager"});
  CHECK(esc.list().empty());
}

TEST_CASE("Escalation: a step of the wall clock neither skips a level's wait nor adds to it",
          "[alerting][escalation][clock]") {
  constexpr int64_t kHour = 60 * kMinute;
  SECTION("forward, told") {
    Escalator esc(config(kPolicy));
    esc.route(notification("first notification"), kT0);
    esc.shiftTimes(kHour);  // the clock jumped an hour on at kT0 + 2m
    int64_t next = 0;
    CHECK(esc.advance(kT0 + kHour + 2 * kMinute, &next).empty());
    CHECK(next == kT0 + kHour + 10 * kMinute);
  }
  SECTION("back, told") {
    Escalator esc(config(kPolicy));
    esc.route(notification("first notification"), kT0);
    esc.shiftTimes(-kHour);
    int64_t next = 0;
    CHECK(esc.advance(kT0 - kHour + 2 * kMinute, &next).empty());
    CHECK(next == kT0 - kHour + 10 * kMinute);
  }
  SECTION("back, unnoticed: the wait is the level's from now at most") {
    Escalator esc(config(kPolicy));
    esc.route(notification("first notification"), kT0);
    int64_t next = 0;
    CHECK(esc.advance(kT0 - kHour + 2 * kMinute, &next).empty());
    CHECK(next == kT0 - kHour + 12 * kMinute);
    CHECK(receiversOf(esc.advance(kT0 - kHour + 12 * kMinute, &next)) == Names{"primary"});
  }
}

TEST_CASE("Escalation: acknowledgement stops it, expiry and withdrawal resume it",
          "[alerting][escalation]") {
  Escalator esc(config(kPolicy));
  esc.route(notification("first notification"), kT0);
  esc.advance(kT0 + 10 * kMinute, nullptr);  // primary
  const std::string id = escalationId("team", R"({}:{alertname="DiskFull"})");
  auto acked = esc.acknowledge(id, {"alice", "on it", 0, 0}, kT0 + 11 * kMinute);
  REQUIRE(acked);
  CHECK(acked->receivers == Names{"team", "primary"});  // both hear who took it
  CHECK(acked->acknowledgement->by == "alice");
  CHECK(acked->acknowledgement->expires_at == kT0 + 41 * kMinute);  // default 30m
  int64_t next = 0;
  CHECK(esc.advance(kT0 + 40 * kMinute, &next).empty());  // level 3 was due at 25m
  CHECK(next == kT0 + 41 * kMinute);
  // Reminders stay quiet while acknowledged; news does not.
  CHECK(esc.route(notification("repeat interval elapsed"), kT0 + 30 * kMinute).empty());
  CHECK(esc.route(notification("new alerts added"), kT0 + 30 * kMinute) ==
        Names{"team", "primary"});
  // The acknowledgement expires while still firing: the current level hears again and
  // escalation resumes from there.
  auto due = esc.advance(kT0 + 41 * kMinute, &next);
  REQUIRE(due.size() == 1);
  CHECK(due[0].receivers == Names{"primary"});
  CHECK(due[0].reason == "acknowledgement expired");
  CHECK(next == kT0 + 56 * kMinute);
  CHECK(receiversOf(esc.advance(kT0 + 56 * kMinute, &next)) == Names{"secondary", "manager"});

  // Acknowledged until resolved, then withdrawn: the current level is told at once.
  REQUIRE(esc.acknowledge(id, {"bob", "", 0, -1}, kT0 + 57 * kMinute));
  CHECK(esc.advance(kT0 + 500 * kMinute, &next).empty());
  auto withdrawn = esc.unacknowledge(id, kT0 + 501 * kMinute);
  REQUIRE(withdrawn);
  CHECK(withdrawn->receivers == Names{"secondary", "manager"});
  CHECK_FALSE(esc.acknowledge("0000000000000000", {"x", "", 0, 0}, kT0));
}

TEST_CASE("Escalation: acknowledging every firing alert of a group stops it",
          "[alerting][escalation]") {
  Escalator esc(config(kPolicy));
  auto n = notification("first notification");
  esc.route(n, kT0);
  esc.acknowledgeAlert(n.alerts[0].fingerprint(), {"carol", "", kT0, 0});
  CHECK(esc.advance(kT0 + 10 * kMinute, nullptr).empty());
  // A second alert in the group nobody acknowledged: escalation resumes.
  auto two = notification("new alerts added");
  two.alerts.push_back(notification("", true, "b").alerts[0]);
  esc.route(two, kT0 + 11 * kMinute);
  CHECK(receiversOf(esc.advance(kT0 + 11 * kMinute, nullptr)) == Names{"primary"});
}

TEST_CASE("Escalation: a level outside its hours is skipped", "[alerting][escalation]") {
  Escalator esc(config(R"(  - name: page
    levels:
      - receivers: [team]
        escalate_after: 10m
        active_time_intervals: [business-hours]
      - receivers: [primary]
)"));
  // 10:00 on a Wednesday: the team channel.
  CHECK(esc.route(notification("first notification"), kT0) == Names{"team"});
  esc.route(notification("all alerts resolved", false), kT0 + 1);
  // 22:00: straight to the on-call.
  CHECK(esc.route(notification("first notification"), kT0 + 12 * 60 * kMinute) == Names{"primary"});
}

TEST_CASE("Escalation: state survives a restart and a reload", "[alerting][escalation]") {
  auto cfg = config(kPolicy);
  Escalator esc(cfg);
  auto n = notification("first notification");
  esc.route(n, kT0);
  esc.advance(kT0 + 10 * kMinute, nullptr);
  esc.acknowledgeAlert(123, {"dave", "", kT0, 0});
  Escalator restarted(cfg);
  restarted.restore(esc.list(), esc.alertAcks());
  int64_t next = 0;
  CHECK(receiversOf(restarted.advance(kT0 + 25 * kMinute, &next)) == Names{"secondary", "manager"});
  CHECK(restarted.alertAcks().count(123) == 1);
  // A reload without the policy ends its escalations.
  restarted.reconfigure(config(R"(  - name: other
    levels:
      - receivers: [team]
)",
                               "other"));
  CHECK(restarted.list().empty());
}

TEST_CASE("Escalation policies: configuration errors name the field", "[alerting][config]") {
  auto err = [](const std::string& policies) {
    auto r = parseAlertingConfig(
        "route:\n  receiver: a\nreceivers:\n  - name: a\nescalation_policies:\n" + policies,
        "am.yml");
    REQUIRE_FALSE(r.errors.empty());
    return r.errors[0].toString();
  };
  CHECK(err("  - name: p\n    levels:\n      - receivers: [nobody]\n") ==
        "am.yml:8:20: escalation_policies[0].levels[0].receivers: undefined receiver \"nobody\" "
        "used in escalation policy");
  CHECK(err("  - name: p\n    levels:\n      - receivers: [a]\n      - receivers: [a]\n") ==
        "am.yml:8:9: escalation_policies[0].levels[0].escalate_after: every level but the last "
        "needs escalate_after");
  CHECK(err("  - name: p\n    repeat: 12\n    levels:\n      - receivers: [a]\n") ==
        "am.yml:7:13: escalation_policies[0].repeat: expected a number of repeats from 0 to 9");
  CHECK(err("  - name: p\n    levels: []\n") ==
        "am.yml:7:13: escalation_policies[0].levels: an escalation policy needs at least one "
        "level");
  auto route = parseAlertingConfig(
      "route:\n  receiver: a\n  escalation_policy: nope\nreceivers:\n  - name: a\n", "am.yml");
  REQUIRE_FALSE(route.errors.empty());
  CHECK(route.errors[0].toString() ==
        "am.yml:3:22: route.escalation_policy: undefined escalation policy \"nope\" used in route");
}

TEST_CASE("Escalation policies: named by a receiver when the route names none",
          "[alerting][escalation]") {
  auto r = parseAlertingConfig(R"(route:
  receiver: oncall
  group_wait: 0s
receivers:
  - name: oncall
    escalation_policy: page
  - name: primary
escalation_policies:
  - name: page
    levels:
      - receivers: [oncall]
        escalate_after: 5m
      - receivers: [primary]
)",
                               "am.yml");
  REQUIRE(r.config);
  auto config = std::make_shared<const AlertingConfig>(std::move(*r.config));
  struct Sink : NotificationSink {
    std::vector<Notification> sent;
    bool deliver(const Notification& n) override {
      sent.push_back(n);
      return true;
    }
  } sink;
  AlertStore store;
  Silences silences;
  Dispatcher d(config, store, silences, &sink);
  Alert a;
  a.labels = {{"alertname", "X"}};
  a.starts_at = kT0;
  a.ends_at = kT0 + 60 * kMinute;
  a.updated_at = kT0;
  store.put(a, kT0);
  d.add(a, kT0);
  d.advance(kT0 + 1);
  REQUIRE(sink.sent.size() == 1);
  CHECK(sink.sent[0].escalation_policy == "page");

  auto bad = parseAlertingConfig(
      "route:\n  receiver: a\nreceivers:\n  - name: a\n    escalation_policy: nope\n", "am.yml");
  REQUIRE_FALSE(bad.errors.empty());
  CHECK(bad.errors[0].toString() ==
        "am.yml:5:24: receivers[0].escalation_policy: undefined escalation policy \"nope\" used in "
        "receiver");
}
