#include "alerting_service.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include "clock_watch.h"
#include "vigil/atomic_file.h"
#include "vigil/clock.h"
#include "vigil/json_integer.h"
#include "vigil/labels_json.h"
#include "vigil/thread_name.h"

namespace vigil {

namespace {

using json = nlohmann::json;

constexpr int64_t kResolvedRetentionMs = 30 * 60 * 1000;      // Alertmanager's alerts.gc-interval
constexpr int64_t kSilenceRetentionMs = 120LL * 3600 * 1000;  // Alertmanager's data.retention

LabelSet labelsFrom(const json& j) {
  LabelSet out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    out.push_back({it.key(), it.value().get<std::string>()});
  }
  std::sort(out.begin(), out.end());
  return out;
}

json ackStateJson(const alerting::Acknowledgement& a) {
  return {{"by", a.by}, {"comment", a.comment}, {"at", a.at}, {"expires_at", a.expires_at}};
}

alerting::Acknowledgement ackFrom(const json& j) {
  return {j.at("by").get<std::string>(), j.at("comment").get<std::string>(), jsonInteger(j, "at"),
          jsonInteger(j, "expires_at")};
}

std::string describe(const alerting::Notification& n) {
  std::string alerts;
  std::size_t firing = 0;
  for (const auto& a : n.alerts) {
    firing += a.ends_at == 0 ? 1 : 0;
    alerts += (alerts.empty() ? "" : " ") + alerting::groupLabelsString(a.labels) +
              (a.ends_at == 0 ? "" : "(resolved)");
  }
  return "receiver=" + n.receiver + " group=" + n.group_key + " reason=\"" + n.reason +
         "\" firing=" + std::to_string(firing) +
         " resolved=" + std::to_string(n.alerts.size() - firing) + " alerts=[" + alerts + "]";
}

}  // namespace

// Every notification is logged, then handed to the notifiers.
class AlertingService::LogSink : public alerting::NotificationSink {
 public:
  explicit LogSink(std::shared_ptr<alerting::NotificationSink> next) : next_(std::move(next)) {}
  bool deliver(const alerting::Notification& n) override {
    spdlog::warn("notification {}", describe(n));
    return !next_ || next_->deliver(n);
  }
  void receiversChanged(const std::vector<alerting::Receiver>& receivers) override {
    if (next_) {
      next_->receiversChanged(receivers);
    }
  }
  void appendStats(MetricBatch& out) const override {
    if (next_) {
      next_->appendStats(out);
    }
  }

 private:
  std::shared_ptr<alerting::NotificationSink> next_;
};

std::shared_ptr<const alerting::AlertingConfig> defaultAlertingConfig() {
  auto parsed = alerting::parseAlertingConfig(R"(route:
  receiver: log
  group_by: [alertname]
receivers:
  - name: log
)",
                                              "<default alerting>");
  return std::make_shared<const alerting::AlertingConfig>(std::move(*parsed.config));
}

AlertingService::AlertingService(std::shared_ptr<const alerting::AlertingConfig> config,
                                 std::string state_path,
                                 std::shared_ptr<alerting::NotificationSink> notifier)
    : state_path_(std::move(state_path)),
      config_(config ? std::move(config) : defaultAlertingConfig()),
      sink_(std::make_unique<LogSink>(std::move(notifier))),
      escalator_(config_),
      flap_(config_->flap) {
  dispatcher_ = std::make_unique<alerting::Dispatcher>(config_, store_, silences_);
  sink_->receiversChanged(config_->receivers);
}

AlertingService::~AlertingService() { stop(); }

void AlertingService::start() {
  {
    std::lock_guard lock(loop_mu_);
    stopping_ = false;
  }
  thread_ = std::thread([this] {
    nameThisThread("alerting");
    run();
  });
}

