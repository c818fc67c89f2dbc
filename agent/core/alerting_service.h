#pragma once
// The running alert pipeline: alerts from the rule engine and the Alertmanager API go into the
// alert store and the dispatcher, whose groups are flushed on their own thread; notifications
// go to the log (the notifiers come with the escalation work). Silences, the notification log
// and the alerts are saved to the data directory and restored at start, so that a restart
// neither notifies again nor forgets.

#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vigil/alerting/alert.h"
#include "vigil/alerting/dispatcher.h"
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

  std::string state_path_;
  mutable std::mutex mu_;  // config_, dispatcher_
  std::shared_ptr<const alerting::AlertingConfig> config_;
  alerting::AlertStore store_;
  alerting::Silences silences_;
  std::unique_ptr<LogSink> sink_;
  std::unique_ptr<alerting::Dispatcher> dispatcher_;
  uint64_t notifications_before_reconfigure_ = 0;

  std::thread thread_;
  std::mutex loop_mu_;
  std::condition_variable loop_cv_;
  bool stopping_ = false;
  bool wake_ = false;
  int64_t next_wake_ = 0;  // when the loop wakes by itself next (ms)
};

}  // namespace vigil
