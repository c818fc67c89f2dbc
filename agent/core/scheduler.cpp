#include "scheduler.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <random>
#include <thread>

namespace vigil {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

struct Slot {
  CollectorSettings settings;
  CollectorPtr collector;
  Store::SourceId source = 0;
  CollectorHealth health;
  std::unique_ptr<asio::steady_timer> timer;
  Clock::time_point anchor;  // cycles are due at anchor + k * interval
  // Written by the cycle, read by the watchdog.
  std::atomic<int64_t> running_since_ns{0};  // 0 when idle
  std::atomic<bool> timeout_reported{false};
  bool last_ok = true;  // touched only by the slot's own (sequential) cycles
  bool first_done = false;
  std::shared_ptr<MetricBatch> spare;  // see CollectContext::spare; the cycles' own too
  // A published batch no reader holds any more, not offered as a spare, already recycled():
  // the next cycle's batch, so that its families need not be allocated again.
  std::shared_ptr<MetricBatch> recycled;
  // Spares the collector left untouched in a row: most collectors never reuse a batch, and
  // keeping one for them would only hold memory (they are offered one now and then).
  int spare_misses = 0;
  uint64_t cycles = 0;
};

constexpr std::chrono::milliseconds kWatchdogPeriod{500};
// A collector that leaves this many spare batches in a row unused is offered one only every
// kSpareRetry cycles.
constexpr int kSpareMisses = 3;
constexpr uint64_t kSpareRetry = 16;
// Batches up to this size are recycled into their collector's next one (see Slot::recycled):
// the node collectors' hundreds of families. A large batch is mostly samples, whose label sets
// are made anew each cycle anyway, and keeping storage for them would only hold memory.
constexpr std::size_t kRecycleMaxSeries = 2048;

int64_t toNs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

struct CollectorScheduler::State : std::enable_shared_from_this<State> {
  State(HostPaths p, Store& st, SnapshotRegistry& s, SelfMetrics& m)
      : paths(std::move(p)), store(st), snapshots(s), self_metrics(m), watchdog(io) {}

  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<Slot>> slots;
  HostPaths paths;
  Store& store;
  SnapshotRegistry& snapshots;
  SelfMetrics& self_metrics;
  asio::steady_timer watchdog;

  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> first_round{0};
  std::mutex mu;
  std::condition_variable idle_cv;
  int in_flight = 0;  // guarded by mu

  void runCycle(Slot& slot) {
    {
      std::lock_guard lock(mu);
      if (stopping.load()) {
        return;
      }
      ++in_flight;
    }
    const auto started = Clock::now();
    const int64_t timestamp_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::system_clock::now().time_since_epoch())
                                     .count();
    slot.timeout_reported.store(false);
    slot.running_since_ns.store(toNs(started));

    std::shared_ptr<MetricBatch> batch = std::move(slot.recycled);
    if (batch == nullptr) {
      batch = std::make_shared<MetricBatch>();
    }
    CollectContext ctx{started + slot.settings.timeout, &paths, slot.spare.get(), &store,
                       timestamp_ms};
    const bool offered = slot.spare != nullptr;
    Status status;
    try {
      status = slot.collector->collect(ctx, *batch);
    } catch (const std::exception& e) {
      // Collectors must not throw; if one does, it is a bug, but it must not take vigil down.
      status = internalError(std::string("collector threw: ") + e.what());
    }
    const auto finished = Clock::now();
    slot.running_since_ns.store(0);
    const double seconds = std::chrono::duration<double>(finished - started).count();
    if (status.isOk() && finished > ctx.deadline) {
      status = Status(StatusCode::kDeadlineExceeded, "took " + std::to_string(seconds) +
                                                         "s, longer than its timeout of " +
                                                         formatDuration(slot.settings.timeout));
    }
    const bool ok = status.isOk();

    if (!stopping.load()) {
      store.appendBatch(slot.source, timestamp_ms, *batch);
      auto replaced = snapshots.publish("collector/" + slot.settings.name, std::move(batch));
      if (offered) {
        slot.spare_misses = slot.spare->empty() ? 0 : slot.spare_misses + 1;
      }
      // Once no reader holds the batch it replaced, that batch is the collector's to reuse.
      const bool offer = slot.spare_misses < kSpareMisses || slot.cycles % kSpareRetry == 0;
      slot.spare = nullptr;
      if (replaced.use_count() == 1) {
        auto batch_back = std::const_pointer_cast<MetricBatch>(replaced);
        if (offer) {
          slot.spare = std::move(batch_back);
        } else if (batch_back->seriesCount() <= kRecycleMaxSeries) {
          batch_back->recycle();  // its samples freed now, not when the next cycle starts
          slot.recycled = std::move(batch_back);
        }
      }
      ++slot.cycles;
      slot.health.finished(seconds, ok);
      // Logged on state changes only: a collector failing every cycle must not flood the log.
      if (!ok && slot.last_ok) {
        spdlog::warn("collector failed collector={} error=\"{}\"", slot.settings.name,
                     status.toString());
      } else if (ok && !slot.last_ok) {
        spdlog::info("collector recovered collector={}", slot.settings.name);
      }
      slot.last_ok = ok;
      if (!slot.first_done) {
        slot.first_done = true;
        first_round.fetch_add(1);
      }
      scheduleNext(slot, started, finished);
    }

