#include "vigil/alerting/escalation.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace vigil::alerting {

namespace {

bool firingAlert(const Alert& a) { return a.ends_at == 0; }

bool ackValid(const Acknowledgement& a, int64_t now) {
  return a.expires_at == 0 || a.expires_at > now;
}

void addUnique(std::vector<std::string>& to, const std::vector<std::string>& names) {
  for (const auto& n : names) {
    if (std::find(to.begin(), to.end(), n) == to.end()) {
      to.push_back(n);
    }
  }
}

}  // namespace

std::string escalationId(const std::string& receiver, const std::string& group_key) {
  // FNV-1a 64 over both, with a separator no receiver name contains.
  uint64_t h = 14695981039346656037ULL;
  auto mix = [&](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  };
  mix(receiver);
  mix(std::string_view("\xff", 1));
  mix(group_key);
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Escalator::Escalator(std::shared_ptr<const AlertingConfig> config) : config_(std::move(config)) {}

void Escalator::reconfigure(std::shared_ptr<const AlertingConfig> config) {
  config_ = std::move(config);
  for (auto it = escalations_.begin(); it != escalations_.end();) {
    const EscalationPolicy* p = policyOf(it->second);
    if (p == nullptr) {
      it = escalations_.erase(it);
      continue;
    }
    it->second.level = std::min<int>(it->second.level, static_cast<int>(p->levels.size()) - 1);
    ++it;
  }
}

const EscalationPolicy* Escalator::policyOf(const Escalation& e) const {
  return config_->escalationPolicy(e.policy);
}

int Escalator::firstActiveLevel(const EscalationPolicy& p, int from, int64_t now) const {
  const int last = static_cast<int>(p.levels.size()) - 1;
  for (int k = from; k <= last; ++k) {
    const auto& intervals = p.levels[k].active_time_intervals;
    if (intervals.empty()) {
      return k;
    }
    for (const auto& name : intervals) {
      if (const TimeInterval* ti = config_->timeInterval(name); ti && ti->contains(now)) {
        return k;
      }
    }
  }
  // Every remaining level is outside its hours: the page still has to reach someone, so the
  // last level is notified whatever its hours.
  return last;
}

void Escalator::notifyLevel(Escalation& e, const EscalationPolicy& p, int level,
                            std::vector<std::string>& out) {
  e.level = level;
  addUnique(out, p.levels[level].receivers);
  addUnique(e.notified, p.levels[level].receivers);
}

void Escalator::schedule(Escalation& e, const EscalationPolicy& p, int64_t now) {
  const int last = static_cast<int>(p.levels.size()) - 1;
  if (e.level < last) {
    e.next_at = now + p.levels[e.level].escalate_after.count();
  } else if (e.run < p.repeat) {
    // Each repeat waits longer: the base wait times repeat_backoff per repeat done, capped.
    const double base = static_cast<double>(
        p.repeat_wait.count() > 0 ? p.repeat_wait.count() : p.levels[last].escalate_after.count());
    const double wait = std::min(base * std::pow(p.repeat_backoff, e.run),
                                 static_cast<double>(p.repeat_max_wait.count()));
    e.next_at = now + static_cast<int64_t>(wait);
  } else {
    e.next_at = 0;
  }
}

bool Escalator::acknowledged(const Escalation& e, int64_t now) const {
  if (e.ack && ackValid(*e.ack, now)) {
    return true;
  }
  if (e.firing.empty()) {
    return false;
  }
  return std::all_of(e.firing.begin(), e.firing.end(), [&](uint64_t fp) {
    auto it = alert_acks_.find(fp);
    return it != alert_acks_.end() && ackValid(it->second, now);
  });
}

std::vector<std::string> Escalator::route(const Notification& n, int64_t now) {
  const EscalationPolicy* p = config_->escalationPolicy(n.escalation_policy);
  if (p == nullptr) {
    return {n.receiver};
  }
  const std::string id = escalationId(n.receiver, n.group_key);
  std::vector<uint64_t> firing;
  for (const auto& a : n.alerts) {
    if (firingAlert(a)) {
      firing.push_back(a.fingerprint());
    }
  }
  std::sort(firing.begin(), firing.end());
  auto it = escalations_.find(id);
  if (firing.empty()) {
    // Resolved: everyone who was told hears it, and the escalation ends.
    if (it == escalations_.end()) {
      return p->levels[0].receivers;  // state lost (e.g. a reload): the first level knew
    }
    std::vector<std::string> out = it->second.notified;
    escalations_.erase(it);
    for (const auto& a : n.alerts) {
      alert_acks_.erase(a.fingerprint());
    }
    return out;
  }
  if (it == escalations_.end()) {
    Escalation e;
    e.id = id;
    e.receiver = n.receiver;
    e.group_key = n.group_key;
    e.group_labels = n.group_labels;
    e.policy = p->name;
    e.started_at = now;
    e.firing = std::move(firing);
    std::vector<std::string> out;
    notifyLevel(e, *p, firstActiveLevel(*p, 0, now), out);
    schedule(e, *p, now);
    escalations_.emplace(id, std::move(e));
    return out;
  }
  Escalation& e = it->second;
  e.firing = std::move(firing);
  // While acknowledged, reminders are quiet; news (new or resolved alerts) still goes out.
  if (acknowledged(e, now) && n.reason == "repeat interval elapsed") {
    return {};
  }
  return e.notified;
}

void Escalator::shiftTimes(int64_t by_ms) {
  auto shiftAck = [&](Acknowledgement& a) {
    a.at += by_ms;
    if (a.expires_at != 0) {
      a.expires_at += by_ms;
    }
  };
  for (auto& [id, e] : escalations_) {
    e.started_at += by_ms;
    if (e.next_at != 0) {
      e.next_at += by_ms;
    }
    if (e.ack) {
      shiftAck(*e.ack);
    }
  }
  for (auto& [fp, a] : alert_acks_) {
    shiftAck(a);
  }
}

std::vector<EscalationAction> Escalator::advance(int64_t now, int64_t* next) {
  std::vector<EscalationAction> out;
  int64_t earliest = INT64_MAX;
  for (auto& [id, e] : escalations_) {
    const EscalationPolicy* p = policyOf(e);
    if (p == nullptr) {
      continue;
    }
    if (e.ack && !ackValid(*e.ack, now)) {
      // PagerDuty's acknowledgement timeout: still firing, so the current level hears again.
      e.ack.reset();
      ++stats_.ack_expired;
      EscalationAction a{id, {}, "acknowledgement expired", std::nullopt};
      notifyLevel(e, *p, e.level, a.receivers);
      schedule(e, *p, now);
      out.push_back(std::move(a));
    } else if (acknowledged(e, now)) {
      if (e.ack && e.ack->expires_at != 0) {
        earliest = std::min(earliest, e.ack->expires_at);
      }
      continue;
    } else if (e.next_at != 0 && e.next_at > now) {
      // A step further away than the level's whole wait means the wall clock went back: wait
      // the level's time from now instead of the step's size on top of it.
      Escalation rescheduled = e;
      schedule(rescheduled, *p, now);
      if (rescheduled.next_at != 0 && rescheduled.next_at < e.next_at) {
        e.next_at = rescheduled.next_at;
      }
    } else if (e.next_at != 0 && e.next_at <= now) {
      const int last = static_cast<int>(p->levels.size()) - 1;
      EscalationAction a;
      a.id = id;
      if (e.level < last) {
        const int level = firstActiveLevel(*p, e.level + 1, now);
        notifyLevel(e, *p, level, a.receivers);
        a.reason = "escalated to level " + std::to_string(level + 1) + " of " + p->name;
      } else {
        ++e.run;
        notifyLevel(e, *p, firstActiveLevel(*p, 0, now), a.receivers);
        a.reason = "repeat " + std::to_string(e.run) + " of " + p->name;
      }
      ++stats_.escalated;
      schedule(e, *p, now);
      out.push_back(std::move(a));
    }
    if (e.next_at != 0) {
      earliest = std::min(earliest, e.next_at);
    }
    if (e.ack && e.ack->expires_at != 0) {
      earliest = std::min(earliest, e.ack->expires_at);
    }
  }
  // Alert acknowledgements that expired stop counting by themselves; forget them.
  std::erase_if(alert_acks_, [&](const auto& kv) { return !ackValid(kv.second, now); });
  if (next != nullptr) {
    *next = earliest;
  }
  return out;
}

Result<EscalationAction> Escalator::acknowledge(const std::string& id, Acknowledgement ack,
                                                int64_t now) {
  auto it = escalations_.find(id);
  if (it == escalations_.end()) {
    return Status(StatusCode::kNotFound, "no escalating group with id " + id);
  }
  Escalation& e = it->second;
  const EscalationPolicy* p = policyOf(e);
  ack.at = now;
  if (ack.expires_at == 0 && p != nullptr) {
    ack.expires_at = now + p->ack_timeout.count();
  } else if (ack.expires_at < 0) {
    ack.expires_at = 0;  // explicitly until resolved
  }
  e.ack = ack;
  ++stats_.acknowledged;
  return EscalationAction{id, e.notified, "acknowledged by " + ack.by, ack};
}

Result<EscalationAction> Escalator::unacknowledge(const std::string& id, int64_t now) {
  auto it = escalations_.find(id);
  if (it == escalations_.end()) {
    return Status(StatusCode::kNotFound, "no escalating group with id " + id);
  }
  Escalation& e = it->second;
  EscalationAction a{id, {}, "acknowledgement withdrawn", std::nullopt};
  if (!e.ack) {
    return a;
  }
  e.ack.reset();
  if (const EscalationPolicy* p = policyOf(e); p != nullptr && !acknowledged(e, now)) {
    notifyLevel(e, *p, e.level, a.receivers);
    schedule(e, *p, now);
  }
  return a;
}

void Escalator::acknowledgeAlert(uint64_t fp, Acknowledgement ack) { alert_acks_[fp] = ack; }

bool Escalator::unacknowledgeAlert(uint64_t fp) { return alert_acks_.erase(fp) > 0; }

std::vector<Escalation> Escalator::list() const {
  std::vector<Escalation> out;
  for (const auto& [id, e] : escalations_) {
    out.push_back(e);
  }
  return out;
}

std::optional<Escalation> Escalator::get(const std::string& id) const {
  auto it = escalations_.find(id);
  if (it == escalations_.end()) {
    return std::nullopt;
  }
  return it->second;
}

void Escalator::restore(std::vector<Escalation> escalations,
                        std::map<uint64_t, Acknowledgement> acks) {
  for (auto& e : escalations) {
    if (policyOf(e) != nullptr) {
      const std::string id = e.id;
      escalations_[id] = std::move(e);
    }
  }
  alert_acks_ = std::move(acks);
  reconfigure(config_);
}

}  // namespace vigil::alerting
