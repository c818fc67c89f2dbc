#pragma once
// Escalation policies with acknowledgement, after PagerDuty's escalation policies and Grafana
// OnCall's chains: a group whose route names a policy is notified to the policy's first level;
// if nobody acknowledges within the level's `escalate_after`, the next level is notified, and
// after the last level the whole policy runs again (`repeat` times, each wait longer). Every
// later notification of the group (new alerts, resolution) goes to every level notified so
// far; resolution ends the escalation. An acknowledgement (of the group, or of each of its
// firing alerts) stops escalation until it expires or is withdrawn; then the current level is
// notified again and escalation resumes.
//
// Pure logic on a clock passed in, like the dispatcher; not thread-safe (the alerting service
// calls it under its lock).

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vigil/alerting/config.h"
#include "vigil/alerting/dispatcher.h"
#include "vigil/status.h"

namespace vigil::alerting {

/// The escalation of one group (one receiver's group under a policy).
struct Escalation {
  std::string id;  // 16 hex digits, stable for the receiver and group key
  std::string receiver;
  std::string group_key;
  LabelSet group_labels;
  std::string policy;
  int level = 0;  // the level notified last, from 0
  int run = 0;    // 0 the first time through the policy, then each repeat
  int64_t started_at = 0;
  int64_t next_at = 0;                 // the next level or repeat is due; 0: nothing more
  std::vector<std::string> notified;   // receivers told so far, in order
  std::vector<uint64_t> firing;        // the group's firing alerts at its last notification
  std::optional<Acknowledgement> ack;  // of the whole group
};

/// Something the escalator wants sent: `receivers` are told about escalation `id`.
struct EscalationAction {
  std::string id;
  std::vector<std::string> receivers;
  std::string reason;                              // "escalated to level 2 of db-page", ...
  std::optional<Acknowledgement> acknowledgement;  // set for "acknowledged" notifications
};

struct EscalationStats {
  uint64_t escalated = 0;  // level-ups and repeats notified
  uint64_t acknowledged = 0;
  uint64_t ack_expired = 0;
};

/// The id of the escalation of `group_key` for `receiver`.
std::string escalationId(const std::string& receiver, const std::string& group_key);

class Escalator {
 public:
  explicit Escalator(std::shared_ptr<const AlertingConfig> config);
  /// Keeps the escalations whose policy still exists (levels clamped to the new policy).
  void reconfigure(std::shared_ptr<const AlertingConfig> config);

  /// A notification from the dispatcher for a group whose route has a policy: the receivers
  /// to send it to. A first notification starts the escalation at the first level; a
  /// resolution ends it and goes to every level notified; a repeat of an acknowledged group
  /// goes nowhere.
  std::vector<std::string> route(const Notification& n, int64_t now);
  /// What is due at `now`: next levels, repeats, expired acknowledgements. `next` receives the
  /// time of the next one (INT64_MAX when none).
  std::vector<EscalationAction> advance(int64_t now, int64_t* next);

  /// The wall clock stepped by `by_ms` while no time passed: escalation steps and
  /// acknowledgement expiries keep the time they had left.
  void shiftTimes(int64_t by_ms);

  /// Acknowledges a group; without expires_at the policy's ack_timeout applies. Returns the
  /// receivers to tell (every level notified). kNotFound for an unknown id.
  Result<EscalationAction> acknowledge(const std::string& id, Acknowledgement ack, int64_t now);
  /// Withdraws a group's acknowledgement: the current level is notified again.
  Result<EscalationAction> unacknowledge(const std::string& id, int64_t now);
  /// Acknowledges one alert (by fingerprint): a group whose firing alerts are all acknowledged
  /// stops escalating. expires_at 0: until withdrawn or the alert is gone.
  void acknowledgeAlert(uint64_t fp, Acknowledgement ack);
  bool unacknowledgeAlert(uint64_t fp);

  std::vector<Escalation> list() const;
  std::optional<Escalation> get(const std::string& id) const;
  std::map<uint64_t, Acknowledgement> alertAcks() const { return alert_acks_; }
  bool acknowledged(const Escalation& e, int64_t now) const;
  EscalationStats stats() const { return stats_; }
  /// After a restart.
  void restore(std::vector<Escalation> escalations, std::map<uint64_t, Acknowledgement> acks);

 private:
  const EscalationPolicy* policyOf(const Escalation& e) const;
  int firstActiveLevel(const EscalationPolicy& p, int from, int64_t now) const;
  void notifyLevel(Escalation& e, const EscalationPolicy& p, int level,
                   std::vector<std::string>& out);
  void schedule(Escalation& e, const EscalationPolicy& p, int64_t now);

  std::shared_ptr<const AlertingConfig> config_;
  std::map<std::string, Escalation> escalations_;  // by id
  std::map<uint64_t, Acknowledgement> alert_acks_;
  EscalationStats stats_;
};

}  // namespace vigil::alerting
