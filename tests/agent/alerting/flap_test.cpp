// Flap damping on an injected clock: the alert stream of a rule that flips every few minutes,
// through the damper, the alert store and the dispatcher, counting what a receiver gets.
#include <catch2/catch.hpp>

#include "vigil/alerting/alert.h"
#include "vigil/alerting/dispatcher.h"
#include "vigil/alerting/flap.h"
#include "vigil/alerting/silences.h"

using namespace vigil;
using namespace vigil::alerting;

namespace {

constexpr int64_t kMin = 60 * 1000;
constexpr int64_t kT0 = 1787133600000;

struct CountingSink : NotificationSink {
  int firing = 0;
  int resolved = 0;
  bool deliver(const Notification& n) override {
    const bool any_firing = std::any_of(n.alerts.begin(), n.alerts.end(),
                                        [](const Alert& a) { return a.ends_at == 0; });
    (any_firing ? firing : resolved) += 1;
    return true;
  }
};

// A rule that fires for 3 minutes and resolves for 3 minutes, for `cycles` cycles, sending
// every minute as Prometheus does (firing with a lease, resolved with its end), then stays
// resolved. Returns what the receiver got.
CountingSink run(bool damping, int cycles) {
  auto parsed = parseAlertingConfig(R"(route:
  receiver: team
  group_wait: 0s
  group_interval: 1m
receivers:
  - name: team
)",
                                    "am.yml");
  REQUIRE(parsed.config);
  auto config = std::make_shared<const AlertingConfig>(std::move(*parsed.config));
  AlertStore store;
  Silences silences;
  CountingSink sink;
  Dispatcher d(config, store, silences, &sink);
  FlapSettings settings;
  settings.enabled = damping;
  FlapDamper damper(settings);
  int64_t resolved_at = 0;
  int64_t fired_at = kT0;
  for (int minute = 0; minute < cycles * 6 + 40; ++minute) {
    const int64_t now = kT0 + minute * kMin;
    const bool firing = minute < cycles * 6 && minute % 6 < 3;
    if (firing && (minute == 0 || resolved_at != 0)) {
      fired_at = now;
      resolved_at = 0;
    } else if (!firing && resolved_at == 0) {
      resolved_at = now;
    }
    Alert a;
    a.labels = {{"alertname", "Flappy"}};
    a.starts_at = fired_at;
    a.ends_at = firing ? now + 4 * kMin : resolved_at;
    a.updated_at = now;
    const uint64_t fp = a.fingerprint();
    damper.apply(a, fp, store.times(fp), now);
    store.put(a, fp, now);
    d.add(a, fp, now);
    d.advance(now + 1);
  }
  return sink;
}

}  // namespace

TEST_CASE("Flap damping: one firing and one resolved notification for a flapping alert",
          "[alerting][flap]") {
  const CountingSink without = run(false, 8);
  const CountingSink with = run(true, 8);
  // Without damping every cycle notifies twice.
  CHECK(without.firing == 8);
  CHECK(without.resolved == 8);
  // With damping: fired, resolved, fired again; the next resolution is the third change and
  // makes it flapping, so it is held firing until it has been resolved for 15 minutes: one
  // resolved notification at the end.
  CHECK(with.firing == 2);
  CHECK(with.resolved == 2);
  INFO("notifications without damping: " << without.firing + without.resolved
                                         << ", with: " << with.firing + with.resolved);
}

TEST_CASE("Flap damping: the held alert says it flaps, and resolves once stable",
          "[alerting][flap]") {
  FlapDamper damper;
  AlertStore store;
  Alert a;
  a.labels = {{"alertname", "X"}};
  const uint64_t fp = a.fingerprint();
  auto send = [&](bool firing, int64_t now) {
    Alert copy = a;
    copy.starts_at = kT0;
    copy.ends_at = firing ? now + 4 * kMin : now - 1;
    copy.updated_at = now;
    const bool flapping = damper.apply(copy, fp, store.times(fp), now);
    Alert stored = copy;
    store.put(stored, fp, now);
    return std::pair{flapping, copy};
  };
  CHECK_FALSE(send(true, kT0).first);
  CHECK_FALSE(send(true, kT0 + kMin / 2).first);
  // No state change yet: the damper keeps nothing of its own for the alert.
  CHECK(damper.tracked() == 0);
  CHECK_FALSE(send(false, kT0 + 1 * kMin).first);
  CHECK(damper.tracked() == 1);
  CHECK_FALSE(send(true, kT0 + 2 * kMin).first);
  auto [flapping, held] = send(false, kT0 + 3 * kMin);
  CHECK(flapping);
  REQUIRE(held.annotations.size() == 1);
  CHECK(held.annotations[0].value == "3 state changes in 30m; held firing until stable for 15m");
  // Resolved: held firing until 15 minutes after the last change.
  CHECK(held.ends_at == kT0 + 18 * kMin);
  auto [still, resolved] = send(false, kT0 + 5 * kMin);
  CHECK(still);
  CHECK(resolved.ends_at == kT0 + 18 * kMin);
  CHECK(damper.held() == 2);
  CHECK(damper.flapping(kT0 + 5 * kMin) == 1);
  // Stable for the hold: the resolution passes.
  auto [after, passed] = send(false, kT0 + 19 * kMin);
  CHECK(passed.ends_at == kT0 + 19 * kMin - 1);
}