    std::lock_guard lock(mu);
    --in_flight;
    idle_cv.notify_all();
  }

  void scheduleNext(Slot& slot, Clock::time_point started, Clock::time_point now) {
    const auto interval = std::chrono::duration_cast<Clock::duration>(slot.settings.interval);
    auto ticksAt = [&](Clock::time_point t) -> int64_t {
      return t < slot.anchor ? -1 : (t - slot.anchor) / interval;
    };
    const int64_t now_tick = ticksAt(now);
    const auto next = slot.anchor + (now_tick + 1) * interval;
    // A cycle that overran its interval skips the ticks it missed rather than running back to
    // back; the skips are counted so that an overloaded collector is visible.
    for (int64_t missed = now_tick - ticksAt(started); missed > 0; --missed) {
      slot.health.skipped();
    }
    slot.timer->expires_at(next);
    auto self = shared_from_this();
    Slot* s = &slot;
    slot.timer->async_wait([self, s](const boost::system::error_code& ec) {
      if (!ec) {
        self->runCycle(*s);
      }
    });
  }

  void armWatchdog() {
    watchdog.expires_after(kWatchdogPeriod);
    auto self = shared_from_this();
    watchdog.async_wait([self](const boost::system::error_code& ec) {
      if (ec || self->stopping.load()) {
        return;
      }
      const int64_t now = toNs(Clock::now());
      for (auto& slot : self->slots) {
        int64_t since = slot->running_since_ns.load();
        int64_t limit =
            std::chrono::duration_cast<std::chrono::nanoseconds>(slot->settings.timeout).count();
        if (since != 0 && now - since > limit && !slot->timeout_reported.exchange(true)) {
          slot->health.timedOut();
          spdlog::warn("collector timed out collector={} timeout={}", slot->settings.name,
                       formatDuration(slot->settings.timeout));
        }
      }
      self->armWatchdog();
    });
  }
};

CollectorScheduler::CollectorScheduler(std::vector<Entry> entries, HostPaths paths, Store& store,
                                       SnapshotRegistry& snapshots, SelfMetrics& self_metrics)
    : state_(std::make_shared<State>(std::move(paths), store, snapshots, self_metrics)) {
  for (auto& e : entries) {
    auto slot = std::make_unique<Slot>();
    slot->settings = std::move(e.settings);
    slot->collector = std::move(e.collector);
    slot->timer = std::make_unique<asio::steady_timer>(state_->io);
    slot->source = store.registerSource("collector/" + slot->settings.name);
    slot->health = self_metrics.collectorHealth(slot->settings.name);
    state_->slots.push_back(std::move(slot));
  }
}

CollectorScheduler::~CollectorScheduler() { stop(std::chrono::milliseconds(1000)); }

void CollectorScheduler::start() {
  State& s = *state_;
  s.work.emplace(s.io.get_executor());
  std::mt19937_64 rng{std::random_device{}()};
  const auto now = Clock::now();
  // One random offset per interval for the whole agent: agents on many nodes do not wake in
  // step, while the collectors of one agent that share an interval wake together, one wake-up
  // instead of one per collector.
  std::map<int64_t, Clock::time_point> anchors;
  for (auto& slot : s.slots) {
    const auto interval_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(slot->settings.interval).count();
    auto [it, inserted] = anchors.try_emplace(interval_ns);
    if (inserted) {
      std::uniform_int_distribution<int64_t> jitter(0, interval_ns - 1);
      it->second = now + std::chrono::nanoseconds(jitter(rng));
    }
    slot->anchor = it->second;
    Slot* raw = slot.get();
    auto self = state_;
    asio::post(s.io, [self, raw] { self->runCycle(*raw); });
  }
  s.armWatchdog();
  // Enough threads that one stuck collector leaves the others running, few enough to stay
  // small: collectors mostly read pseudo-files and finish in microseconds.
  const std::size_t threads = std::clamp<std::size_t>(s.slots.size(), 2, 4);
  for (std::size_t i = 0; i < threads; ++i) {
    auto self = state_;
    s.threads.emplace_back([self] { self->io.run(); });
  }
}

bool CollectorScheduler::stop(std::chrono::milliseconds grace) {
  State& s = *state_;
  if (s.threads.empty()) {
    return true;
  }
  bool idle = false;
  {
    std::unique_lock lock(s.mu);
    s.stopping.store(true);
    idle = s.idle_cv.wait_for(lock, grace, [&] { return s.in_flight == 0; });
  }
  s.work.reset();
  s.io.stop();
  for (auto& t : s.threads) {
    if (idle) {
      t.join();
    } else {
      // A collector is stuck in a system call; its thread keeps the shared state alive and
      // exits when the call returns.
      t.detach();
    }
  }
  s.threads.clear();
  if (idle) {
    // The pending waits' handlers hold the state (they capture it), and the io_context that
    // holds them is part of the state: cancel the waits and run their handlers, which see the
    // cancellation and return, or the state would never be freed (a leak per reload, found by
    // LeakSanitizer).
    for (auto& slot : s.slots) {
      slot->timer->cancel();
    }
    s.watchdog.cancel();
    s.io.restart();
    s.io.poll();
  }
  return idle;
}

bool CollectorScheduler::firstRoundDone() const {
  return state_->first_round.load() >= state_->slots.size();
}

}  // namespace vigil
