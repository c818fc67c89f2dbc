#pragma once
// From alerts to notifications, as Alertmanager does it: route each alert, group it by the
// route's group_by, flush each group after group_wait and then every group_interval, drop what
// inhibition and silences mute, and use a notification log to decide whether the flush is
// worth a notification (new alerts, resolved ones, or the repeat interval). Time is passed in,
// never read, so the timing is testable without sleeping.
//
// Beyond Alertmanager: an alert that was notified as firing is notified as resolved even if it
// was silenced or inhibited in between (Alertmanager issues #226, #2754).

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vigil/alerting/alert.h"
#include "vigil/alerting/config.h"
#include "vigil/alerting/fingerprint_set.h"
#include "vigil/alerting/silences.h"

namespace vigil::alerting {

/// Alertmanager's form of a label set in group keys: {a="1", b="2"} (Go-quoted values).
std::string groupLabelsString(const LabelSet& labels);

/// Someone taking an escalating group (or one alert): "I am on it".
struct Acknowledgement {
  std::string by;
  std::string comment;
  int64_t at = 0;
  int64_t expires_at = 0;  // 0: until the group resolves
};

struct Notification {
  std::string receiver;
  std::string group_key;  // route key ":" group labels, e.g. {}/{env="prod"}:{alertname="X"}
  LabelSet group_labels;
  std::vector<Alert> alerts;  // firing ones with ends_at 0, resolved ones with their end
  std::string reason;         // "first notification", "new alerts added", ...
  int64_t at = 0;             // when the group was flushed, ms
  /// The route's escalation policy, empty without one.
  std::string escalation_policy;
  /// Set on the notification that tells a receiver the group was acknowledged (PagerDuty's
  /// `acknowledge`); such a notification carries the group's firing alerts.
  std::optional<Acknowledgement> acknowledgement;
  /// The receiver's configuration, kept alive by `config`.
  const Receiver* receiver_config = nullptr;
  std::shared_ptr<const AlertingConfig> config;
};

/// A flush with something to tell, waiting for its delivery: the notification and what the
/// notification log and the group need once it is delivered.
struct PendingFlush {
  Notification notification;
  std::string log_key;
  std::vector<uint64_t> firing;  // fingerprints for the log (held ones included)
  std::vector<uint64_t> resolved;
  std::vector<std::pair<uint64_t, int64_t>> snapshot;  // fingerprint, updated_at, sorted
};

/// Where notifications go (the notifiers). deliver() returns true once the notification is
/// safely handed over; false makes the group try again at its next flush.
class NotificationSink {
 public:
  virtual ~NotificationSink() = default;
  virtual bool deliver(const Notification& n) = 0;
  /// The receivers of the configuration in force, at start and after every reload: a sink
  /// keeps health series for the integrations they use (and for any it has sent to), so that
  /// an agent on every node does not export zeros for integrations nobody configured.
  virtual void receiversChanged(const std::vector<Receiver>& /*receivers*/) {}
  /// The sink's own health metrics.
  virtual void appendStats(MetricBatch& /*out*/) const {}
};

/// Where the rule engine's alerts go besides vigil's own pipeline: other Alertmanagers.
class AlertForwarder {
 public:
  virtual ~AlertForwarder() = default;
  virtual void setTargets(std::vector<AlertmanagerTarget> targets) = 0;
  /// One evaluation's alerts, in Prometheus's form: firing ones with a lease as their end,
  /// resolved ones with their end.
  virtual void forward(const std::vector<Alert>& alerts, int64_t now) = 0;
  virtual void appendStats(MetricBatch& /*out*/) const {}
};

/// Inhibit rules over the alerts seen so far.
class Inhibitor {
 public:
  explicit Inhibitor(std::vector<InhibitRule> rules) : rules_(std::move(rules)) {}
  /// Every alert that arrives may be a source (`fp` is its fingerprint).
  void observe(const Alert& alert, uint64_t fp);
  void observe(const Alert& alert) { observe(alert, alert.fingerprint()); }
  /// The fingerprint of a source that inhibits an alert with these labels at `now` (one that
  /// has not resolved), if any.
  std::optional<uint64_t> inhibitedBy(const LabelSet& labels, int64_t now) const;
  bool mutes(const LabelSet& labels, int64_t now) const {
    return inhibitedBy(labels, now).has_value();
  }

