#include <catch2/catch.hpp>

#include "vigil/alerting/alert.h"
#include "vigil/alerting/dispatcher.h"
#include "vigil/alerting/silences.h"

using namespace vigil;
using namespace vigil::alerting;

namespace {

constexpr int64_t kSec = 1000;
constexpr int64_t kMin = 60 * kSec;

struct RecordingSink : NotificationSink {
  std::vector<Notification> sent;
  bool accept = true;
  bool deliver(const Notification& n) override {
    if (accept) {
      sent.push_back(n);
    }
    return accept;
  }
};

std::shared_ptr<const AlertingConfig> config(const char* yaml) {
  auto r = parseAlertingConfig(yaml, "am.yml");
  for (const auto& e : r.errors) {
    INFO(e.toString());
  }
  REQUIRE(r.config.has_value());
  return std::make_shared<const AlertingConfig>(std::move(*r.config));
}

constexpr int64_t kLease = -1;

// An alert as received at `now`. ends: kLease for a long lease (a source that keeps sending
// it), 0 for none (Alertmanager then gives it resolve_timeout), or the time it resolved.
// Time 0 means "not given" in the API, so a start at 0 is sent as 1 ms.
Alert firing(LabelSet labels, int64_t start, int64_t now, int64_t ends = kLease) {
  Alert a;
  a.labels = std::move(labels);
  a.starts_at = start == 0 ? 1 : start;
  a.ends_at = ends == kLease ? now + 10 * 3600 * kSec : ends;
  REQUIRE(normaliseIncoming(a, now, 5 * kMin).isOk());
  return a;
}

// Puts `a` into the store and returns what was stored (merged with an earlier version).
Alert stored(AlertStore& store, Alert a, int64_t now) {
  store.put(a, now);
  return a;
}

std::vector<std::string> alertnames(const Notification& n) {
  std::vector<std::string> out;
  for (const auto& a : n.alerts) {
    for (const auto& l : a.labels) {
      if (l.name == "alertname") {
        out.push_back(l.value + (a.ends_at == 0 ? "" : "(resolved)"));
      }
    }
  }
  return out;
}

// A dispatcher with its own alert store, silences and recording sink.
struct Pipeline {
  explicit Pipeline(const char* routing) : d(config(routing), store, silences, &sink) {}
  Silences silences;
  RecordingSink sink;
  AlertStore store;
  Dispatcher d;
};

const char* kSimple = R"(route:
  receiver: team
  group_by: [alertname]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 4h
receivers:
  - name: team
)";

}  // namespace

TEST_CASE("Alerts: fingerprints are prometheus/common's FNV-1a", "[alerting][alerts]") {
  CHECK(fingerprintHex(fingerprint({{"job", "foo"}, {"severity", "warning"}})) ==
        "9266ef3da838ad95");
  CHECK(fingerprintHex(fingerprint({{"job", "foo"}, {"severity", "critical"}})) ==
        "3b15fd163d36582e");
  CHECK(fingerprintHex(fingerprint({{"alertname", "alert1"}, {"severity", "critical"}})) ==
        "0223b772b51c29e1");
  CHECK(fingerprintHex(fingerprint({})) == "cbf29ce484222325");
}

