#pragma once
// Flap damping: an alert that changes between firing and resolved again and again is held
// firing while it flaps, so its receivers get one notification instead of one per flip
// (Alertmanager #3048; Netdata damps with growing delays, Prometheus with keep_firing_for).
// An alert is flapping once it changed state `threshold` times within `window`; while
// flapping its resolution is held until `hold` has passed without a change, and it carries
// the annotation `flapping` saying so.
//
// Most alerts never change state, and a storm of new alerts must not pay for a second table:
// the state an alert was last received in comes from the alert store, and the damper keeps a
// history only for alerts that have changed state.

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "vigil/alerting/alert.h"
#include "vigil/alerting/config.h"

namespace vigil::alerting {

class FlapDamper {
 public:
  explicit FlapDamper(FlapSettings settings = {}) : settings_(settings) {}
  void configure(FlapSettings settings) { settings_ = settings; }

  /// Looks at an incoming alert (fingerprint `fp`) at `now`, before it is stored; `stored` is
  /// what the alert store holds for it (nullopt: nothing). While it flaps, a resolution is
  /// held: its end moves to the end of the hold. Returns whether the alert is flapping.
  bool apply(Alert& alert, uint64_t fp, const std::optional<AlertStore::Times>& stored,
             int64_t now);
  /// Alerts flapping at `now`.
  std::size_t flapping(int64_t now) const;
  /// Resolutions held back so far.
  uint64_t held() const { return held_; }
  /// Alerts with a history of state changes.
  std::size_t tracked() const { return history_.size(); }
  /// Forgets alerts that have not been seen for a window and a hold.
  void collect(int64_t now);

 private:
  struct History {
    // Per alert, so small: most alerts never change state and hold no change times (a deque
    // would allocate its first block even when empty).
    std::vector<int64_t> changes;  // within the window, oldest first
    int64_t last_seen = 0;
    bool firing = false;  // as last received (a held resolution is not firing)
  };
  bool isFlapping(const History& h) const;

  FlapSettings settings_;
  std::unordered_map<uint64_t, History> history_;
  uint64_t held_ = 0;
};

}  // namespace vigil::alerting