void AlertingService::stop() {
  {
    std::lock_guard lock(loop_mu_);
    stopping_ = true;
  }
  loop_cv_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void AlertingService::rebuildDispatcher() {
  auto log = dispatcher_->notificationLog();
  notifications_before_reconfigure_ += dispatcher_->stats().notifications;
  dispatcher_ = std::make_unique<alerting::Dispatcher>(config_, store_, silences_);
  dispatcher_->restoreNotificationLog(std::move(log));
  const int64_t now = unixNowMs();
  for (const auto& a : store_.list()) {
    dispatcher_->add(a, now);
  }
}

void AlertingService::reconfigure(std::shared_ptr<const alerting::AlertingConfig> config) {
  {
    std::lock_guard lock(mu_);
    config_ = config ? std::move(config) : defaultAlertingConfig();
    rebuildDispatcher();
    escalator_.reconfigure(config_);
    flap_.configure(config_->flap);
    sink_->receiversChanged(config_->receivers);
  }
  wakeLoop();  // the rebuilt groups may be due at once
}

void AlertingService::wakeLoop() {
  {
    std::lock_guard lock(loop_mu_);
    wake_ = true;
  }
  loop_cv_.notify_all();
}

std::shared_ptr<const alerting::AlertingConfig> AlertingService::config() const {
  std::lock_guard lock(mu_);
  return config_;
}

int64_t AlertingService::resolveTimeoutMs() const { return config()->resolve_timeout.count(); }

void AlertingService::receive(std::vector<alerting::Alert> alerts, int64_t now) {
  int64_t earliest = INT64_MAX;
  {
    std::lock_guard lock(mu_);
    for (auto& a : alerts) {
      const uint64_t fp = a.fingerprint();
      // One lookup for both: the damper looks at the stored version, then the store merges.
      store_.put(a, fp, now, [&](const std::optional<alerting::AlertStore::Times>& stored) {
        flap_.apply(a, fp, stored, now);
      });
      earliest = std::min(earliest, dispatcher_->add(a, fp, now));
    }
  }
  // Wake the loop only when a group is due before it would wake anyway.
  std::lock_guard lock(loop_mu_);
  if (earliest < next_wake_) {
    wake_ = true;
    loop_cv_.notify_all();
  }
}

void AlertingService::run() {
  int64_t last_gc = unixNowMs();
  ClockWatch clock_watch;
  std::unique_lock loop_lock(loop_mu_);
  while (!stopping_) {
    // While it works, the loop cannot see what arrives: alerts received meanwhile set wake_,
    // and the wait below returns at once.
    next_wake_ = INT64_MAX;
    loop_lock.unlock();
    const int64_t now = unixNowMs();
    const auto step = clock_watch.observe(now, std::chrono::steady_clock::now());
    int64_t next = 0;
    bool nothing_held = false;
    std::vector<alerting::PendingFlush> pending;
    {
      std::lock_guard lock(mu_);
      if (step) {
        // Before anything is flushed on the new clock: a step forward would otherwise resolve
        // every alert at once and repeat every notification, a step back hold them all for
        // the step.
        store_.shiftActive(now - *step, *step);
        dispatcher_->shiftTimes(*step);
        escalator_.shiftTimes(*step);
      }
      pending = dispatcher_->collect(now, &next);
      // Silences set to end with their alerts.
      silences_.expireResolved(now, [&](uint64_t fp) {
        auto t = store_.times(fp);
        return !t || t->resolvedAt(now);
      });
      if (now - last_gc >= 60 * 1000) {
        store_.collectResolvedBefore(now - kResolvedRetentionMs);
        flap_.collect(now);
        silences_.collectExpiredBefore(now - kSilenceRetentionMs);
        last_gc = now;
      }
      nothing_held = store_.size() == 0 && silences_.empty();
    }
    // Deliveries run without the lock: a slow receiver must not hold up the API or the rule
    // engine sending alerts.
    bool delivered = false;
    for (const auto& p : pending) {
      bool ok = true;
      if (p.notification.escalation_policy.empty()) {
        ok = sink_->deliver(p.notification);
      } else {
        std::vector<std::string> receivers;
        {
          std::lock_guard lock(mu_);
          receivers = escalator_.route(p.notification, now);
        }
        ok = deliverTo(p.notification, receivers);
      }
      std::lock_guard lock(mu_);
      dispatcher_->complete(p, ok, unixNowMs());
      delivered = delivered || ok;
    }
    // Escalations due (next levels, repeats, expired acknowledgements) and acknowledgements
    // from the API.
    std::vector<alerting::Notification> escalated;
    {
      std::lock_guard lock(mu_);
      int64_t escalation_next = INT64_MAX;
      auto actions = escalator_.advance(unixNowMs(), &escalation_next);
      next = std::min(next, escalation_next);
      for (auto& a : queued_actions_) {
        actions.push_back(std::move(a));
      }
      queued_actions_.clear();
      for (const auto& a : actions) {
        for (auto& n : notificationsFor(a, unixNowMs())) {
          escalated.push_back(std::move(n));
        }
      }
    }
    for (const auto& n : escalated) {
      // An escalation is sent once: the outbox retries a receiver that is down.
      (void)sink_->deliver(n);
      delivered = true;
    }
    if (delivered) {
      // What was notified is on disk before anything else happens, so a crash now does not
      // notify it again after the restart.
      if (Status st = saveState(); !st.isOk()) {
        spdlog::error("saving alerting state failed error=\"{}\"", st.message());
      }
    }
    loop_lock.lock();
    // Wake for the next flush, a new alert, or at least every second (silences ending with
    // their alerts). With no alert and no silence held nothing comes due by time alone: an
    // alert, a reload or an API call wakes the loop, and it looks once a minute regardless.
    const int64_t longest_wait_ms = nothing_held ? 60 * 1000 : 1000;
    const int64_t wait_ms = std::clamp<int64_t>(next - unixNowMs(), 0, longest_wait_ms);
    next_wake_ = unixNowMs() + wait_ms;
    loop_cv_.wait_for(loop_lock, std::chrono::milliseconds(wait_ms),
                      [&] { return stopping_ || wake_; });
    wake_ = false;
  }
}

bool AlertingService::deliverTo(const alerting::Notification& n,
                                const std::vector<std::string>& receivers) {
  bool ok = true;
  for (const auto& r : receivers) {
    alerting::Notification copy = n;
    copy.receiver = r;
    copy.receiver_config = n.config ? n.config->receiver(r) : nullptr;
    ok = sink_->deliver(copy) && ok;
  }
  return ok;
}

std::vector<alerting::Notification> AlertingService::notificationsFor(
    const alerting::EscalationAction& a, int64_t now) const {
  auto e = escalator_.get(a.id);
  if (!e) {
    return {};
  }
  alerting::Notification base;
  base.group_key = e->group_key;
  base.group_labels = e->group_labels;
  base.reason = a.reason;
  base.at = now;
  base.config = config_;
  base.escalation_policy = e->policy;
  base.acknowledgement = a.acknowledgement;
  for (const uint64_t fp : e->firing) {
    if (auto alert = store_.get(fp); alert && !alert->resolvedAt(now)) {
      alert->ends_at = 0;  // firing, as the dispatcher sends it
      base.alerts.push_back(std::move(*alert));
    }
  }
  if (base.alerts.empty()) {
    return {};  // resolved meanwhile: the dispatcher's resolved notification follows
  }
  std::vector<alerting::Notification> out;
  for (const auto& r : a.receivers) {
    alerting::Notification n = base;
    n.receiver = r;
    n.receiver_config = config_->receiver(r);
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<alerting::Escalation> AlertingService::escalations() const {
  std::lock_guard lock(mu_);
  return escalator_.list();
}

Status AlertingService::acknowledge(const std::string& id, alerting::Acknowledgement ack) {
  {
    std::lock_guard lock(mu_);
    auto action = escalator_.acknowledge(id, std::move(ack), unixNowMs());
    if (!action) {
      return action.status();
    }
    queued_actions_.push_back(std::move(action).value());
  }
  wakeLoop();
  return saveState();
}

Status AlertingService::unacknowledge(const std::string& id) {
  {
    std::lock_guard lock(mu_);
    auto action = escalator_.unacknowledge(id, unixNowMs());
    if (!action) {
      return action.status();
    }
    if (!action->receivers.empty()) {
      queued_actions_.push_back(std::move(action).value());
    }
  }
  wakeLoop();
  return saveState();
}

Status AlertingService::acknowledgeAlert(const std::string& fingerprint,
                                         alerting::Acknowledgement ack) {
  {
    std::lock_guard lock(mu_);
    uint64_t fp = 0;
    auto [end, ec] =
        std::from_chars(fingerprint.data(), fingerprint.data() + fingerprint.size(), fp, 16);
    if (ec != std::errc() || end != fingerprint.data() + fingerprint.size() || !store_.get(fp)) {
      return Status(StatusCode::kNotFound, "no alert with fingerprint " + fingerprint);
    }
    ack.at = unixNowMs();
    escalator_.acknowledgeAlert(fp, std::move(ack));
  }
  wakeLoop();
  return saveState();
}

Status AlertingService::unacknowledgeAlert(const std::string& fingerprint) {
  {
    std::lock_guard lock(mu_);
    uint64_t fp = 0;
    auto [end, ec] =
        std::from_chars(fingerprint.data(), fingerprint.data() + fingerprint.size(), fp, 16);
    if (ec != std::errc() || end != fingerprint.data() + fingerprint.size() ||
        !escalator_.unacknowledgeAlert(fp)) {
      return Status(StatusCode::kNotFound,
                    "no acknowledgement for an alert with fingerprint " + fingerprint);
    }
  }
  wakeLoop();  // escalation may resume at once
  return saveState();
}

std::map<uint64_t, alerting::Acknowledgement> AlertingService::alertAcks() const {
  std::lock_guard lock(mu_);
  return escalator_.alertAcks();
}

std::vector<AlertingService::AlertView> AlertingService::alerts(int64_t now) const {
  std::lock_guard lock(mu_);
  std::vector<AlertView> out;
  for (const auto& a : store_.list()) {
    AlertView v;
    v.alert = a;
    for (const auto* route : config_->route.match(a.labels)) {
      v.receivers.push_back(route->options.receiver);
    }
    v.silenced_by = silences_.silencing(a.labels, now);
    for (uint64_t fp : dispatcher_->inhibitedBy(a.labels, now)) {
      v.inhibited_by.push_back(alerting::fingerprintHex(fp));
    }
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<alerting::Dispatcher::GroupView> AlertingService::groups() const {
  std::lock_guard lock(mu_);
  return dispatcher_->groups();
}

Status AlertingService::saveState() const {
  json state;
  {
    std::lock_guard lock(mu_);
    json alerts = json::array();
    for (const auto& a : store_.list()) {
      alerts.push_back({{"labels", labelsJson(a.labels)},
                        {"annotations", labelsJson(a.annotations)},
                        {"starts_at", a.starts_at},
                        {"ends_at", a.ends_at},
                        {"updated_at", a.updated_at},
                        {"generator_url", a.generator_url},
                        {"timeout", a.timeout}});
    }
    json silences = json::array();
    for (const auto& s : silences_.list()) {
      json matchers = json::array();
      for (const auto& m : s.matchers) {
        matchers.push_back(alerting::matcherString(m));
      }
      silences.push_back({{"id", s.id},
                          {"matchers", matchers},
                          {"starts_at", s.starts_at},
                          {"ends_at", s.ends_at},
                          {"updated_at", s.updated_at},
                          {"created_by", s.created_by},
                          {"comment", s.comment},
                          {"expire_on_resolve", s.expire_on_resolve},
                          {"muted", s.muted}});
    }
    json log = json::object();
    for (const auto& [key, e] : dispatcher_->notificationLog()) {
      log[key] = {{"firing", e.firing}, {"resolved", e.resolved}, {"at", e.at}};
    }
    json escalations = json::array();
    for (const auto& e : escalator_.list()) {
      escalations.push_back({{"id", e.id},
                             {"receiver", e.receiver},
                             {"group_key", e.group_key},
                             {"group_labels", labelsJson(e.group_labels)},
                             {"policy", e.policy},
                             {"level", e.level},
                             {"run", e.run},
                             {"started_at", e.started_at},
                             {"next_at", e.next_at},
                             {"notified", e.notified},
                             {"firing", e.firing},
                             {"ack", e.ack ? ackStateJson(*e.ack) : json()}});
    }
    json alert_acks = json::object();
    for (const auto& [fp, ack] : escalator_.alertAcks()) {
      alert_acks[alerting::fingerprintHex(fp)] = ackStateJson(ack);
    }
    state = {{"alerts", alerts},
             {"silences", silences},
             {"notification_log", log},
             {"escalations", escalations},
             {"alert_acks", alert_acks}};
  }
  // The loop and API handlers save concurrently; one writer at a time keeps them from
  // renaming each other's temporary file away.
  std::lock_guard save_lock(save_mu_);
  return writeFileAtomically(state_path_,
                             state.dump(-1, ' ', false, json::error_handler_t::replace));
}

Status AlertingService::loadState() {
  std::ifstream in(state_path_, std::ios::binary);
  if (!in) {
    return Status::ok();
  }
  try {
    const json state = json::parse(in);
    const int64_t now = unixNowMs();
    std::vector<alerting::Alert> alerts;
    for (const auto& j : state.at("alerts")) {
      alerting::Alert a;
      a.labels = labelsFrom(j.at("labels"));
      a.annotations = labelsFrom(j.at("annotations"));
      a.starts_at = jsonInteger(j, "starts_at");
      a.ends_at = jsonInteger(j, "ends_at");
      a.updated_at = jsonInteger(j, "updated_at");
      a.generator_url = j.at("generator_url").get<std::string>();
      a.timeout = j.at("timeout").get<bool>();
      alerts.push_back(std::move(a));
    }
    std::vector<alerting::Silence> silences;
    for (const auto& j : state.at("silences")) {
      alerting::Silence s;
      s.id = j.at("id").get<std::string>();
      for (const auto& m : j.at("matchers")) {
        auto parsed = alerting::parseMatcher(m.get<std::string>());
        if (!parsed) {
          return invalidArgument(state_path_ + ": silence " + s.id + ": " +
                                 parsed.status().message());
        }
        s.matchers.push_back(std::move(*parsed));
      }
      s.starts_at = jsonInteger(j, "starts_at");
      s.ends_at = jsonInteger(j, "ends_at");
      s.updated_at = jsonInteger(j, "updated_at");
      s.created_by = j.at("created_by").get<std::string>();
      s.comment = j.at("comment").get<std::string>();
      s.expire_on_resolve = j.at("expire_on_resolve").get<bool>();
      s.muted = jsonUnsignedArray(j, "muted");
      silences.push_back(std::move(s));
    }
    std::map<std::string, alerting::NotificationLogEntry> log;
    for (auto it = state.at("notification_log").begin(); it != state.at("notification_log").end();
         ++it) {
      log[it.key()] = {jsonUnsignedArray(it.value(), "firing"),
                       jsonUnsignedArray(it.value(), "resolved"), jsonInteger(it.value(), "at")};
    }
    std::vector<alerting::Escalation> escalations;
    std::map<uint64_t, alerting::Acknowledgement> alert_acks;
    // Written by versions with escalation; older state files have none.
    if (state.contains("escalations")) {
      for (const auto& j : state.at("escalations")) {
        alerting::Escalation e;
        e.id = j.at("id").get<std::string>();
        e.receiver = j.at("receiver").get<std::string>();
        e.group_key = j.at("group_key").get<std::string>();
        e.group_labels = labelsFrom(j.at("group_labels"));
        e.policy = j.at("policy").get<std::string>();
        e.level = static_cast<int>(jsonInteger(j, "level", 0, 1 << 20));
        e.run = static_cast<int>(jsonInteger(j, "run", 0, 1 << 30));
        e.started_at = jsonInteger(j, "started_at");
        e.next_at = jsonInteger(j, "next_at");
        e.notified = j.at("notified").get<std::vector<std::string>>();
        e.firing = jsonUnsignedArray(j, "firing");
        if (!j.at("ack").is_null()) {
          e.ack = ackFrom(j.at("ack"));
        }
        escalations.push_back(std::move(e));
      }
      for (auto it = state.at("alert_acks").begin(); it != state.at("alert_acks").end(); ++it) {
        alert_acks[std::stoull(it.key(), nullptr, 16)] = ackFrom(it.value());
      }
    }
    std::lock_guard lock(mu_);
    escalator_.restore(std::move(escalations), std::move(alert_acks));
    silences_.restore(std::move(silences));
    dispatcher_->restoreNotificationLog(std::move(log));
    for (auto& a : alerts) {
      store_.put(a, now);
      dispatcher_->add(a, now);
    }
    spdlog::info("alerting state restored path={} alerts={} silences={}", state_path_,
                 alerts.size(), silences_.list().size());
    return Status::ok();
  } catch (const std::exception& e) {  // nlohmann's, and jsonInteger's
    return invalidArgument(state_path_ + ": unusable alerting state: " + e.what());
  }
}

void AlertingService::appendStats(MetricBatch& out) const {
  std::lock_guard lock(mu_);
  const auto st = dispatcher_->stats();
  out.addSingle("vigil_alerting_alerts", "Alerts held (firing and recently resolved).",
                MetricType::kGauge, static_cast<double>(store_.size()));
  out.addSingle("vigil_alerting_groups", "Aggregation groups.", MetricType::kGauge,
                static_cast<double>(st.groups));
  out.addSingle("vigil_alerting_notifications_total", "Notifications delivered.",
                MetricType::kCounter,
                static_cast<double>(notifications_before_reconfigure_ + st.notifications));
  auto& muted = out.family("vigil_alerting_muted_total",
                           "Alerts left out of a group's flush, by why.", MetricType::kCounter);
  MetricBatch::add(muted, {{"reason", "inhibited"}}, static_cast<double>(st.inhibited));
  MetricBatch::add(muted, {{"reason", "silenced"}}, static_cast<double>(st.silenced));
  out.addSingle("vigil_alerting_resolved_after_mute_total",
                "Resolved notifications for alerts muted after they were notified firing.",
                MetricType::kCounter, static_cast<double>(st.resolved_after_mute));
  std::size_t active = 0;
  const int64_t now = unixNowMs();
  for (const auto& s : silences_.list()) {
    active += s.stateAt(now) == alerting::SilenceState::kActive ? 1 : 0;
  }
  out.addSingle("vigil_alerting_silences_active", "Active silences.", MetricType::kGauge,
                static_cast<double>(active));
  std::size_t acknowledged = 0;
  const auto escalations = escalator_.list();
  for (const auto& e : escalations) {
    acknowledged += escalator_.acknowledged(e, now) ? 1 : 0;
  }
  const auto es = escalator_.stats();
  out.addSingle("vigil_alerting_flapping", "Alerts flapping now (held firing while they flap).",
                MetricType::kGauge, static_cast<double>(flap_.flapping(now)));
  out.addSingle("vigil_alerting_flap_held_total",
                "Resolutions of flapping alerts held back instead of notified.",
                MetricType::kCounter, static_cast<double>(flap_.held()));
  out.addSingle("vigil_escalations_active", "Groups escalating under a policy.", MetricType::kGauge,
                static_cast<double>(escalations.size()));
  out.addSingle("vigil_escalations_acknowledged", "Escalating groups acknowledged now.",
                MetricType::kGauge, static_cast<double>(acknowledged));
  out.addSingle("vigil_escalations_escalated_total",
                "Escalations to a next level or a repeat of the policy.", MetricType::kCounter,
                static_cast<double>(es.escalated));
  out.addSingle("vigil_escalations_acknowledgements_total", "Groups acknowledged.",
                MetricType::kCounter, static_cast<double>(es.acknowledged));
  out.addSingle("vigil_escalations_ack_expired_total",
                "Acknowledgements that expired while the group still fired.", MetricType::kCounter,
                static_cast<double>(es.ack_expired));
  sink_->appendStats(out);
}

}  // namespace vigil