TEST_CASE("Alerts: what the API fills in, and how versions merge", "[alerting][alerts]") {
  Alert a;
  a.labels = {{"severity", "page"}, {"alertname", "X"}, {"empty", ""}};
  REQUIRE(normaliseIncoming(a, 100 * kSec, 5 * kMin).isOk());
  CHECK(a.labels == LabelSet{{"alertname", "X"}, {"severity", "page"}});  // sorted, no empty
  CHECK(a.starts_at == 100 * kSec);
  CHECK(a.ends_at == 100 * kSec + 5 * kMin);
  CHECK(a.timeout);

  Alert bad;
  CHECK(normaliseIncoming(bad, 0, kMin).message() == "at least one label pair required");
  bad.labels = {{"a", "1"}};
  bad.starts_at = 10 * kSec;
  bad.ends_at = 5 * kSec;
  CHECK(normaliseIncoming(bad, 20 * kSec, kMin).message() == "start time must be before end time");

  AlertStore store;
  stored(store, firing({{"alertname", "X"}}, 0, 0, 0), 0);
  // A later send of the same firing alert keeps the first start and extends the lease.
  auto merged = stored(store, firing({{"alertname", "X"}}, 60 * kSec, 60 * kSec, 0), 60 * kSec);
  CHECK(merged.starts_at == 1);
  CHECK(merged.ends_at == 60 * kSec + 5 * kMin);
  // An explicit resolution ends it.
  merged = stored(store, firing({{"alertname", "X"}}, 0, 90 * kSec, 90 * kSec), 90 * kSec);
  CHECK(merged.resolvedAt(90 * kSec));
  // Firing again after it ended is a new occurrence: the start is the new one.
  merged = stored(store, firing({{"alertname", "X"}}, 20 * kMin, 20 * kMin, 0), 20 * kMin);
  CHECK(merged.starts_at == 20 * kMin);
  CHECK_FALSE(merged.resolvedAt(20 * kMin));
  CHECK(store.collectResolvedBefore(20 * kMin) == 0);
}

TEST_CASE("Dispatcher: group_wait, group_interval and repeat_interval", "[alerting][dispatch]") {
  Pipeline pipeline(kSimple);
  auto& [silences, sink, store, d] = pipeline;
  d.add(stored(store, firing({{"alertname", "A"}, {"i", "1"}}, 0, 0), 0), 0);
  CHECK(d.advance(29 * kSec) == 30 * kSec);
  CHECK(sink.sent.empty());
  d.advance(30 * kSec);
  REQUIRE(sink.sent.size() == 1);
  CHECK(sink.sent[0].reason == "first notification");
  CHECK(sink.sent[0].group_key == R"({}:{alertname="A"})");
  CHECK(sink.sent[0].alerts[0].ends_at == 0);  // firing alerts go out without an end

  // A new alert in an existing group waits for the next group_interval tick.
  d.add(stored(store, firing({{"alertname", "A"}, {"i", "2"}}, kMin, kMin, 20 * 3600 * kSec), kMin),
        kMin);
  CHECK(d.advance(5 * kMin) == 30 * kSec + 5 * kMin);
  CHECK(sink.sent.size() == 1);
  d.advance(30 * kSec + 5 * kMin);
  REQUIRE(sink.sent.size() == 2);
  CHECK(sink.sent[1].reason == "new alerts added");
  CHECK(sink.sent[1].alerts.size() == 2);

  // Nothing new: nothing sent, until the repeat interval, checked only on ticks.
  int64_t t = 30 * kSec + 5 * kMin;
  const int64_t last = t;
  while (sink.sent.size() == 2) {
    t = d.advance(t);
  }
  CHECK(sink.sent[2].reason == "repeat interval elapsed");
  CHECK(sink.sent[2].at > last + 4 * 3600 * kSec);
  CHECK(sink.sent[2].at <= last + 4 * 3600 * kSec + 5 * kMin);
}

