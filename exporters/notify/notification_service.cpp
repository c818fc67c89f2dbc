#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "notifier.h"
#include "outbox.h"
#include "vigil/clock.h"
#include "vigil/exporters/notify.h"
#include "vigil/thread_name.h"

namespace vigil::exporters {

namespace {

std::string hostName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) {
    return "vigil";
  }
  return buf;
}

// From "queued" to "taken by the receiver": most are sub-second, retries take minutes.
// The longest a receiver's Retry-After can make a message wait.
constexpr int64_t kMaxRetryWaitMs = 3600 * 1000;
constexpr std::array<double, 12> kLatencyBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                    0.5,   1,    5,     30,   120, 600};
// The buckets' "le" labels, written once.
const std::array<std::string, kLatencyBuckets.size()>& bucketBounds() {
  static const auto kBounds = [] {
    std::array<std::string, kLatencyBuckets.size()> out;
    for (std::size_t i = 0; i < out.size(); ++i) {
      out[i] = formatPlainFloat(kLatencyBuckets[i]);
    }
    return out;
  }();
  return kBounds;
}

// The notifier kind an integration's configuration key names: "slack_configs" is "slack".
std::string kindOf(const std::string& integration) {
  return integration.substr(0, integration.find("_configs"));
}

struct Histogram {
  std::array<uint64_t, kLatencyBuckets.size()> buckets{};
  double sum = 0;
  uint64_t count = 0;
  void observe(double v) {
    for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      buckets[i] += v <= kLatencyBuckets[i] ? 1 : 0;
    }
    sum += v;
    ++count;
  }
};

}  // namespace

struct NotificationService::Impl {
  struct Pending {
    OutgoingMessage msg;
    int attempts = 0;
    int64_t next_at = 0;
    bool in_flight = false;
  };

  NotificationServiceOptions opts;
  Outbox outbox;
  RenderContext ctx;

  mutable std::mutex mu;
  std::condition_variable work_cv;
  mutable std::condition_variable idle_cv;
  // One queue per destination, so a receiver that is down holds up only itself, and the
  // messages to one receiver arrive in the order they were made (a resolve never overtakes
  // its trigger).
  std::map<std::string, std::deque<Pending>> queues;
  std::size_t pending = 0;
  bool stopping = false;
  std::vector<std::thread> workers;
  std::mt19937_64 rng{std::random_device{}()};

  std::map<std::pair<std::string, std::string>, uint64_t> results;  // (notifier, result)
  std::map<std::string, Histogram> latency;                         // by notifier
  std::map<std::string, uint64_t> dropped;                          // by reason
  uint64_t write_failures = 0;
  std::set<std::string> warned_integrations;
  std::set<std::string> configured_notifiers;  // by kind, from the receivers in force
  std::set<std::string> used_notifiers;        // by kind, sent to since the start

  // Under mu. Whether a notifier's health series are exported.
  bool inUse(const std::string& kind) const {
    return configured_notifiers.count(kind) > 0 || used_notifiers.count(kind) > 0;
  }

  explicit Impl(NotificationServiceOptions o) : opts(std::move(o)), outbox(opts.outbox_dir) {
    ctx.external_url = opts.external_url;
    ctx.hostname = hostName();
  }

  static std::string queueKey(const OutgoingMessage& m) { return m.notifier + " " + m.target; }

  // Under mu.
  void enqueue(OutgoingMessage m) {
    used_notifiers.insert(m.notifier);
    while (pending >= opts.max_pending && dropOldest("full")) {
    }
    queues[queueKey(m)].push_back(Pending{std::move(m)});
    ++pending;
  }

