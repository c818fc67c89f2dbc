#pragma once
// Alerts as Alertmanager keeps them: identified by the FNV-1a fingerprint of their labels,
// active until `ends_at`, merged when the same alert is sent again.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/alerting/fingerprint_map.h"
#include "vigil/metric.h"
#include "vigil/status.h"

namespace vigil::alerting {

/// The fingerprint of the labels whose names `keep` accepts, without copying them out.
template <class Keep>
uint64_t fingerprintOf(const LabelSet& sorted_labels, Keep keep) {
  uint64_t h = 0xcbf29ce484222325ULL;
  auto mix = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h = (h ^ c) * 0x100000001b3ULL;
    }
    h = (h ^ 0xff) * 0x100000001b3ULL;
  };
  for (const Label& l : sorted_labels) {
    if (keep(l)) {
      mix(l.name);
      mix(l.value);
    }
  }
  return h;
}

/// prometheus/common's label-set fingerprint: FNV-1a 64 over name 0xff value 0xff, sorted by
/// name. `{}` is the FNV offset basis.
inline uint64_t fingerprint(const LabelSet& sorted_labels) {
  return fingerprintOf(sorted_labels, [](const Label&) { return true; });
}
/// As Alertmanager prints fingerprints: 16 lowercase hex digits.
std::string fingerprintHex(uint64_t fp);

struct Alert {
  LabelSet labels;        // sorted by name, no empty values
  LabelSet annotations;   // sorted by name
  int64_t starts_at = 0;  // ms since the epoch
  int64_t ends_at = 0;    // ms; 0 only in a flushed copy of a firing alert
  int64_t updated_at = 0;
  std::string generator_url;
  /// ends_at was not given: it is the receive time plus resolve_timeout, and a later explicit
  /// ends_at wins over it.
  bool timeout = false;

  uint64_t fingerprint() const { return alerting::fingerprint(labels); }
  /// Resolved at `now`: it has an end and it is not in the future.
  bool resolvedAt(int64_t now) const { return ends_at != 0 && ends_at <= now; }
};

/// Alertmanager's merge of two versions of one alert (same fingerprint, overlapping in time):
/// the younger one's labels and annotations, the earliest start, and the end as Alertmanager
/// chooses it.
Alert mergeAlerts(const Alert& a, const Alert& b, int64_t now);

/// Makes an alert received over the API (or from the rule engine) complete, as Alertmanager's
/// API does: updated_at = now; a missing start is now (or the end, if only that is given); a
/// missing end is now + resolve_timeout (timeout = true); empty labels are dropped. Returns
/// kInvalidArgument naming what is wrong: no labels, an invalid label name, end before start.
Status normaliseIncoming(Alert& alert, int64_t now, int64_t resolve_timeout_ms);

/// Every alert vigil knows, by fingerprint. Thread-safe. Alerts are kept packed (their labels,
/// annotations and generator URL in one buffer) to stay small when there are many.
class AlertStore {
 public:
  /// Stores `alert`: merged with the version it has if they overlap in time, replacing it if
  /// not (a new occurrence of the alert). `alert` is updated to what was stored. Returns its
  /// fingerprint.
  uint64_t put(Alert& alert, int64_t now) { return put(alert, alert.fingerprint(), now); }
  /// The same, with the fingerprint already computed.
  uint64_t put(Alert& alert, uint64_t fp, int64_t now) {
    return put(alert, fp, now, [](const std::optional<Times>&) {});
  }
  /// The same, calling before_store(what is stored now, or nullopt) first, in the same lookup:
  /// for a step that looks at the stored version and may change `alert` (flap damping).
  template <class BeforeStore>
  uint64_t put(Alert& alert, uint64_t fp, int64_t now, BeforeStore before_store) {
    std::lock_guard lock(mu_);
    auto [stored, fresh] = alerts_.tryEmplace(fp);
    before_store(fresh ? std::nullopt : std::optional<Times>(stored->times));
    store(*stored, fresh, alert, now);
    return fp;
  }
  std::optional<Alert> get(uint64_t fp) const;
  struct Times {
    int64_t starts_at = 0;
    int64_t ends_at = 0;
    int64_t updated_at = 0;
    bool resolvedAt(int64_t now) const { return ends_at != 0 && ends_at <= now; }
  };
  /// An alert's times without unpacking it.
  std::optional<Times> times(uint64_t fp) const;
  std::vector<Alert> list() const;
  /// The wall clock stepped by `by_ms` at `before_ms` (on the old clock) while no time passed:
  /// the alerts still active then keep their age and the time they had left before they
  /// resolve on their own, instead of resolving at once (a step forward) or lingering for the
  /// step (back).
  void shiftActive(int64_t before_ms, int64_t by_ms);
  /// Drops alerts resolved before `cutoff` (Alertmanager's GC); returns how many.
  std::size_t collectResolvedBefore(int64_t cutoff);
  std::size_t size() const;

 private:
  struct Packed {
    Times times;
    bool timeout = false;
    uint16_t labels = 0;
    uint16_t annotations = 0;
    std::string data;  // length-prefixed names and values, then the generator URL
  };
  /// put's work on the entry of `alert` (a new one when `fresh`), under mu_.
  static void store(Packed& stored, bool fresh, Alert& alert, int64_t now);
  static Packed pack(const Alert& a);
  static Alert unpack(const Packed& p);
  /// Whether `p` holds `a`'s labels, annotations and generator URL.
  static bool samePayload(const Packed& p, const Alert& a);

  mutable std::mutex mu_;
  // Every alert received looks its fingerprint up here, most of a storm's alerts to find
  // nothing: a flat index finds nothing in one read.
  FingerprintMap<Packed> alerts_;
};

}  // namespace vigil::alerting
