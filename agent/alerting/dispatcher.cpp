// Grouping, muting and the notification log, with Alertmanager 0.25's timing.
#include "vigil/alerting/dispatcher.h"

#include <algorithm>
#include <climits>
#include <iterator>

namespace vigil::alerting {

namespace {

// The order Alertmanager gives a notification's alerts (its AlertSlice): by the job label, then
// the instance label (an alert without one after those with it), then the label sets (fewer
// labels first, then the values of the names in order). Templates and payloads list them so.
bool alertmanagerOrder(const Alert& x, const Alert& y) {
  auto find = [](const LabelSet& labels, std::string_view name) -> const std::string* {
    for (const auto& l : labels) {
      if (l.name == name) {
        return &l.value;
      }
    }
    return nullptr;
  };
  for (const std::string_view key : {"job", "instance"}) {
    const std::string* a = find(x.labels, key);
    const std::string* b = find(y.labels, key);
    if (a == nullptr && b == nullptr) {
      continue;
    }
    if (a == nullptr || b == nullptr) {
      return b == nullptr;
    }
    if (*a != *b) {
      return *a < *b;
    }
  }
  if (x.labels.size() != y.labels.size()) {
    return x.labels.size() < y.labels.size();
  }
  std::vector<std::string_view> names;
  for (const auto* labels : {&x.labels, &y.labels}) {
    for (const auto& l : *labels) {
      names.push_back(l.name);
    }
  }
  std::sort(names.begin(), names.end());
  for (const std::string_view name : names) {
    const std::string* a = find(x.labels, name);
    if (a == nullptr) {
      return true;
    }
    const std::string* b = find(y.labels, name);
    if (b == nullptr) {
      return false;
    }
    if (*a != *b) {
      return *a < *b;
    }
  }
  return false;
}

// Whether the route groups alerts by this label.
bool groupsBy(const RouteOptions& options, const Label& l) {
  return options.group_by_all ||
         std::binary_search(options.group_by.begin(), options.group_by.end(), l.name);
}

// The labels an alert is grouped by on this route.
LabelSet groupLabelsOf(const Alert& alert, const RouteOptions& options) {
  LabelSet out;
  std::copy_if(alert.labels.begin(), alert.labels.end(), std::back_inserter(out),
               [&](const Label& l) { return groupsBy(options, l); });
  return out;
}

bool isSubset(const std::vector<uint64_t>& small, const std::vector<uint64_t>& big) {
  return std::includes(big.begin(), big.end(), small.begin(), small.end());
}

bool contains(const std::vector<uint64_t>& sorted, uint64_t fp) {
  return std::binary_search(sorted.begin(), sorted.end(), fp);
}

std::string logKey(const std::string& group_key, const std::string& receiver) {
  return group_key + "\x1f" + receiver;  // a separator neither contains, valid UTF-8
}

}  // namespace

std::string groupLabelsString(const LabelSet& labels) {
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) {
      out += ", ";
    }
    out += labels[i].name;
    out += '=';
    out += goQuote(labels[i].value);
  }
  return out + "}";
}

void Inhibitor::observe(const Alert& alert, uint64_t fp) {
  for (const InhibitRule& r : rules_) {
    if (matchesAll(r.source_matchers, alert.labels)) {
      sources_[fp] = alert;
      return;
    }
  }
}

std::optional<uint64_t> Inhibitor::inhibitedBy(const LabelSet& labels, int64_t now) const {
  auto value = [](const LabelSet& ls, const std::string& name) -> std::string_view {
    for (const Label& l : ls) {
      if (l.name == name) {
        return l.value;
      }
    }
    return {};
  };
  for (const InhibitRule& r : rules_) {
    if (!matchesAll(r.target_matchers, labels)) {
      continue;
    }
    // An alert that is also a source can only be inhibited by a source that is not a target,
    // so that two alerts cannot inhibit each other.
    const bool target_is_source = matchesAll(r.source_matchers, labels);
    // Named, not structured bindings: clang 14 (the fuzzers' compiler) cannot capture those.
    for (const auto& entry : sources_) {
      const auto& fp = entry.first;
      const auto& source = entry.second;
      if (source.resolvedAt(now) || !matchesAll(r.source_matchers, source.labels)) {
        continue;
      }
      const bool equal = std::all_of(r.equal.begin(), r.equal.end(), [&](const std::string& n) {
        return value(source.labels, n) == value(labels, n);
      });
      if (!equal || (target_is_source && matchesAll(r.target_matchers, source.labels))) {
        continue;
      }
      return fp;
    }
  }
  return std::nullopt;
}