  // Drops the oldest message that is not being sent. Under mu.
  bool dropOldest(const char* reason) {
    std::deque<Pending>* oldest_q = nullptr;
    std::size_t oldest_i = 0;
    for (auto& [key, q] : queues) {
      for (std::size_t i = 0; i < q.size(); ++i) {
        if (!q[i].in_flight) {
          if (oldest_q == nullptr || q[i].msg.id < (*oldest_q)[oldest_i].msg.id) {
            oldest_q = &q;
            oldest_i = i;
          }
          break;  // later ones in this queue are newer
        }
      }
    }
    if (oldest_q == nullptr) {
      return false;
    }
    const OutgoingMessage& m = (*oldest_q)[oldest_i].msg;
    spdlog::error(
        "outbox full, dropping the oldest message notifier={} receiver={} group={} limit={}",
        m.notifier, m.receiver, m.group_key, opts.max_pending);
    drop(*oldest_q, oldest_i, reason);
    return true;
  }

  // Under mu.
  void drop(std::deque<Pending>& q, std::size_t i, const char* reason) {
    ++results[{q[i].msg.notifier, "dropped"}];
    ++dropped[reason];
    outbox.remove(q[i].msg.id);
    q.erase(q.begin() + static_cast<std::ptrdiff_t>(i));
    --pending;
    if (pending == 0) {
      idle_cv.notify_all();
    }
  }

  std::chrono::milliseconds backoff(int attempts, std::chrono::milliseconds retry_after) {
    const int64_t initial = opts.backoff_initial.count();
    const int64_t cap = opts.backoff_max.count();
    int64_t delay = initial;
    for (int i = 1; i < attempts && delay < cap; ++i) {
      delay *= 2;
    }
    delay = std::min(delay, cap);
    // "Equal jitter": half fixed, half random, so that nodes retrying the same receiver after
    // an outage spread out instead of arriving together.
    std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(delay / 2, 1));
    delay = delay / 2 + jitter(rng);
    // The receiver's own Retry-After wins, within an hour.
    const int64_t asked = std::min<int64_t>(retry_after.count(), kMaxRetryWaitMs);
    return std::chrono::milliseconds(std::max(delay, asked));
  }

  void work() {
    std::unique_lock lock(mu);
    while (!stopping) {
      const int64_t now = unixNowMs();
      Pending* next = nullptr;
      std::deque<Pending>* next_q = nullptr;
      int64_t earliest = INT64_MAX;
      for (auto& [key, q] : queues) {
        if (q.empty() || q.front().in_flight) {
          continue;
        }
        Pending& head = q.front();
        if (now - head.msg.created_at > opts.max_age.count()) {
          spdlog::error(
              "notification undelivered past the outbox's age limit, dropped notifier={} "
              "receiver={} target={} attempts={}",
              head.msg.notifier, head.msg.receiver, head.msg.target, head.attempts);
          drop(q, 0, "expired");
          earliest = now;  // look again: the next one in this queue may be due
          continue;
        }
        if (head.next_at - now > std::max(kMaxRetryWaitMs, opts.backoff_max.count())) {
          head.next_at = now;  // the wall clock went back: retry now, not after the step
        }
        if (head.next_at <= now && (next == nullptr || head.next_at < next->next_at)) {
          next = &head;
          next_q = &q;
        }
        earliest = std::min(earliest, head.next_at);
      }
      if (next == nullptr) {
        if (earliest == INT64_MAX) {
          work_cv.wait(lock);
        } else {
          work_cv.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(earliest - now, 1)));
        }
        continue;
      }
      next->in_flight = true;
      const OutgoingMessage msg = next->msg;
      lock.unlock();
      const Delivery d = sendMessage(msg, opts.timeout);
      lock.lock();
      // Only this worker removes the head while it is in flight, so it is still there.
      Pending& head = next_q->front();
      head.in_flight = false;
      ++head.attempts;
      switch (d.result) {
        case DeliveryResult::kDelivered:
          ++results[{msg.notifier, "delivered"}];
          latency[msg.notifier].observe(static_cast<double>(unixNowMs() - msg.created_at) / 1000.0);
          outbox.remove(msg.id);
          next_q->pop_front();
          if (--pending == 0) {
            idle_cv.notify_all();
          }
          break;
        case DeliveryResult::kRejected:
          ++results[{msg.notifier, "rejected"}];
          spdlog::error(
              "receiver rejected the notification, not retrying notifier={} receiver={} "
              "target={} status={} body=\"{}\"",
              msg.notifier, msg.receiver, msg.target, d.status, d.detail);
          outbox.remove(msg.id);
          next_q->pop_front();
          if (--pending == 0) {
            idle_cv.notify_all();
          }
          break;
        case DeliveryResult::kRetry: {
          ++results[{msg.notifier, "retry"}];
          const auto wait = backoff(head.attempts, d.retry_after);
          head.next_at = unixNowMs() + wait.count();
          // The first failure of a message is worth a warning; the rest only at debug, so an
          // outage does not flood the log.
          if (head.attempts == 1) {
            spdlog::warn(
                "notification not delivered, retrying notifier={} receiver={} target={} "
                "status={} error=\"{}\" retry_in_ms={}",
                msg.notifier, msg.receiver, msg.target, d.status, d.detail, wait.count());
          } else {
            spdlog::debug(
                "notification retry failed notifier={} target={} attempts={} error=\"{}\"",
                msg.notifier, msg.target, head.attempts, d.detail);
          }
          break;
        }
      }
    }
  }
};

