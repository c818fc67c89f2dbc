#include "rule_manager.h"

#include <glob.h>
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>
#include "clock_watch.h"
#include "vigil/atomic_file.h"
#include "vigil/clock.h"
#include "vigil/json_integer.h"
#include "vigil/thread_name.h"

namespace vigil {

namespace {

std::string describe(const promql::Alert& a) {
  std::string out = labelsToString(a.labels);
  for (const auto& [k, v] : a.annotations) {
    out += " " + k + "=\"" + v + "\"";
  }
  return out;
}

}  // namespace

struct RuleManager::GroupRunner {
  GroupRunner(const promql::RuleGroup& g, int64_t interval, Store& store,
              std::map<std::string, std::string> external, AlertSender send)
      : evaluator(g, store, external),
        interval_ms(interval),
        external_labels(std::move(external)),
        sender(std::move(send)) {
    // Prometheus spreads groups over their interval by a stable hash of name and file.
    std::size_t h = std::hash<std::string>{}(g.file + "\xff" + g.name);
    offset_ms = static_cast<int64_t>(h % static_cast<std::size_t>(interval_ms));
  }

  void run() {
    std::unique_lock lock(mu);
    ClockWatch clock_watch;
    while (!stopping) {
      const int64_t now = unixNowMs();
      // The next aligned evaluation time after now.
      int64_t next = ((now - offset_ms) / interval_ms + 1) * interval_ms + offset_ms;
      if (cv.wait_for(lock, std::chrono::milliseconds(next - now), [&] { return stopping; })) {
        break;
      }
      lock.unlock();
      if (auto step = clock_watch.observe(unixNowMs(), std::chrono::steady_clock::now())) {
        // `next` was computed on the old clock: evaluating at it now would write samples an
        // hour in the future or the past. The next evaluation is aligned on the new clock.
        {
          std::lock_guard eval_lock(eval_mu);
          evaluator.shiftTimes(*step);
        }
        lock.lock();
        continue;
      }
      evaluateAt(next);
      lock.lock();
    }
  }

  void evaluateAt(int64_t t) {
    std::lock_guard eval_lock(eval_mu);
    const auto& group = evaluator.group();
    std::map<std::string, promql::AlertState> before;
    for (const auto& rule : group.rules) {
      if (rule.alerting) {
        for (const auto& a : evaluator.alerts(rule.name)) {
          before[labelsToString(a.labels)] = a.state;
        }
      }
    }
    const auto started = std::chrono::steady_clock::now();
    Status st = evaluator.evaluate(t);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    // Alerts are logged when they start firing and when they resolve, not every evaluation.
    for (const auto& rule : group.rules) {
      if (!rule.alerting) {
        continue;
      }
      for (const auto& a : evaluator.alerts(rule.name)) {
        auto it = before.find(labelsToString(a.labels));
        const auto previous = it == before.end() ? promql::AlertState::kInactive : it->second;
        if (a.state == promql::AlertState::kFiring && previous != promql::AlertState::kFiring) {
          spdlog::warn("alert firing {}", describe(a));
        } else if (a.state == promql::AlertState::kInactive &&
                   previous == promql::AlertState::kFiring) {
          spdlog::info("alert resolved {}", describe(a));
        }
      }
    }
    sendAlerts(t);
    std::lock_guard lock(view_mu);
    last_evaluation_ms = t;
    evaluation_seconds = seconds;
    ++evaluations;
    if (!st.isOk()) {
      ++failures;
    }
    if (!st.isOk() && last_error != st.message()) {
      spdlog::warn("rule group evaluation failed group={} error=\"{}\"", group.name, st.message());
    }
    last_error = st.isOk() ? "" : st.message();
  }