Dispatcher::Dispatcher(std::shared_ptr<const AlertingConfig> config, const AlertStore& alerts,
                       Silences& silences, NotificationSink* sink)
    : config_(std::move(config)),
      store_(alerts),
      silences_(silences),
      sink_(sink),
      inhibitor_(config_->inhibit_rules) {}

int64_t Dispatcher::add(const Alert& alert, uint64_t fp, int64_t now) {
  std::lock_guard lock(mu_);
  int64_t earliest = INT64_MAX;
  ++stats_.alerts_received;
  inhibitor_.observe(alert, fp);
  for (const Route* route : config_->route.match(alert.labels)) {
    // The group's fingerprint straight from the alert's labels: the group labels themselves
    // are only needed by a new group.
    const RouteOptions& opts = route->options;
    const uint64_t group_fp =
        fingerprintOf(alert.labels, [&](const Label& l) { return groupsBy(opts, l); });
    auto [it, created] = groups_.try_emplace({route, group_fp});
    Group& g = it->second;
    if (created) {
      LabelSet labels = groupLabelsOf(alert, opts);
      g.route = route;
      g.key = route->key + ":" + groupLabelsString(labels);
      g.labels = std::move(labels);
      g.next_flush = now + route->options.group_wait.count();
    }
    g.alerts.insert(fp);
    // An alert that should have been sent already (it started more than group_wait ago, e.g.
    // across a restart) flushes a group that has not flushed yet at once.
    if (!g.has_flushed && alert.starts_at + route->options.group_wait.count() < now) {
      g.next_flush = now;
    }
    earliest = std::min(earliest, g.next_flush);
  }
  return earliest;
}

std::vector<PendingFlush> Dispatcher::collect(int64_t now, int64_t* next_flush) {
  std::lock_guard lock(mu_);
  std::vector<PendingFlush> pending;
  int64_t next = INT64_MAX;
  for (auto it = groups_.begin(); it != groups_.end();) {
    Group& g = it->second;
    // A flush further away than a group ever waits means the wall clock went back; flush now
    // rather than after the step (the notification log keeps this from repeating anything).
    const auto& opts = g.route->options;
    if (g.next_flush - now > std::max(opts.group_wait, opts.group_interval).count()) {
      g.next_flush = now;
    }
    if (g.next_flush <= now) {
      // The cadence is fixed from each tick, as Alertmanager's timer is.
      g.next_flush = now + g.route->options.group_interval.count();
      g.has_flushed = true;
      if (auto p = flush(g, now)) {
        pending.push_back(std::move(*p));
      } else if (g.alerts.empty()) {
        it = groups_.erase(it);
        continue;
      }
    }
    next = std::min(next, g.next_flush);
    ++it;
  }
  stats_.groups = groups_.size();
  if (next_flush != nullptr) {
    *next_flush = next;
  }
  return pending;
}

void Dispatcher::complete(const PendingFlush& p, bool delivered, int64_t now) {
  std::lock_guard lock(mu_);
  if (!delivered) {
    ++stats_.failed;
    return;  // the group keeps everything and tries again at its next flush
  }
  ++stats_.notifications;
  log_[p.log_key] = NotificationLogEntry{p.firing, p.resolved, p.notification.at};
  // The group may be gone (a reload rebuilt the groups): the log is what matters then.
  for (auto it = groups_.begin(); it != groups_.end(); ++it) {
    Group& g = it->second;
    if (g.key == p.notification.group_key && g.route->options.receiver == p.notification.receiver) {
      dropResolved(g, p.snapshot, now);
      if (g.alerts.empty()) {
        groups_.erase(it);
      }
      break;
    }
  }
}