NotificationService::NotificationService(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

NotificationService::~NotificationService() { shutdown(); }

Result<std::shared_ptr<NotificationService>> NotificationService::open(
    NotificationServiceOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  std::size_t corrupt = 0;
  auto loaded = impl->outbox.load(impl->opts.max_pending, &corrupt);
  if (!loaded) {
    return loaded.status();
  }
  if (corrupt > 0) {
    impl->dropped["corrupt"] += corrupt;
  }
  for (auto& m : *loaded) {
    impl->enqueue(std::move(m));
  }
  if (!loaded->empty()) {
    spdlog::info("outbox replayed pending={} dir={}", loaded->size(), impl->outbox.dir());
  }
  for (int i = 0; i < std::max(1, impl->opts.workers); ++i) {
    impl->workers.emplace_back([p = impl.get(), i] {
      nameThisThread("notify", i);
      p->work();
    });
  }
  return std::shared_ptr<NotificationService>(new NotificationService(std::move(impl)));
}

void NotificationService::shutdown() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->work_cv.notify_all();
  for (auto& t : impl_->workers) {
    if (t.joinable()) {
      t.join();
    }
  }
  impl_->workers.clear();
}

bool NotificationService::deliver(const alerting::Notification& n) {
  if (n.receiver_config == nullptr) {
    return true;
  }
  Impl& s = *impl_;
  std::vector<OutgoingMessage> messages;
  for (const auto& notifier : notifiers()) {
    notifier->render(n, *n.receiver_config, s.ctx, messages);
  }
  for (const auto& integration : n.receiver_config->integrations) {
    const std::string kind = kindOf(integration);
    const bool known = std::any_of(notifiers().begin(), notifiers().end(),
                                   [&](const auto& nt) { return kind == nt->kind(); });
    std::lock_guard lock(s.mu);
    if (!known && s.warned_integrations.insert(n.receiver + "/" + integration).second) {
      spdlog::warn("receiver uses an integration vigil does not send to receiver={} integration={}",
                   n.receiver, integration);
    }
  }
  const int64_t now = unixNowMs();
  for (std::size_t i = 0; i < messages.size(); ++i) {
    OutgoingMessage& m = messages[i];
    m.receiver = n.receiver;
    m.group_key = n.group_key;
    m.created_at = now;
    if (Status st = s.outbox.add(m); !st.isOk()) {
      // Nothing of this notification is queued; the dispatcher tries again at the group's
      // next flush.
      for (std::size_t k = 0; k < i; ++k) {
        s.outbox.remove(messages[k].id);
      }
      std::lock_guard lock(s.mu);
      ++s.write_failures;
      spdlog::error("cannot write to the outbox, the notification will be retried error=\"{}\"",
                    st.message());
      return false;
    }
  }
  {
    std::lock_guard lock(s.mu);
    for (auto& m : messages) {
      s.enqueue(std::move(m));
    }
  }
  s.work_cv.notify_all();
  return true;
}