TEST_CASE("Dispatcher: a notification lists its alerts in Alertmanager's order",
          "[alerting][dispatch]") {
  // By job, then instance (an alert with the label before one without), then the label sets:
  // fewer labels first, then the values of the names in order (Alertmanager 0.25 sends these six
  // in this order).
  Pipeline pipeline(kSimple);
  auto& [silences, sink, store, d] = pipeline;
  const std::vector<LabelSet> arrivals = {
      {{"alertname", "A"}, {"zone", "b"}},
      {{"alertname", "A"}, {"instance", "b"}},
      {{"alertname", "A"}, {"zone", "a"}},
      {{"alertname", "A"}},
      {{"alertname", "A"}, {"instance", "a"}, {"job", "z"}},
      {{"alertname", "A"}, {"job", "y"}},
  };
  for (const auto& labels : arrivals) {
    d.add(stored(store, firing(labels, 0, 0), 0), 0);
  }
  d.advance(30 * kSec);
  REQUIRE(sink.sent.size() == 1);
  std::vector<LabelSet> order;
  for (const auto& a : sink.sent[0].alerts) {
    order.push_back(a.labels);
  }
  const std::vector<LabelSet> expected = {
      {{"alertname", "A"}, {"job", "y"}},
      {{"alertname", "A"}, {"instance", "a"}, {"job", "z"}},
      {{"alertname", "A"}, {"instance", "b"}},
      {{"alertname", "A"}},
      {{"alertname", "A"}, {"zone", "a"}},
      {{"alertname", "A"}, {"zone", "b"}},
  };
  CHECK(order == expected);
}

TEST_CASE("Dispatcher: resolution, and alerts that end inside group_wait", "[alerting][dispatch]") {
  Pipeline pipeline(kSimple);
  auto& [silences, sink, store, d] = pipeline;
  d.add(stored(store, firing({{"alertname", "A"}, {"i", "1"}}, 0, 0), 0), 0);
  d.add(stored(store, firing({{"alertname", "A"}, {"i", "2"}}, 0, 0), 0), 0);
  d.advance(30 * kSec);
  REQUIRE(sink.sent.size() == 1);
  // i=1 resolves: "some alerts resolved", with its end.
  d.add(stored(store, firing({{"alertname", "A"}, {"i", "1"}}, 0, kMin, kMin), kMin), kMin);
  d.advance(30 * kSec + 5 * kMin);
  REQUIRE(sink.sent.size() == 2);
  CHECK(sink.sent[1].reason == "some alerts resolved");
  // In Alertmanager's order, by labels whatever the status: i=1 before i=2.
  CHECK(alertnames(sink.sent[1]) == std::vector<std::string>{"A(resolved)", "A"});
  // i=2 resolves: "all alerts resolved", and the group is gone after.
  d.add(stored(store, firing({{"alertname", "A"}, {"i", "2"}}, 0, 6 * kMin, 6 * kMin), 6 * kMin),
        6 * kMin);
  CHECK(d.advance(30 * kSec + 10 * kMin) == INT64_MAX);
  REQUIRE(sink.sent.size() == 3);
  CHECK(sink.sent[2].reason == "all alerts resolved");
  CHECK(d.groups().empty());

  // Fires and resolves within group_wait: never notified.
  d.add(stored(store, firing({{"alertname", "B"}}, 20 * kMin, 20 * kMin), 20 * kMin), 20 * kMin);
  d.add(
      stored(store,
             firing({{"alertname", "B"}}, 20 * kMin, 20 * kMin + 10 * kSec, 20 * kMin + 10 * kSec),
             20 * kMin + 10 * kSec),
      20 * kMin + 10 * kSec);
  d.advance(20 * kMin + 30 * kSec);
  CHECK(sink.sent.size() == 3);
}

TEST_CASE("Dispatcher: an alert older than group_wait flushes a new group at once",
          "[alerting][dispatch]") {
  Pipeline pipeline(kSimple);
  auto& [silences, sink, store, d] = pipeline;
  // As after a restart: the alert started 10 minutes ago.
  d.add(stored(store, firing({{"alertname", "A"}}, 0, 10 * kMin), 10 * kMin), 10 * kMin);
  d.advance(10 * kMin);
  CHECK(sink.sent.size() == 1);
}

TEST_CASE("Dispatcher: a refused delivery is retried at the next tick", "[alerting][dispatch]") {
  Pipeline pipeline(kSimple);
  auto& [silences, sink, store, d] = pipeline;
  d.add(stored(store, firing({{"alertname", "A"}}, 0, 0), 0), 0);
  sink.accept = false;
  d.advance(30 * kSec);
  CHECK(d.stats().failed == 1);
  sink.accept = true;
  d.advance(30 * kSec + 5 * kMin);
  REQUIRE(sink.sent.size() == 1);
  CHECK(sink.sent[0].reason == "first notification");
}