void Dispatcher::shiftTimes(int64_t by_ms) {
  std::lock_guard lock(mu_);
  for (auto& [key, entry] : log_) {
    entry.at += by_ms;
  }
  for (auto& [key, g] : groups_) {
    g.next_flush += by_ms;
  }
}

int64_t Dispatcher::advance(int64_t now) {
  for (const auto& p : collect(now, nullptr)) {
    complete(p, sink_ != nullptr && sink_->deliver(p.notification), now);
  }
  // Completed flushes may have emptied their groups.
  std::lock_guard lock(mu_);
  int64_t next = INT64_MAX;
  for (const auto& [id, g] : groups_) {
    next = std::min(next, g.next_flush);
  }
  stats_.groups = groups_.size();
  return next;
}

void Dispatcher::dropResolved(Group& g, const std::vector<std::pair<uint64_t, int64_t>>& snapshot,
                              int64_t now) {
  // Resolved alerts leave the group once the flush went through, unless they were updated
  // since (Alertmanager's DeleteIfNotModified); so do alerts no longer in the store.
  g.alerts.eraseIf([&](uint64_t fp) {
    // The snapshot is in fingerprint order, like the group.
    auto seen = std::lower_bound(snapshot.begin(), snapshot.end(), fp,
                                 [](const auto& s, uint64_t x) { return s.first < x; });
    const auto current = store_.times(fp);
    return !current || (seen != snapshot.end() && seen->first == fp && current->resolvedAt(now) &&
                        current->updated_at == seen->second);
  });
}

bool Dispatcher::timeMuted(const RouteOptions& opts, int64_t now) const {
  auto in = [&](const std::string& name) {
    const TimeInterval* t = config_->timeInterval(name);
    return t != nullptr && t->contains(now);
  };
  if (!opts.active_time_intervals.empty() &&
      std::none_of(opts.active_time_intervals.begin(), opts.active_time_intervals.end(), in)) {
    return true;
  }
  return std::any_of(opts.mute_time_intervals.begin(), opts.mute_time_intervals.end(), in);
}