std::size_t NotificationService::pending() const {
  std::lock_guard lock(impl_->mu);
  return impl_->pending;
}

bool NotificationService::waitIdle(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  return impl_->idle_cv.wait_for(lock, timeout, [&] { return impl_->pending == 0; });
}

void NotificationService::receiversChanged(const std::vector<alerting::Receiver>& receivers) {
  std::set<std::string> kinds;
  for (const auto& r : receivers) {
    for (const auto& integration : r.integrations) {
      kinds.insert(kindOf(integration));
    }
  }
  std::lock_guard lock(impl_->mu);
  impl_->configured_notifiers = std::move(kinds);
}

void NotificationService::appendStats(MetricBatch& out) const {
  const Impl& s = *impl_;
  std::lock_guard lock(s.mu);
  std::vector<const Notifier*> in_use;
  for (const auto& nt : notifiers()) {
    if (s.inUse(nt->kind())) {
      in_use.push_back(nt.get());
    }
  }
  auto& total = out.family("vigil_notifications_total",
                           "Notification messages by notifier and outcome: delivered (2xx), "
                           "retry (a failed attempt that will be retried), rejected (4xx, not "
                           "retried), dropped (outbox limits).",
                           MetricType::kCounter);
  for (const Notifier* nt : in_use) {
    for (const char* result : {"delivered", "retry", "rejected", "dropped"}) {
      auto it = s.results.find({nt->kind(), result});
      MetricBatch::add(total, {{"notifier", nt->kind()}, {"result", result}},
                       it == s.results.end() ? 0.0 : static_cast<double>(it->second));
    }
  }
  auto& lat = out.family("vigil_notification_latency_seconds",
                         "Time from a notification entering the outbox to its receiver taking "
                         "it, retries included.",
                         MetricType::kHistogram);
  for (const Notifier* nt : in_use) {
    auto it = s.latency.find(nt->kind());
    const Histogram h = it == s.latency.end() ? Histogram{} : it->second;
    for (std::size_t i = 0; i < kLatencyBuckets.size(); ++i) {
      MetricBatch::addSuffixed(lat, "_bucket",
                               {{"le", bucketBounds()[i]}, {"notifier", nt->kind()}},
                               static_cast<double>(h.buckets[i]));
    }
    MetricBatch::addSuffixed(lat, "_bucket", {{"le", "+Inf"}, {"notifier", nt->kind()}},
                             static_cast<double>(h.count));
    MetricBatch::addSuffixed(lat, "_sum", {{"notifier", nt->kind()}}, h.sum);
    MetricBatch::addSuffixed(lat, "_count", {{"notifier", nt->kind()}},
                             static_cast<double>(h.count));
  }
  out.addSingle("vigil_outbox_pending", "Notification messages waiting in the outbox.",
                MetricType::kGauge, static_cast<double>(s.pending));
  int64_t oldest = 0;
  const int64_t now = unixNowMs();
  for (const auto& [key, q] : s.queues) {
    if (!q.empty()) {
      oldest = std::max(oldest, now - q.front().msg.created_at);
    }
  }
  out.addSingle("vigil_outbox_oldest_age_seconds",
                "Age of the oldest message waiting in the outbox (0 when empty).",
                MetricType::kGauge, static_cast<double>(oldest) / 1000.0);
  auto& dropped = out.family("vigil_outbox_dropped_total",
                             "Messages dropped undelivered: outbox full, older than the age "
                             "limit, or unreadable after a restart.",
                             MetricType::kCounter);
  for (const char* reason : {"full", "expired", "corrupt"}) {
    auto it = s.dropped.find(reason);
    MetricBatch::add(dropped, {{"reason", reason}},
                     it == s.dropped.end() ? 0.0 : static_cast<double>(it->second));
  }
  out.addSingle("vigil_outbox_write_failures_total",
                "Notifications that could not be written to the outbox (retried at the group's "
                "next flush).",
                MetricType::kCounter, static_cast<double>(s.write_failures));
}

}  // namespace vigil::exporters
