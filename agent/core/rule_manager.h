#pragma once
// Runs the configured rule groups: each on its interval, aligned the way Prometheus aligns
// groups (a stable offset per group), groups concurrently on their own thread each, rules of a
// group in order. Logs alerts as they start firing and resolve, and keeps what the
// /api/v1/rules and /api/v1/alerts endpoints show.

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "self_metrics.h"
#include "vigil/alerting/alert.h"
#include "vigil/rules/rule_eval.h"
#include "vigil/rules/rule_file.h"
#include "vigil/store.h"

namespace vigil {

struct RuleGroupView {
  promql::RuleGroup group;
  int64_t interval_ms = 0;
  int64_t last_evaluation_ms = 0;
  double evaluation_seconds = 0;
  std::string last_error;
  uint64_t evaluations = 0;
  uint64_t failures = 0;
  std::vector<std::vector<promql::Alert>> alerts;  // per rule (empty for recording rules)
};

/// Where alerts go after each evaluation of a group (the alert pipeline): as Prometheus sends
/// them to Alertmanager, firing ones with a lease and recently resolved ones with their end.
using AlertSender = std::function<void(const std::vector<alerting::Alert>&, int64_t now_ms)>;

class RuleManager {
 public:
  /// Loads every file matching `globs`; kInvalidArgument lists every error (FILE:LINE:COL).
  static Result<std::unique_ptr<RuleManager>> create(
      const std::vector<std::string>& globs, std::chrono::milliseconds default_interval,
      Store& store, std::map<std::string, std::string> external_labels, AlertSender sender = {});
  ~RuleManager();

  void start();
  void stop();
  std::size_t ruleCount() const;

  /// Writes every alert's state to `path` atomically, so that a restart neither re-announces a
  /// firing alert nor loses a pending alert's `for` progress.
  Status saveState(const std::string& path) const;
  /// Restores what saveState() wrote; a missing file is not an error.
  Status loadState(const std::string& path);
  std::vector<RuleGroupView> snapshot() const;

 private:
  struct GroupRunner;
  RuleManager() = default;
  std::vector<std::unique_ptr<GroupRunner>> groups_;
};

}  // namespace vigil