std::optional<PendingFlush> Dispatcher::flush(Group& g, int64_t now) {
  const RouteOptions& opts = g.route->options;
  const std::string key = logKey(g.key, opts.receiver);
  const auto previous = log_.find(key);
  const NotificationLogEntry* entry = previous == log_.end() ? nullptr : &previous->second;
  if (timeMuted(opts, now)) {
    // Outside its active times or inside a mute interval the group sends nothing. Resolved
    // alerts leave it, except those the receiver was told were firing (unless the route opts
    // out): their resolution goes out when the group may speak again.
    ++stats_.time_muted;
    g.alerts.eraseIf([&](uint64_t fp) {
      const auto t = store_.times(fp);
      const bool owed = opts.resolved_after_mute && entry != nullptr && contains(entry->firing, fp);
      return !t || (t->resolvedAt(now) && !owed);
    });
    return std::nullopt;
  }

  // What this flush would tell the receiver: unmuted firing alerts, and resolved ones —
  // including muted ones that the receiver was told were firing.
  std::vector<Alert> firing;
  std::vector<Alert> resolved;
  std::vector<uint64_t> firing_fps;
  std::vector<uint64_t> resolved_fps;
  std::vector<uint64_t> held_fps;  // notified as firing, still firing, muted now
  std::vector<std::pair<uint64_t, int64_t>> snapshot;  // fingerprint, updated_at
  for (const uint64_t fp : g.alerts.sorted()) {
    auto stored = store_.get(fp);
    if (!stored) {
      continue;  // collected from the store meanwhile
    }
    snapshot.emplace_back(fp, stored->updated_at);
    Alert a = std::move(*stored);
    const bool is_resolved = a.resolvedAt(now);
    if (!is_resolved) {
      a.ends_at = 0;  // firing alerts go out without an end, as Alertmanager sends them
    }
    const bool inhibited = inhibitor_.mutes(a.labels, now);
    const bool silenced = !inhibited && !silences_.mutes(a.labels, fp, now).empty();
    if (inhibited || silenced) {
      const bool was_notified_firing = entry != nullptr && contains(entry->firing, fp);
      if (!(is_resolved && was_notified_firing && opts.resolved_after_mute)) {
        ++(inhibited ? stats_.inhibited : stats_.silenced);
        if (!is_resolved && was_notified_firing) {
          held_fps.push_back(fp);  // muted now, but the receiver must hear when it resolves
        }
        continue;
      }
      ++stats_.resolved_after_mute;
    }
    (is_resolved ? resolved : firing).push_back(std::move(a));
    (is_resolved ? resolved_fps : firing_fps).push_back(fp);
  }
  // The group was walked in fingerprint order, so the fingerprint lists are sorted. Held alerts
  // count as firing for the log: muting one is not resolving it.
  std::vector<uint64_t> logged_firing;
  std::merge(firing_fps.begin(), firing_fps.end(), held_fps.begin(), held_fps.end(),
             std::back_inserter(logged_firing));
  firing_fps = std::move(logged_firing);

  // The notification log's verdict (Alertmanager's DedupStage.needsUpdate).
  std::string reason;
  if (entry == nullptr) {
    if (!firing_fps.empty()) {
      reason = "first notification";
    }
  } else if (!isSubset(firing_fps, entry->firing)) {
    reason = entry->firing.empty() ? "first notification" : "new alerts added";
  } else if (firing_fps.empty()) {
    if (!entry->firing.empty()) {
      reason = "all alerts resolved";
    }
  } else if (!isSubset(resolved_fps, entry->resolved)) {
    reason = "some alerts resolved";
  } else if (entry->at < now - opts.repeat_interval.count()) {
    reason = "repeat interval elapsed";
  }

  if (!reason.empty() && firing.empty() && resolved.empty()) {
    reason.clear();  // everything to tell is muted: nothing to send, nothing to log
  }
  if (reason.empty()) {
    dropResolved(g, snapshot, now);  // a flush with nothing to say went through
    return std::nullopt;
  }
  PendingFlush p;
  p.log_key = key;
  p.firing = std::move(firing_fps);
  p.resolved = std::move(resolved_fps);
  p.snapshot = std::move(snapshot);
  Notification& n = p.notification;
  n.receiver = opts.receiver;
  n.group_key = g.key;
  n.group_labels = g.labels;
  n.reason = reason;
  n.at = now;
  n.config = config_;
  n.receiver_config = config_->receiver(opts.receiver);
  n.escalation_policy = opts.escalation_policy;
  if (n.escalation_policy.empty() && n.receiver_config != nullptr) {
    n.escalation_policy = n.receiver_config->escalation_policy;
  }
  n.alerts = std::move(firing);
  for (auto& a : resolved) {
    n.alerts.push_back(std::move(a));
  }
  std::stable_sort(n.alerts.begin(), n.alerts.end(), alertmanagerOrder);
  return p;
}

std::vector<Dispatcher::GroupView> Dispatcher::groups() const {
  std::lock_guard lock(mu_);
  std::vector<GroupView> out;
  for (const auto& [id, g] : groups_) {
    GroupView v{g.route->options.receiver, g.key, g.labels, {}, g.next_flush};
    for (const uint64_t fp : g.alerts.sorted()) {
      if (auto a = store_.get(fp)) {
        v.alerts.push_back(std::move(*a));
      }
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<uint64_t> Dispatcher::inhibitedBy(const LabelSet& labels, int64_t now) const {
  std::lock_guard lock(mu_);
  auto fp = inhibitor_.inhibitedBy(labels, now);
  return fp ? std::vector<uint64_t>{*fp} : std::vector<uint64_t>{};
}

DispatcherStats Dispatcher::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::map<std::string, NotificationLogEntry> Dispatcher::notificationLog() const {
  std::lock_guard lock(mu_);
  return log_;
}

void Dispatcher::restoreNotificationLog(std::map<std::string, NotificationLogEntry> log) {
  std::lock_guard lock(mu_);
  log_ = std::move(log);
}

}  // namespace vigil::alerting
