#pragma once
// Silences with Alertmanager's rules (validation, states, update-in-place or expire-and-replace,
// expiry), plus vigil's `expire_on_resolve`: a silence that ends by itself once every alert it
// silenced has resolved.

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vigil/alerting/config.h"

namespace vigil::alerting {

enum class SilenceState { kPending, kActive, kExpired };
const char* silenceStateName(SilenceState s);

struct Silence {
  std::string id;  // a UUID, assigned on creation
  std::vector<LabelMatcher> matchers;
  int64_t starts_at = 0;  // ms
  int64_t ends_at = 0;
  int64_t updated_at = 0;
  std::string created_by;
  std::string comment;
  /// vigil: expire as soon as the alerts this silence has muted have all resolved.
  bool expire_on_resolve = false;
  std::vector<uint64_t> muted;  // fingerprints it has silenced (for expire_on_resolve)

  SilenceState stateAt(int64_t now) const;
  bool matches(const LabelSet& labels) const { return matchesAll(matchers, labels); }
};

class Silences {
 public:
  /// Creates `s`, or updates the silence with s.id: in place when Alertmanager allows it
  /// (same matchers; an active one keeps its start and does not end in the past; a pending
  /// one does not start in the past), otherwise by expiring the old one and creating a new
  /// one. Returns the id of the stored silence, or kInvalidArgument / kNotFound.
  Result<std::string> set(Silence s, int64_t now);
  /// Ends a silence now: an active one ends, a pending one never starts.
  Status expire(const std::string& id, int64_t now);
  std::optional<Silence> get(const std::string& id) const;
  std::vector<Silence> list() const;
  /// No silence held, in any state.
  bool empty() const;
  /// The ids of the active silences matching `labels`; records the alert as muted by them.
  std::vector<std::string> mutes(const LabelSet& labels, uint64_t fp, int64_t now);
  /// The same, without recording anything (for showing alerts' status).
  std::vector<std::string> silencing(const LabelSet& labels, int64_t now) const;
  /// Ends expire_on_resolve silences whose muted alerts are all resolved; `resolved` says if
  /// the alert with a fingerprint is resolved (or gone). Returns how many ended.
  template <typename ResolvedFn>
  std::size_t expireResolved(int64_t now, ResolvedFn&& resolved);
  /// Forgets silences that ended before `cutoff` (Alertmanager keeps them data.retention).
  std::size_t collectExpiredBefore(int64_t cutoff);
  /// Replaces the whole set (restoring persisted state).
  void restore(std::vector<Silence> silences);

 private:
  Status validate(const Silence& s) const;

  mutable std::mutex mu_;
  std::vector<Silence> silences_;
};

template <typename ResolvedFn>
std::size_t Silences::expireResolved(int64_t now, ResolvedFn&& resolved) {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (auto& s : silences_) {
    if (!s.expire_on_resolve || s.muted.empty() || s.stateAt(now) != SilenceState::kActive) {
      continue;
    }
    if (std::all_of(s.muted.begin(), s.muted.end(), resolved)) {
      s.ends_at = now;
      s.updated_at = now;
      ++n;
    }
  }
  return n;
}

}  // namespace vigil::alerting
