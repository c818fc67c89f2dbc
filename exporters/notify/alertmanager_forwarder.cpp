// Forwarding rule alerts to Alertmanagers with Prometheus's notifier semantics (resend delay,
// leases, a bounded queue that drops the oldest, batches to every Alertmanager).
#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_map>

#include "notifier.h"
#include "vigil/exporters/notify.h"
#include "vigil/labels_json.h"
#include "vigil/thread_name.h"

namespace vigil::exporters {

namespace {

using json = nlohmann::json;

// How long an alert that stopped arriving is remembered for the resend decision: longer than
// Prometheus keeps sending a resolved alert (15 minutes).
constexpr int64_t kForgetAfterMs = 20 * 60 * 1000;

}  // namespace

std::string alertmanagerAlertsPayload(const std::vector<alerting::Alert>& alerts) {
  json out = json::array();
  for (const auto& a : alerts) {
    json j = {{"labels", labelsJson(a.labels)},
              {"annotations", labelsJson(a.annotations)},
              {"startsAt", alerting::goTime(a.starts_at)}};
    if (a.ends_at != 0) {
      j["endsAt"] = alerting::goTime(a.ends_at);
    }
    if (!a.generator_url.empty()) {
      j["generatorURL"] = a.generator_url;
    }
    out.push_back(std::move(j));
  }
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

struct AlertmanagerForwarder::Impl {
  struct Sent {
    int64_t at = 0;
    bool resolved = false;
    int64_t seen = 0;
  };
  struct TargetStats {
    uint64_t sent = 0;    // alerts
    uint64_t errors = 0;  // alerts in failed batches
  };

  AlertmanagerForwarderOptions opts;
  mutable std::mutex mu;
  std::condition_variable work_cv;
  mutable std::condition_variable idle_cv;
  std::vector<alerting::AlertmanagerTarget> targets;
  std::deque<alerting::Alert> queue;
  std::unordered_map<uint64_t, Sent> last_sent;  // by fingerprint
  int64_t last_gc = 0;
  bool in_flight = false;
  bool stopping = false;
  uint64_t dropped = 0;
  std::map<std::string, TargetStats> stats;  // by Alertmanager URL
  std::thread worker;

  // Prometheus's needsSending: new, newly resolved, or not sent for resend_delay. Under mu.
  bool needsSending(const alerting::Alert& a, uint64_t fp, int64_t now) {
    const bool resolved = a.ends_at != 0 && a.ends_at <= now;
    auto it = last_sent.find(fp);
    if (it == last_sent.end()) {
      return true;
    }
    it->second.seen = now;
    if (resolved && !it->second.resolved) {
      return true;
    }
    return it->second.at + opts.resend_delay.count() <= now;
  }

  void work() {
    std::unique_lock lock(mu);
    while (true) {
      work_cv.wait(lock, [&] { return stopping || (!queue.empty() && !targets.empty()); });
      if (stopping) {
        return;
      }
      std::vector<alerting::Alert> batch;
      while (!queue.empty() && batch.size() < opts.max_batch) {
        batch.push_back(std::move(queue.front()));
        queue.pop_front();
      }
      const auto to = targets;
      in_flight = true;
      lock.unlock();
      OutgoingMessage m;
      m.notifier = "alertmanager";
      m.body = alertmanagerAlertsPayload(batch);
      std::vector<std::pair<std::string, Delivery>> results;
      for (const auto& t : to) {
        m.target = t.url + "/api/v2/alerts";
        m.http = t.http;
        results.emplace_back(t.url, sendMessage(m, std::chrono::milliseconds(t.timeout.count())));
      }
      lock.lock();
      in_flight = false;
      for (const auto& [url, d] : results) {
        if (d.result == DeliveryResult::kDelivered) {
          stats[url].sent += batch.size();
        } else {
          stats[url].errors += batch.size();
          spdlog::warn(
              "sending alerts to Alertmanager failed alertmanager={} alerts={} status={} "
              "error=\"{}\"",
              url, batch.size(), d.status, d.detail);
        }
      }
      if (queue.empty()) {
        idle_cv.notify_all();
      }
    }
  }
};

AlertmanagerForwarder::AlertmanagerForwarder(AlertmanagerForwarderOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->opts = options;
  impl_->worker = std::thread([p = impl_.get()] {
    nameThisThread("am-fwd");
    p->work();
  });
}

AlertmanagerForwarder::~AlertmanagerForwarder() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->work_cv.notify_all();
  impl_->worker.join();
}

void AlertmanagerForwarder::setTargets(std::vector<alerting::AlertmanagerTarget> targets) {
  {
    std::lock_guard lock(impl_->mu);
    impl_->targets = std::move(targets);
    if (impl_->targets.empty()) {
      impl_->queue.clear();  // nowhere to send them
    }
  }
  impl_->work_cv.notify_all();
}

void AlertmanagerForwarder::forward(const std::vector<alerting::Alert>& alerts, int64_t now) {
  Impl& s = *impl_;
  {
    std::lock_guard lock(s.mu);
    if (s.targets.empty()) {
      return;
    }
    for (const auto& a : alerts) {
      const uint64_t fp = a.fingerprint();
      if (!s.needsSending(a, fp, now)) {
        continue;
      }
      s.last_sent[fp] = {now, a.ends_at != 0 && a.ends_at <= now, now};
      s.queue.push_back(a);
    }
    if (s.queue.size() > s.opts.queue_capacity) {
      const std::size_t drop = s.queue.size() - s.opts.queue_capacity;
      s.queue.erase(s.queue.begin(), s.queue.begin() + static_cast<std::ptrdiff_t>(drop));
      s.dropped += drop;
      spdlog::warn("Alertmanager queue full, dropped the oldest alerts dropped={} capacity={}",
                   drop, s.opts.queue_capacity);
    }
    if (now - s.last_gc > 60 * 1000) {
      std::erase_if(s.last_sent,
                    [&](const auto& kv) { return now - kv.second.seen > kForgetAfterMs; });
      s.last_gc = now;
    }
  }
  s.work_cv.notify_all();
}

bool AlertmanagerForwarder::waitIdle(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  return impl_->idle_cv.wait_for(lock, timeout,
                                 [&] { return impl_->queue.empty() && !impl_->in_flight; });
}

void AlertmanagerForwarder::appendStats(MetricBatch& out) const {
  const Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  auto& sent = out.family("vigil_alertmanager_notifications_sent_total",
                          "Alerts sent to each Alertmanager.", MetricType::kCounter);
  auto& errors =
      out.family("vigil_alertmanager_notifications_errors_total",
                 "Alerts in batches an Alertmanager did not take.", MetricType::kCounter);
  for (const auto& t : s.targets) {
    auto it = s.stats.find(t.url);
    const Impl::TargetStats st = it == s.stats.end() ? Impl::TargetStats{} : it->second;
    MetricBatch::add(sent, {{"alertmanager", t.url}}, static_cast<double>(st.sent));
    MetricBatch::add(errors, {{"alertmanager", t.url}}, static_cast<double>(st.errors));
  }
  out.addSingle("vigil_alertmanager_notifications_dropped_total",
                "Alerts dropped because the queue to the Alertmanagers was full.",
                MetricType::kCounter, static_cast<double>(s.dropped));
  out.addSingle("vigil_alertmanager_notifications_queue_length",
                "Alerts waiting to be sent to the Alertmanagers.", MetricType::kGauge,
                static_cast<double>(s.queue.size()));
  out.addSingle("vigil_alertmanager_notifications_queue_capacity",
                "Alerts the queue to the Alertmanagers holds.", MetricType::kGauge,
                static_cast<double>(s.opts.queue_capacity));
}

}  // namespace vigil::exporters