TEST_CASE("Dispatcher: inhibition with equal", "[alerting][inhibit]") {
  Pipeline pipeline(R"(route:
  receiver: team
  group_by: ['...']
  group_wait: 0s
  group_interval: 1m
receivers:
  - name: team
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [instance]
)");
  auto& [silences, sink, store, d] = pipeline;
  d.add(
      stored(store,
             firing({{"alertname", "Down"}, {"instance", "a"}, {"severity", "critical"}}, 0, 0), 0),
      0);
  d.add(
      stored(store,
             firing({{"alertname", "Slow"}, {"instance", "a"}, {"severity", "warning"}}, 0, 0), 0),
      0);
  d.add(
      stored(store,
             firing({{"alertname", "Slow"}, {"instance", "b"}, {"severity", "warning"}}, 0, 0), 0),
      0);
  d.advance(0);
  std::vector<std::string> keys;
  for (const auto& n : sink.sent) {
    keys.push_back(n.group_key);
  }
  std::sort(keys.begin(), keys.end());
  CHECK(keys ==
        std::vector<std::string>{R"({}:{alertname="Down", instance="a", severity="critical"})",
                                 R"({}:{alertname="Slow", instance="b", severity="warning"})"});
  CHECK(d.stats().inhibited == 1);
  // The source resolves: the target is notified at its next tick.
  d.add(stored(store,
               firing({{"alertname", "Down"}, {"instance", "a"}, {"severity", "critical"}}, 0, kMin,
                      kMin),
               kMin),
        kMin);
  sink.sent.clear();
  d.advance(kMin);
  keys.clear();
  for (const auto& n : sink.sent) {
    keys.push_back(n.group_key + " " + n.reason);
  }
  std::sort(keys.begin(), keys.end());
  CHECK(keys ==
        std::vector<std::string>{
            R"({}:{alertname="Down", instance="a", severity="critical"} all alerts resolved)",
            R"({}:{alertname="Slow", instance="a", severity="warning"} first notification)"});
}

TEST_CASE("Inhibitor: an alert matching both sides cannot inhibit its own kind",
          "[alerting][inhibit]") {
  InhibitRule rule;
  rule.source_matchers = *parseMatchers(R"(team="db")");
  rule.target_matchers = *parseMatchers(R"(team="db")");
  Inhibitor inhibitor({rule});
  inhibitor.observe(firing({{"alertname", "A"}, {"team", "db"}}, 0, 0));
  CHECK_FALSE(inhibitor.mutes({{"alertname", "B"}, {"team", "db"}}, 0));
}

TEST_CASE("Silences: validation, states, update and expiry", "[alerting][silences]") {
  Silences silences;
  Silence s;
  s.matchers = *parseMatchers(R"(env=~".*")");
  s.starts_at = kMin;
  s.ends_at = 2 * kMin;
  CHECK(silences.set(s, 0).status().message() ==
        "at least one matcher must not match the empty string");
  s.matchers = *parseMatchers(R"(alertname="A")");
  auto id = silences.set(s, 0);
  REQUIRE(id.isOk());
  CHECK(silences.get(*id)->stateAt(0) == SilenceState::kPending);
  CHECK(silences.get(*id)->stateAt(90 * kSec) == SilenceState::kActive);
  CHECK(silences.get(*id)->stateAt(3 * kMin) == SilenceState::kExpired);

  // Extending an active silence keeps its id; changing its matchers replaces it.
  Silence longer = *silences.get(*id);
  longer.ends_at = 10 * kMin;
  CHECK(*silences.set(longer, 90 * kSec) == *id);
  Silence other = longer;
  other.matchers = *parseMatchers(R"(alertname="B")");
  auto new_id = silences.set(other, 100 * kSec);
  REQUIRE(new_id.isOk());
  CHECK(*new_id != *id);
  CHECK(silences.get(*id)->stateAt(101 * kSec) == SilenceState::kExpired);
  CHECK(silences.expire(*new_id, 2 * kMin).isOk());
  CHECK(silences.get(*new_id)->stateAt(2 * kMin + 1) == SilenceState::kExpired);
  CHECK(silences.expire("nope", 0).code() == StatusCode::kNotFound);
}