  // Prometheus's sendAlerts: firing alerts with a lease of four intervals (at least four
  // minutes), resolved ones with their end for 15 minutes; pending ones are not sent. External
  // labels are added where the alert lacks them.
  void sendAlerts(int64_t t) {
    if (!sender) {
      return;
    }
    constexpr int64_t kResendDelayMs = 60 * 1000;
    constexpr int64_t kResolvedRetentionMs = 15 * 60 * 1000;
    const int64_t lease = 4 * std::max(interval_ms, kResendDelayMs);
    std::vector<alerting::Alert> out;
    for (const auto& rule : evaluator.group().rules) {
      if (!rule.alerting) {
        continue;
      }
      for (const auto& a : evaluator.alerts(rule.name)) {
        const bool firing = a.state == promql::AlertState::kFiring;
        const bool resolved = a.state == promql::AlertState::kInactive && a.resolved_at != 0 &&
                              t - a.resolved_at <= kResolvedRetentionMs;
        if (!firing && !resolved) {
          continue;
        }
        alerting::Alert sent;
        sent.labels = a.labels;
        for (const auto& external : external_labels) {
          if (std::none_of(sent.labels.begin(), sent.labels.end(),
                           [&](const Label& l) { return l.name == external.first; })) {
            sent.labels.push_back({external.first, external.second});
          }
        }
        for (const auto& [name, value] : a.annotations) {
          sent.annotations.push_back({name, value});
        }
        sent.starts_at = a.fired_at;
        sent.ends_at = firing ? t + lease : a.resolved_at;
        if (alerting::normaliseIncoming(sent, t, lease).isOk()) {
          out.push_back(std::move(sent));
        }
      }
    }
    if (!out.empty()) {
      sender(out, t);
    }
  }

