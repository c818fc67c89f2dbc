#pragma once
// The running alert pipeline: alerts from the rule engine and the Alertmanager API go into the
// alert store and the dispatcher, whose groups are flushed on their own thread; notifications
// go to the log (the notifiers come with the escalation work). Silences, the notification log
// and the alerts are saved to the data directory and restored at start, so that a restart
// neither notifies again nor forgets.

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vigil/alerting/alert.h"
#include "vigil/alerting/dispatcher.h"
#include "vigil/alerting/escalation.h"
#include "vigil/alerting/flap.h"
#include "vigil/alerting/silences.h"
#include "vigil/metric.h"

namespace vigil {

/// The routing used when the configuration has no `alerting` section: every alert, grouped
/// by alertname, to the log.
std::shared_ptr<const alerting::AlertingConfig> defaultAlertingConfig();

class AlertingService {
 public:
  /// `notifier` (may be null) delivers notifications after they are logged; it is supplied by
  /// the composition root so that agent/ does not depend on exporters/.
  AlertingService(std::shared_ptr<const alerting::AlertingConfig> config, std::string state_path,
                  std::shared_ptr<alerting::NotificationSink> notifier = nullptr);
  ~AlertingService();

  void start();
  void stop();
  /// A new configuration: the groups are rebuilt from the alerts held; the notification log
  /// and silences stay.
  void reconfigure(std::shared_ptr<const alerting::AlertingConfig> config);

  /// Stores and routes alerts (already complete: see alerting::normaliseIncoming).
  void receive(std::vector<alerting::Alert> alerts, int64_t now);

  struct AlertView {
    alerting::Alert alert;
    std::vector<std::string> receivers;
    std::vector<std::string> silenced_by;
    std::vector<std::string> inhibited_by;  // fingerprints, hex
  };
  std::vector<AlertView> alerts(int64_t now) const;
  std::vector<alerting::Dispatcher::GroupView> groups() const;
  alerting::Silences& silences() { return silences_; }
  std::shared_ptr<const alerting::AlertingConfig> config() const;
  int64_t resolveTimeoutMs() const;

  /// Escalating groups (routes with an escalation policy).
  std::vector<alerting::Escalation> escalations() const;
  /// Acknowledges an escalating group by id; its notified levels are told. kNotFound when no
  /// group escalates under that id.
  Status acknowledge(const std::string& id, alerting::Acknowledgement ack);
  Status unacknowledge(const std::string& id);
  /// Acknowledges one alert by fingerprint (hex); kNotFound for an unknown alert.
  Status acknowledgeAlert(const std::string& fingerprint, alerting::Acknowledgement ack);
  Status unacknowledgeAlert(const std::string& fingerprint);
  std::map<uint64_t, alerting::Acknowledgement> alertAcks() const;

  /// Writes silences, the notification log and the alerts to the state file (atomically).
  Status saveState() const;
  /// Restores them; a missing file is not an error.
  Status loadState();
  /// vigil_alerting_* health metrics.
  void appendStats(MetricBatch& out) const;

 private:
  class LogSink;
  void run();
  void rebuildDispatcher();
  // Under mu_: the notifications an escalation action sends.
  std::vector<alerting::Notification> notificationsFor(const alerting::EscalationAction& a,
                                                       int64_t now) const;
  // Sends `n` to each receiver; true when every one took it.
  bool deliverTo(const alerting::Notification& n, const std::vector<std::string>& receivers);
  void wakeLoop();

  std::string state_path_;
  mutable std::mutex save_mu_;  // one saveState() at a time
  mutable std::mutex mu_;       // config_, dispatcher_
  std::shared_ptr<const alerting::AlertingConfig> config_;
  alerting::AlertStore store_;
  alerting::Silences silences_;
  std::unique_ptr<LogSink> sink_;
  std::unique_ptr<alerting::Dispatcher> dispatcher_;
  alerting::Escalator escalator_;
  alerting::FlapDamper flap_;
  // Acknowledgements to tell, from the API, sent by the loop.
  std::vector<alerting::EscalationAction> queued_actions_;
  uint64_t notifications_before_reconfigure_ = 0;

  std::thread thread_;
  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stopping_ = false;
  bool wake_ = false;
  int64_t next_wake_ = 0;  // when the loop wakes by itself next (ms)
};

}  // namespace vigil