 private:
  std::vector<InhibitRule> rules_;
  std::map<uint64_t, Alert> sources_;  // alerts matching some rule's source matchers, by fp
};

struct DispatcherStats {
  uint64_t alerts_received = 0;
  uint64_t notifications = 0;  // delivered
  uint64_t failed = 0;         // refused by the sink
  uint64_t inhibited = 0;      // alerts left out of a flush
  uint64_t silenced = 0;
  uint64_t resolved_after_mute = 0;  // resolved notifications Alertmanager would not send
  uint64_t time_muted = 0;           // flushes skipped by mute or active time intervals
  std::size_t groups = 0;
};

/// One entry of the notification log: what a receiver was last told about a group.
struct NotificationLogEntry {
  std::vector<uint64_t> firing;    // sorted fingerprints
  std::vector<uint64_t> resolved;  // sorted fingerprints
  int64_t at = 0;
};

class Dispatcher {
 public:
  /// Groups refer to the alerts in `alerts` (the one copy of every alert) by fingerprint.
  /// `sink` is used by advance(); with collect() and complete() the caller delivers.
  Dispatcher(std::shared_ptr<const AlertingConfig> config, const AlertStore& alerts,
             Silences& silences, NotificationSink* sink = nullptr);

  /// Routes a (merged) alert, whose fingerprint is `fp`, into its groups. Returns the earliest
  /// flush time of those groups.
  int64_t add(const Alert& alert, uint64_t fp, int64_t now);
  int64_t add(const Alert& alert, int64_t now) { return add(alert, alert.fingerprint(), now); }
  /// Flushes every group that is due at `now` and delivers through the sink. Returns the time
  /// of the next flush (ms), or INT64_MAX when there are no groups.
  int64_t advance(int64_t now);
  /// The first half of advance(): flushes the due groups and returns the notifications to
  /// deliver, without delivering them, so that a slow receiver holds no lock. `next_flush`
  /// receives the time of the next flush.
  std::vector<PendingFlush> collect(int64_t now, int64_t* next_flush);
  /// The second half: records a delivery (or its failure) in the log and the group.
  void complete(const PendingFlush& flush, bool delivered, int64_t now);

  struct GroupView {
    std::string receiver;
    std::string group_key;
    LabelSet group_labels;
    std::vector<Alert> alerts;
    int64_t next_flush = 0;
  };
  std::vector<GroupView> groups() const;
  /// Why an alert is not notified at `now`: the sources inhibiting it (fingerprints).
  std::vector<uint64_t> inhibitedBy(const LabelSet& labels, int64_t now) const;
  DispatcherStats stats() const;
  std::map<std::string, NotificationLogEntry> notificationLog() const;
  /// Restores the log after a restart, so nothing already notified is notified again.
  void restoreNotificationLog(std::map<std::string, NotificationLogEntry> log);
  /// The wall clock stepped by `by_ms` while no time passed: when each group last notified
  /// moves with it, so that a step forward does not make every repeat_interval elapse.
  void shiftTimes(int64_t by_ms);

 private:
  struct Group {
    const Route* route = nullptr;
    std::string key;
    LabelSet labels;
    // Fingerprints. Hashed: a sorted vector made each new alert of a large group cost a move
    // of the whole group, and an ordered set a walk down a tree of cache misses for every
    // alert received; a flush sorts them, once per group_interval.
    FingerprintSet alerts;
    int64_t next_flush = 0;
    bool has_flushed = false;
  };

  std::optional<PendingFlush> flush(Group& g, int64_t now);
  void dropResolved(Group& g, const std::vector<std::pair<uint64_t, int64_t>>& snapshot,
                    int64_t now);
  bool timeMuted(const RouteOptions& opts, int64_t now) const;

  std::shared_ptr<const AlertingConfig> config_;
  const AlertStore& store_;
  Silences& silences_;
  NotificationSink* sink_;
  Inhibitor inhibitor_;
  mutable std::mutex mu_;
  // By route (two routes can have the same key) and the fingerprint of the group labels.
  std::map<std::pair<const Route*, uint64_t>, Group> groups_;
  std::map<std::string, NotificationLogEntry> log_;  // by group key and receiver
  DispatcherStats stats_;
};

}  // namespace vigil::alerting