TEST_CASE("Dispatcher: silenced alerts, and the resolved notification Alertmanager skips",
          "[alerting][silences]") {
  Pipeline pipeline(kSimple);
  auto& [silences, sink, store, d] = pipeline;
  d.add(stored(store, firing({{"alertname", "A"}}, 0, 0), 0), 0);
  d.advance(30 * kSec);
  REQUIRE(sink.sent.size() == 1);

  // Silenced after it was notified as firing...
  Silence s;
  s.matchers = *parseMatchers(R"(alertname=~"A|B")");
  s.starts_at = kMin;
  s.ends_at = 3600 * kSec;
  REQUIRE(silences.set(s, kMin).isOk());
  d.add(stored(store, firing({{"alertname", "B"}}, 2 * kMin, 2 * kMin), 2 * kMin), 2 * kMin);
  d.advance(30 * kSec + 5 * kMin);
  CHECK(sink.sent.size() == 1);  // nothing new to say: A and B are silenced
  // ...and then resolved: the receiver still hears that A resolved.
  d.add(stored(store, firing({{"alertname", "A"}}, 0, 6 * kMin, 6 * kMin), 6 * kMin), 6 * kMin);
  d.advance(30 * kSec + 10 * kMin);
  REQUIRE(sink.sent.size() == 2);
  CHECK(sink.sent[1].reason == "all alerts resolved");
  CHECK(alertnames(sink.sent[1]) == std::vector<std::string>{"A(resolved)"});
  CHECK(d.stats().resolved_after_mute == 1);
  // B was never notified as firing, so its resolution is not notified either.
  d.add(stored(store, firing({{"alertname", "B"}}, 2 * kMin, 11 * kMin, 11 * kMin), 11 * kMin),
        11 * kMin);
  d.advance(30 * kSec + 15 * kMin);
  CHECK(sink.sent.size() == 2);
}

TEST_CASE("Silences: expire_on_resolve ends the silence when its alerts resolve",
          "[alerting][silences]") {
  Silences silences;
  Silence s;
  s.matchers = *parseMatchers(R"(alertname="A")");
  s.starts_at = 0;
  s.ends_at = 3600 * kSec;
  s.starts_at = 1;
  s.expire_on_resolve = true;
  auto id = silences.set(s, 0);
  REQUIRE(id.isOk());
  const LabelSet labels{{"alertname", "A"}};
  CHECK(silences.mutes(labels, fingerprint(labels), kSec).size() == 1);
  CHECK(silences.expireResolved(kMin, [](uint64_t) { return false; }) == 0);
  CHECK(silences.expireResolved(2 * kMin, [](uint64_t) { return true; }) == 1);
  CHECK(silences.get(*id)->stateAt(2 * kMin + 1) == SilenceState::kExpired);
}

namespace {

int64_t utcMs(int year, int month, int day, int hour, int minute) {
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  return static_cast<int64_t>(timegm(&tm)) * 1000;
}

}  // namespace