  std::mutex eval_mu;  // the evaluator's state: evaluation against the API's reads
  promql::GroupEvaluator evaluator;
  int64_t interval_ms;
  std::map<std::string, std::string> external_labels;
  AlertSender sender;
  int64_t offset_ms = 0;
  std::thread thread;
  std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  mutable std::mutex view_mu;
  int64_t last_evaluation_ms = 0;
  double evaluation_seconds = 0;
  uint64_t evaluations = 0;
  uint64_t failures = 0;
  std::string last_error;
};

Result<std::unique_ptr<RuleManager>> RuleManager::create(
    const std::vector<std::string>& globs, std::chrono::milliseconds default_interval, Store& store,
    std::map<std::string, std::string> external_labels, AlertSender sender) {
  std::unique_ptr<RuleManager> manager(new RuleManager());
  std::string errors;
  for (const auto& pattern : globs) {
    glob_t g{};
    const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
    if (rc != 0 && rc != GLOB_NOMATCH) {
      errors += "rule_files: cannot expand \"" + pattern + "\"\n";
    }
    if (rc == GLOB_NOMATCH) {
      // Not an error, as in Prometheus (a glob may match files added later), but said: a
      // mistyped path, or the embedded default's relative paths run from another directory,
      // would otherwise leave vigil evaluating nothing without a word.
      // A configuration file's relative patterns were made absolute against its directory;
      // the embedded default's are relative to the working directory.
      std::error_code ec;
      const auto cwd = std::filesystem::current_path(ec);
      if (std::filesystem::path(pattern).is_relative() && !ec) {
        spdlog::warn("rule_files pattern matches no file pattern=\"{}\" working_directory=\"{}\"",
                     pattern, cwd.string());
      } else {
        spdlog::warn("rule_files pattern matches no file pattern=\"{}\"", pattern);
      }
    }
    for (std::size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) {
      auto loaded = promql::loadRuleFile(g.gl_pathv[i]);
      for (const auto& e : loaded.errors) {
        errors += e.toString() + "\n";
      }
      for (const auto& group : loaded.groups) {
        const int64_t interval =
            group.interval_ms > 0 ? group.interval_ms : default_interval.count();
        manager->groups_.push_back(
            std::make_unique<GroupRunner>(group, interval, store, external_labels, sender));
      }
    }
    ::globfree(&g);
  }
  if (!errors.empty()) {
    errors.pop_back();
    return invalidArgument(errors);
  }
  return manager;
}

RuleManager::~RuleManager() { stop(); }

void RuleManager::start() {
  for (auto& g : groups_) {
    GroupRunner* runner = g.get();
    g->thread = std::thread([runner] {
      nameThisThread("rules");
      runner->run();
    });
  }
}

void RuleManager::stop() {
  for (auto& g : groups_) {
    {
      std::lock_guard lock(g->mu);
      g->stopping = true;
    }
    g->cv.notify_all();
  }
  for (auto& g : groups_) {
    if (g->thread.joinable()) {
      g->thread.join();
    }
  }
}

std::size_t RuleManager::ruleCount() const {
  std::size_t n = 0;
  for (const auto& g : groups_) {
    n += g->evaluator.group().rules.size();
  }
  return n;
}

Status RuleManager::saveState(const std::string& path) const {
  using json = nlohmann::json;
  json groups = json::array();
  for (const auto& g : groups_) {
    std::vector<std::vector<promql::Alert>> alerts;
    {
      std::lock_guard lock(g->eval_mu);
      alerts = g->evaluator.exportAlerts();
    }
    const auto& group = g->evaluator.group();
    json rules = json::array();
    for (std::size_t i = 0; i < group.rules.size(); ++i) {
      json list = json::array();
      for (const auto& a : alerts[i]) {
        json labels = json::object();
        for (const auto& l : a.labels) {
          labels[l.name] = l.value;
        }
        json annotations = json::array();
        for (const auto& [k, v] : a.annotations) {
          annotations.push_back({k, v});
        }
        list.push_back({{"labels", labels},
                        {"annotations", annotations},
                        {"value", a.value},
                        {"state", static_cast<int>(a.state)},
                        {"active_at", a.active_at},
                        {"fired_at", a.fired_at},
                        {"resolved_at", a.resolved_at},
                        {"keep_firing_since", a.keep_firing_since}});
      }
      rules.push_back({{"name", group.rules[i].name}, {"alerts", list}});
    }
    groups.push_back({{"file", group.file}, {"name", group.name}, {"rules", rules}});
  }
  return writeFileAtomically(path, json{{"version", 1}, {"groups", groups}}.dump(
                                       -1, ' ', false, json::error_handler_t::replace));
}

Status RuleManager::loadState(const std::string& path) {
  using json = nlohmann::json;
  std::ifstream in(path);
  if (!in) {
    return Status::ok();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  json doc = json::parse(ss.str(), nullptr, false);
  if (doc.is_discarded() || doc.value("version", 0) != 1) {
    return invalidArgument("alert state file " + path + " is not valid; starting without it");
  }
  try {
    for (const auto& g : groups_) {
      const auto& group = g->evaluator.group();
      for (const auto& saved : doc["groups"]) {
        if (saved["file"] != group.file || saved["name"] != group.name) {
          continue;
        }
        std::vector<std::pair<std::string, std::vector<promql::Alert>>> state;
        for (const auto& r : saved["rules"]) {
          std::vector<promql::Alert> alerts;
          for (const auto& a : r["alerts"]) {
            promql::Alert alert;
            for (auto it = a["labels"].begin(); it != a["labels"].end(); ++it) {
              alert.labels.push_back({it.key(), it.value().get<std::string>()});
            }
            for (const auto& kv : a["annotations"]) {
              alert.annotations.emplace_back(kv[0].get<std::string>(), kv[1].get<std::string>());
            }
            alert.value = a["value"].get<double>();
            alert.state = static_cast<promql::AlertState>(jsonInteger(a, "state", 0, 2));
            alert.active_at = jsonInteger(a, "active_at");
            alert.fired_at = jsonInteger(a, "fired_at");
            alert.resolved_at = jsonInteger(a, "resolved_at");
            alert.keep_firing_since = jsonInteger(a, "keep_firing_since");
            alerts.push_back(std::move(alert));
          }
          state.emplace_back(r["name"].get<std::string>(), std::move(alerts));
        }
        std::lock_guard lock(g->eval_mu);
        g->evaluator.importAlerts(state);
      }
    }
  } catch (const std::exception& e) {  // nlohmann's, and jsonInteger's
    return invalidArgument("alert state file " + path + " is not valid: " + e.what());
  }
  return Status::ok();
}

std::vector<RuleGroupView> RuleManager::snapshot() const {
  std::vector<RuleGroupView> out;
  for (const auto& g : groups_) {
    RuleGroupView v;
    v.group = g->evaluator.group();
    v.interval_ms = g->interval_ms;
    {
      std::lock_guard lock(g->view_mu);
      v.last_evaluation_ms = g->last_evaluation_ms;
      v.evaluation_seconds = g->evaluation_seconds;
      v.last_error = g->last_error;
      v.evaluations = g->evaluations;
      v.failures = g->failures;
    }
    std::lock_guard eval_lock(g->eval_mu);
    for (const auto& rule : v.group.rules) {
      v.alerts.push_back(rule.alerting ? g->evaluator.alerts(rule.name)
                                       : std::vector<promql::Alert>{});
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace vigil