TEST_CASE("Time intervals: times, weekdays, days of month, months, years, time zones",
          "[alerting][time]") {
  auto cfg = config(R"(route:
  receiver: team
receivers:
  - name: team
time_intervals:
  - name: office
    time_intervals:
      - times: [{start_time: '09:00', end_time: '17:00'}]
        weekdays: ['monday:friday']
        location: Europe/Berlin
  - name: month-end
    time_intervals:
      - days_of_month: ['-1']
  - name: december-2026
    time_intervals:
      - months: [december]
        years: ['2026']
)");
  const TimeInterval& office = *cfg->timeInterval("office");
  // Monday 6 July 2026: Berlin is UTC+2 in summer.
  CHECK(office.contains(utcMs(2026, 7, 6, 7, 0)));         // 09:00 local
  CHECK_FALSE(office.contains(utcMs(2026, 7, 6, 6, 59)));  // 08:59 local
  CHECK_FALSE(office.contains(utcMs(2026, 7, 6, 15, 0)));  // 17:00 local: the end is exclusive
  // Monday 5 January 2026: UTC+1 in winter, so 15:30 UTC is 16:30 local.
  CHECK(office.contains(utcMs(2026, 1, 5, 15, 30)));
  CHECK_FALSE(office.contains(utcMs(2026, 7, 4, 10, 0)));  // a Saturday
  const TimeInterval& month_end = *cfg->timeInterval("month-end");
  CHECK(month_end.contains(utcMs(2026, 2, 28, 12, 0)));
  CHECK_FALSE(month_end.contains(utcMs(2026, 2, 27, 12, 0)));
  CHECK(month_end.contains(utcMs(2024, 2, 29, 0, 0)));  // a leap year's last day
  const TimeInterval& december = *cfg->timeInterval("december-2026");
  CHECK(december.contains(utcMs(2026, 12, 31, 23, 59)));
  CHECK_FALSE(december.contains(utcMs(2025, 12, 31, 23, 59)));
  CHECK_FALSE(december.contains(utcMs(2026, 11, 30, 23, 59)));
}

TEST_CASE("Dispatcher: mute and active time intervals", "[alerting][time]") {
  // Muted on Sundays, and the db route only speaks in 2030.
  Pipeline pipeline(R"(route:
  receiver: team
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
  routes:
    - matchers: ['team="db"']
      receiver: team
      active_time_intervals: [year-2030]
    - matchers: ['team="web"']
      receiver: team
      mute_time_intervals: [sundays]
receivers:
  - name: team
time_intervals:
  - name: sundays
    time_intervals:
      - weekdays: [sunday]
  - name: year-2030
    time_intervals:
      - years: ['2030']
)");
  auto& [silences, sink, store, d] = pipeline;
  const int64_t sunday = utcMs(2026, 7, 5, 23, 0);
  const int64_t monday = utcMs(2026, 7, 6, 1, 0);  // within the alerts' lease
  d.add(stored(store, firing({{"alertname", "A"}, {"team", "web"}}, sunday, sunday), sunday),
        sunday);
  d.add(stored(store, firing({{"alertname", "B"}, {"team", "db"}}, sunday, sunday), sunday),
        sunday);
  d.advance(sunday);
  CHECK(sink.sent.empty());
  CHECK(d.stats().time_muted == 2);
  d.advance(monday);  // web may speak on Monday; db not before 2030
  REQUIRE(sink.sent.size() == 1);
  CHECK(alertnames(sink.sent[0]) == std::vector<std::string>{"A"});
}

TEST_CASE("Dispatcher: a route can opt out of resolved notifications after a mute",
          "[alerting][silences]") {
  Pipeline pipeline(R"(route:
  receiver: team
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1m
  resolved_after_mute: false
receivers:
  - name: team
)");
  auto& [silences, sink, store, d] = pipeline;
  d.add(stored(store, firing({{"alertname", "A"}}, 0, 0), 0), 0);
  d.advance(0);
  REQUIRE(sink.sent.size() == 1);
  Silence s;
  s.matchers = *parseMatchers(R"(alertname="A")");
  s.starts_at = 1;
  s.ends_at = 3600 * kSec;
  REQUIRE(silences.set(s, 1).isOk());
  d.add(stored(store, firing({{"alertname", "A"}}, 0, 2 * kMin, 2 * kMin), 2 * kMin), 2 * kMin);
  d.advance(2 * kMin);
  CHECK(sink.sent.size() == 1);  // as Alertmanager: the silenced resolution is not sent
}
