#include "scheduler.h"

#include <spdlog/spdlog.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "round_timer.h"
#include "scrape_phase.h"
#include "vigil/thread_name.h"

namespace vigil {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

namespace {

struct Group;

struct Slot {
  CollectorSettings settings;
  CollectorPtr collector;
  std::string source_name;  // "collector/NAME": its source in the store and its snapshot
  Store::SourceId source = 0;
  SnapshotRegistry::SourceHandle snapshot_source;
  // In the batch it published last; unknown (a batch published before a reload) as too many
  // to recycle.
  std::size_t published_series = SIZE_MAX;
  CollectorHealth health;
  Group* group = nullptr;
  // The last round of its group that this slot was claimed for: a round runs each slot once,
  // whichever thread gets to it first (see Group).
  std::atomic<uint64_t> claimed_round{0};
  // Set while a cycle runs: a slot whose last cycle is still running skips this round.
  std::atomic<bool> busy{false};
  // Written by the cycle, read by the watchdog.
  std::atomic<int64_t> running_since_ns{0};  // 0 when idle
  std::atomic<bool> timeout_reported{false};
  std::atomic<bool> handed_off{false};       // the rest of its round was handed to another thread
  std::atomic<bool> runner_replaced{false};  // the local runner it hangs was replaced
  // The local runner that runs its current cycle (see State::runner), 0 for a pool thread, and
  // the round that cycle belongs to.
  std::atomic<uint64_t> running_on{0};
  std::atomic<uint64_t> running_round{0};
  bool last_ok = true;  // touched only by the slot's own (sequential) cycles
  bool first_done = false;
  int64_t last_stamp_ms = 0;  // the timestamp its last cycle's samples got
  // For a collector that takes spare batches: see CollectContext::spare.
  std::shared_ptr<MetricBatch> spare;
  // For the others: a published batch no reader holds any more, already recycled(), the next
  // cycle's batch, so that its families need not be allocated again (and keep their layout).
  std::shared_ptr<MetricBatch> recycled;
};

// Collectors that read this machine and share an interval wake up together, on one timer, and
// run one after another on one thread, the local runner: one wake-up a round instead of one per
// collector, and no hand-over between threads (which cost the node collectors, each taking
// microseconds, a sixth of their CPU). A collector that waits on the network runs in a group of
// its own on the pool. Should a collector hang (a dead NFS mount, a kernel bug), the watchdog
// hands the rest of its round to the pool once it has run for kHandOffAfter and, if it hangs
// the local runner for half an interval (the next round would come late), starts another, so
// that it holds up only itself; later rounds skip it until it returns. A collector that is
// merely slow (300 ms a cycle) costs a hand-over a cycle, not a thread. A round that falls on a
// followed scraper's scrape runs on the thread serving the scrape instead (see scrapeArrived):
// one wake-up a round instead of two, and samples as fresh as node_exporter's; its timer, armed
// a little later, runs it should the scrape not come.
struct Group {
  // Unique in the process, with the round number the CollectContext::round of its cycles.
  uint64_t id = 0;
  bool local = true;  // on the local runner, or on the pool
  std::chrono::nanoseconds interval{};
  std::vector<Slot*> slots;
  std::unique_ptr<RoundTimer> timer;
  std::atomic<uint64_t> round{0};  // the latest round started
  // Guards the next round's timing: its timer's thread and a scrape's (see scrapeArrived) may
  // both want to start it.
  std::mutex mu;
  Clock::time_point anchor;  // rounds are due at anchor + k * interval
  Clock::time_point due;     // the next round's
  Clock::time_point armed;   // when the timer fires for it: `due`, or later for on_scrape
  bool on_scrape = false;    // the next round is due with the followed scraper's next scrape
};

constexpr std::chrono::milliseconds kHandOffAfter{250};
constexpr int64_t kHandOffAfterNs =
    std::chrono::duration_cast<std::chrono::nanoseconds>(kHandOffAfter).count();

// Which local runner this thread is (State::runner_generation when it started), 0 for others.
thread_local uint64_t t_runner = 0;
// Batches up to this size are recycled into their collector's next one (see Slot::recycled):
// the node collectors' hundreds of families and their label sets, taken back by the next cycle.
// A larger batch (a big scrape target's, which reuses its spare batch instead) would hold its
// label sets between cycles for nothing.
constexpr std::size_t kRecycleMaxSeries = 2048;
// Prometheus's default --scrape.timestamp-tolerance (see State::stampFor).
constexpr int64_t kStampToleranceMs = 2;
// Rounds that follow a scraper (see State::scheduleNextRound) stay put while their phase is at
// most this far off the scrapes' (a scraper's arrivals jitter), and a scrape runs one due at
// most this long after it.
constexpr std::chrono::nanoseconds kOnScrapeSlack = std::chrono::milliseconds(10);
// Intervals that differ by at most this much, or a fiftieth, fit (see State::commensurate).
constexpr std::chrono::nanoseconds kMinMismatch = std::chrono::milliseconds(2);

int64_t toNs(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

struct CollectorScheduler::State : std::enable_shared_from_this<State> {
  using RoundHook = CollectorScheduler::RoundHook;
  State(HostPaths p, Store& st, SnapshotRegistry& s, SelfMetrics& m, RoundHook hook)
      : paths(std::move(p)),
        store(st),
        snapshots(s),
        self_metrics(m),
        on_round(std::move(hook)),
        watchdog_fd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC)) {
    if (watchdog_fd < 0) {
      spdlog::error(
          "collector watchdog unavailable: a hung collector will hold up those after it "
          "error=\"timerfd_create: {}\"",
          std::strerror(errno));
    }
  }
  ~State() {
    if (watchdog_fd >= 0) {
      ::close(watchdog_fd);
    }
  }
  State(const State&) = delete;
  State& operator=(const State&) = delete;

  asio::io_context io;        // the pool: network collectors and hand-overs
  asio::io_context local_io;  // the local groups, run by one thread at a time
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> local_work;
  std::vector<std::thread> threads;
  std::thread runner;  // runs local_io; guarded by mu once started
  std::atomic<uint64_t> runner_generation{1};
  std::vector<std::unique_ptr<Slot>> slots;
  HostPaths paths;
  Store& store;
  SnapshotRegistry& snapshots;
  SelfMetrics& self_metrics;
  RoundHook on_round;                               // may be empty
  std::shared_ptr<const ScrapePhase> scrape_phase;  // null: rounds keep their random phase
  std::vector<std::unique_ptr<Group>> groups;
  // The watchdog: a thread asleep on a timer that is armed for the earliest moment a running
  // cycle could pass one of its limits, and disarmed when nothing runs, so that it never wakes
  // while the collectors are healthy (a periodic look cost an idle agent more CPU than most of
  // its collectors; see watchdogLoop).
  int watchdog_fd;  // a timerfd on CLOCK_MONOTONIC (steady_clock's), -1 if none
  std::thread watchdog_thread;
  std::mutex watchdog_mu;
  int64_t watchdog_armed_ns = 0;  // the absolute time it is armed for, 0 if not; watchdog_mu

  std::atomic<bool> stopping{false};
  std::atomic<std::size_t> first_round{0};
  std::mutex mu;
  std::condition_variable idle_cv;
  int in_flight = 0;           // guarded by mu
  bool awaiting_idle = false;  // guarded by mu: stop() waits on idle_cv

  // A cycle that starts within kStampToleranceMs of one interval after the last one is stamped
  // exactly one interval after it, as Prometheus aligns its scrapes' timestamps
  // (--scrape.timestamp-tolerance): a timer's wake-ups jitter by a millisecond or so, and a
  // regular timestamp costs the store one bit a sample instead of about ten. As there, not for
  // intervals under 200 ms, where 2 ms is more than 1 % of one. A cycle that is later or
  // earlier than that (a skipped round, a clock step) is stamped as it is.
  static int64_t stampFor(Slot& slot, int64_t now_ms) {
    const int64_t interval_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(slot.settings.interval).count();
    const int64_t expected = slot.last_stamp_ms + interval_ms;
    const int64_t stamp = slot.last_stamp_ms != 0 && interval_ms >= 100 * kStampToleranceMs &&
                                  std::abs(now_ms - expected) <= kStampToleranceMs
                              ? expected
                              : now_ms;
    slot.last_stamp_ms = stamp;
    return stamp;
  }

  void runCycle(Slot& slot) {
    {
      std::lock_guard lock(mu);
      if (stopping.load()) {
        return;
      }
      ++in_flight;
    }
    const auto started = Clock::now();
    const int64_t timestamp_ms =
        stampFor(slot, std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count());
    slot.timeout_reported.store(false);
    slot.handed_off.store(false);
    slot.runner_replaced.store(false);
    slot.running_on.store(t_runner);
    slot.running_since_ns.store(toNs(started));
    const CycleLimits limits = limitsOf(slot, toNs(started));
    armWatchdogBy(
        earliest(earliest(limits.timeout_ns, limits.hand_off_ns), limits.replace_runner_ns));

    std::shared_ptr<MetricBatch> batch = std::move(slot.recycled);
    if (batch == nullptr) {
      batch = std::make_shared<MetricBatch>();
    }
    CollectContext ctx{started + slot.settings.timeout,
                       &paths,
                       slot.spare.get(),
                       &store,
                       timestamp_ms,
                       (slot.group->id << 32) | (slot.running_round.load() & 0xffffffff)};
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
      batch->sealLayout();
      store.appendBatch(slot.source, timestamp_ms, *batch);
      // Counted now, while its families are in the cache, for when it comes back.
      const std::size_t series = batch->seriesCount();
      auto replaced = snapshots.publish(slot.snapshot_source, std::move(batch));
      const std::size_t replaced_series = std::exchange(slot.published_series, series);
      // Once no reader holds the batch it replaced, that batch is the collector's to reuse.
      slot.spare = nullptr;
      if (replaced.use_count() == 1) {
        auto batch_back = std::const_pointer_cast<MetricBatch>(replaced);
        if (slot.collector->takesSpareBatches()) {
          slot.spare = std::move(batch_back);
        } else if (replaced_series <= kRecycleMaxSeries) {
          batch_back->recycle();  // its samples freed now, not when the next cycle starts
          slot.recycled = std::move(batch_back);
        }
      }
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
    }

    std::lock_guard lock(mu);
    --in_flight;
    if (awaiting_idle) {
      idle_cv.notify_all();
    }
  }

  // Waits for `group`'s timer, then starts the round it was armed for unless a scrape has
  // started it meanwhile. Started before the timer is armed again (see RoundTimer::wait).
  void awaitTimer(Group& group) {
    if (stopping.load()) {
      return;
    }
    auto self = shared_from_this();
    Group* g = &group;
    group.timer->wait([self, g](bool fired) {
      if (fired) {
        const bool unmoved = g->timer->consume();
        self->awaitTimer(*g);
        if (unmoved) {
          self->startRound(*g, false);
        }
      }
    });
  }

  // Starts a round of `group` if it is due (see takeRound), on this thread: arms the timer for
  // the next one first, so that rounds stay on time while this one runs, then runs every slot
  // of the group that is free.
  void startRound(Group& group, bool by_scrape) {
    if (stopping.load()) {
      return;
    }
    const auto round = takeRound(group, by_scrape);
    if (!round) {
      return;
    }
    if (group.local && on_round) {
      on_round();
    }
    runRound(group, *round);
  }

  // The number of a round of `group` to run now, if one is due, with the timer armed for the
  // next. By its timer (`by_scrape` false), a round is due once the timer's setting has passed,
  // so that a timer that fired just as a scrape moved it runs nothing; by a scrape, when the
  // round was set to run on the next scrape, it is at most kOnScrapeSlack away, and no cycle of
  // the group is still running.
  std::optional<uint64_t> takeRound(Group& group, bool by_scrape) {
    std::lock_guard lock(group.mu);
    const auto now = Clock::now();
    const bool first = group.round.load() == 0;
    if (by_scrape ? !group.on_scrape || group.due - now > kOnScrapeSlack || anyBusy(group)
                  : !first && now < group.armed) {
      return std::nullopt;
    }
    const uint64_t round = group.round.fetch_add(1) + 1;
    scheduleNextRound(group, now);
    group.timer->armAt(group.armed);
    return round;
  }

  // Whether a cycle of `group` still runs: a hung collector is left to the collecting threads,
  // which the watchdog can replace, rather than a scrape's.
  static bool anyBusy(const Group& group) {
    return std::any_of(group.slots.begin(), group.slots.end(),
                       [](const Slot* slot) { return slot->busy.load(); });
  }

  // When `group`'s next round is due, its last having started at `now`: one interval on from
  // its anchor's phase. For a local group whose interval and the followed scraper's fit (one a
  // whole multiple of the other), the anchor is moved, when it is more than kOnScrapeSlack off,
  // to the phase of the scrapes, and the next round is then at least half an interval away, so
  // that rounds never run back to back; a round that then falls on a scrape is left for the
  // scrape to run (see scrapeArrived), the timer armed a little later in case it does not come.
  void scheduleNextRound(Group& group, Clock::time_point now) {
    // The first anchor + k * interval, for any whole k, at or after `earliest`.
    const auto first_at_or_after = [&](Clock::time_point anchor, Clock::time_point earliest) {
      Clock::time_point t = anchor + ((earliest - anchor) / group.interval) * group.interval;
      return t < earliest ? t + group.interval : t;
    };
    // `d` modulo `m`, in (-m/2, m/2].
    const auto centred = [](std::chrono::nanoseconds d, std::chrono::nanoseconds m) {
      d %= m;
      if (d > m / 2) {
        d -= m;
      } else if (d <= -m / 2) {
        d += m;
      }
      return d;
    };
    // After the round just started, which a scrape may have started a little before its time.
    group.due =
        first_at_or_after(group.anchor, std::max(now, group.due) + std::chrono::nanoseconds(1));
    group.on_scrape = false;
    group.armed = group.due;
    if (!group.local || scrape_phase == nullptr) {
      return;
    }
    const auto scrape = scrape_phase->estimate(now);
    if (!scrape || !commensurate(scrape->period, group.interval)) {
      return;
    }
    const auto phase_step = std::min(scrape->period, group.interval);
    if (std::chrono::abs(centred(group.due - scrape->next, phase_step)) > kOnScrapeSlack) {
      group.anchor = scrape->next;
      group.due = first_at_or_after(group.anchor, now + group.interval / 2);
    }
    if (std::chrono::abs(centred(group.due - scrape->next, scrape->period)) <= kOnScrapeSlack) {
      group.on_scrape = true;
      // A scraper's arrivals jitter by up to a twentieth of its interval (see ScrapePhase).
      group.armed =
          group.due + std::clamp<std::chrono::nanoseconds>(
                          scrape->period / 10, kOnScrapeSlack,
                          std::max<std::chrono::nanoseconds>(kOnScrapeSlack, group.interval / 4));
    }
  }

  // Whether a scrape interval and a collection interval are, within a scraper's jitter, whole
  // multiples of one another.
  static bool commensurate(std::chrono::nanoseconds a, std::chrono::nanoseconds b) {
    const auto [small, big] = std::minmax(a, b);
    if (small.count() <= 0) {
      return false;
    }
    const int64_t n = (big + small / 2) / small;
    const auto off = big - n * small;
    return std::chrono::abs(off) <= std::max<std::chrono::nanoseconds>(small / 50, kMinMismatch);
  }

  // Runs the slots of `round` that no other thread has claimed, in order. Called by the round's
  // timer and, when a slot hangs, by the thread the watchdog hands the rest to.
  void runRound(Group& group, uint64_t round) {
    for (Slot* slot : group.slots) {
      if (stopping.load()) {
        return;
      }
      uint64_t claimed = slot->claimed_round.load();
      bool mine = false;
      while (claimed < round && !mine) {
        mine = slot->claimed_round.compare_exchange_weak(claimed, round);
      }
      if (!mine) {
        continue;  // run (or being run) for this round by another thread
      }
      if (slot->busy.exchange(true)) {
        // Its cycle of an earlier round is still running: an overloaded or hung collector
        // skips rounds rather than running back to back, and the skips are counted.
        slot->health.skipped();
        continue;
      }
      slot->running_round.store(round);
      runCycle(*slot);
      slot->busy.store(false);
    }
    rearmWatchdog();  // usually disarms it: nothing runs any more
  }

  // The local runner: runs local_io until vigil stops or the watchdog replaces it (it then
  // exits when the handler it hung in returns).
  void startRunner(uint64_t generation) {
    auto self = shared_from_this();
    runner = std::thread([self, generation] {
      nameThisThread("collect");
      t_runner = generation;
      while (!self->stopping.load() && self->runner_generation.load() == generation) {
        if (self->local_io.run_one() == 0) {
          break;  // stopped
        }
      }
    });
  }

  void replaceRunner() {
    std::lock_guard lock(mu);
    if (stopping.load()) {
      return;
    }
    runner.detach();  // hung in a collector; it exits on its own when the call returns
    startRunner(runner_generation.fetch_add(1) + 1);
  }

  // The moments a cycle that started at `since` passes the watchdog's limits, 0 where a limit
  // does not apply: its timeout (reported), the hand-over of the rest of its round to the pool
  // (when its group has others), and the replacement of the local runner it hangs (when it
  // runs on the current one; half an interval, so that the next round is not late).
  struct CycleLimits {
    int64_t timeout_ns = 0;
    int64_t hand_off_ns = 0;
    int64_t replace_runner_ns = 0;
  };
  CycleLimits limitsOf(const Slot& slot, int64_t since) const {
    CycleLimits limits;
    limits.timeout_ns =
        since + std::chrono::duration_cast<std::chrono::nanoseconds>(slot.settings.timeout).count();
    if (slot.group->slots.size() > 1) {
      limits.hand_off_ns = since + kHandOffAfterNs;
    }
    if (slot.running_on.load() == runner_generation.load()) {
      limits.replace_runner_ns =
          since + std::max(kHandOffAfterNs, slot.group->interval.count() / 2);
    }
    return limits;
  }

  // The earliest of `at` and `candidate`, where 0 means none.
  static int64_t earliest(int64_t at, int64_t candidate) {
    if (candidate == 0) {
      return at;
    }
    return at == 0 ? candidate : std::min(at, candidate);
  }

  // The earliest moment a running cycle passes a limit the watchdog has not acted on yet; 0 if
  // there is none.
  int64_t nextWatchdogDeadline() const {
    int64_t next = 0;
    for (const auto& slot : slots) {
      const int64_t since = slot->running_since_ns.load();
      if (since == 0) {
        continue;
      }
      const CycleLimits limits = limitsOf(*slot, since);
      if (!slot->timeout_reported.load()) {
        next = earliest(next, limits.timeout_ns);
      }
      if (!slot->handed_off.load()) {
        next = earliest(next, limits.hand_off_ns);
      }
      if (!slot->runner_replaced.load()) {
        next = earliest(next, limits.replace_runner_ns);
      }
    }
    return next;
  }

  // Sets the timer (watchdog_mu held); 0 disarms it.
  void setWatchdogLocked(int64_t at_ns) {
    if (watchdog_fd < 0 || at_ns == watchdog_armed_ns) {
      return;
    }
    if (at_ns == 0) {
      const itimerspec disarmed{};
      ::timerfd_settime(watchdog_fd, 0, &disarmed, nullptr);
    } else {
      setTimerFdAt(watchdog_fd, Clock::time_point(std::chrono::nanoseconds(at_ns)));
    }
    watchdog_armed_ns = at_ns;
  }

  // A cycle started that needs a look at `at_ns` at the latest: armed for then unless armed
  // earlier already (the round's first cycle arms it; the others find it armed).
  void armWatchdogBy(int64_t at_ns) {
    std::lock_guard lock(watchdog_mu);
    if (!stopping.load() && (watchdog_armed_ns == 0 || at_ns < watchdog_armed_ns)) {
      setWatchdogLocked(at_ns);
    }
  }

  // Armed again from what runs now: for the earliest limit, or disarmed.
  void rearmWatchdog() {
    std::lock_guard lock(watchdog_mu);
    if (!stopping.load()) {
      setWatchdogLocked(nextWatchdogDeadline());
    }
  }

  void startWatchdog() {
    if (watchdog_fd < 0) {
      return;
    }
    auto self = shared_from_this();
    watchdog_thread = std::thread([self] {
      nameThisThread("watchdog");
      self->watchdogLoop();
    });
  }

  // Wakes the watchdog's thread to see `stopping` and waits for it to end.
  void stopWatchdog() {
    {
      std::lock_guard lock(watchdog_mu);
      watchdog_armed_ns = 0;
      setWatchdogLocked(1);  // long past: fires at once
    }
    if (watchdog_thread.joinable()) {
      watchdog_thread.join();
    }
  }

  void watchdogLoop() {
    while (true) {
      uint64_t expirations = 0;
      if (::read(watchdog_fd, &expirations, sizeof expirations) < 0 && errno == EINTR) {
        continue;
      }
      if (stopping.load()) {
        return;
      }
      {
        std::lock_guard lock(watchdog_mu);
        watchdog_armed_ns = 0;  // it fired; rearmWatchdog sets what comes next
      }
      checkRunningCycles();
      rearmWatchdog();
    }
  }

  void checkRunningCycles() {
    const int64_t now = toNs(Clock::now());
    auto passed = [now](int64_t limit) { return limit != 0 && now >= limit; };
    for (auto& slot : slots) {
      const int64_t since = slot->running_since_ns.load();
      if (since == 0) {
        continue;
      }
      const CycleLimits limits = limitsOf(*slot, since);
      if (passed(limits.timeout_ns) && !slot->timeout_reported.exchange(true)) {
        slot->health.timedOut();
        spdlog::warn("collector timed out collector={} timeout={}", slot->settings.name,
                     formatDuration(slot->settings.timeout));
      }
      // Each once per cycle of the slot.
      if (passed(limits.hand_off_ns) && !slot->handed_off.exchange(true)) {
        Group* g = slot->group;
        const uint64_t round = slot->running_round.load();
        auto self = shared_from_this();
        asio::post(io, [self, g, round] { self->runRound(*g, round); });
      }
      if (passed(limits.replace_runner_ns) && !slot->runner_replaced.exchange(true)) {
        replaceRunner();
      }
    }
  }
};

CollectorScheduler::CollectorScheduler(std::vector<Entry> entries, HostPaths paths, Store& store,
                                       SnapshotRegistry& snapshots, SelfMetrics& self_metrics,
                                       RoundHook on_round)
    : state_(std::make_shared<State>(std::move(paths), store, snapshots, self_metrics,
                                     std::move(on_round))) {
  std::map<std::chrono::nanoseconds, Group*> shared;  // by interval
  for (auto& e : entries) {
    auto slot = std::make_unique<Slot>();
    slot->settings = std::move(e.settings);
    slot->collector = std::move(e.collector);
    slot->source_name = "collector/" + slot->settings.name;
    slot->source = store.registerSource(slot->source_name);
    slot->snapshot_source = snapshots.source(slot->source_name);
    slot->health = self_metrics.collectorHealth(slot->settings.name);
    const auto interval = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::max<std::chrono::nanoseconds>(slot->settings.interval, std::chrono::milliseconds(1)));
    // A network collector gets a group of its own; the others share one per interval.
    Group* group = e.waits_on_network ? nullptr : shared[interval];
    if (group == nullptr) {
      static std::atomic<uint64_t> next_group_id{1};
      auto created = std::make_unique<Group>();
      created->id = next_group_id.fetch_add(1);
      created->interval = interval;
      created->local = !e.waits_on_network;
      created->timer = std::make_unique<RoundTimer>(created->local ? state_->local_io : state_->io);
      group = created.get();
      state_->groups.push_back(std::move(created));
      if (group->local) {
        shared[interval] = group;
      }
    }
    slot->group = group;
    group->slots.push_back(slot.get());
    state_->slots.push_back(std::move(slot));
  }
}

CollectorScheduler::~CollectorScheduler() { stop(std::chrono::milliseconds(1000)); }

void CollectorScheduler::followScrapes(std::shared_ptr<const ScrapePhase> phase) {
  state_->scrape_phase = std::move(phase);
}

void CollectorScheduler::scrapeArrived() {
  const auto keep = state_;  // alive while its rounds run here, whatever stops meanwhile
  for (auto& group : keep->groups) {
    if (group->local) {
      keep->startRound(*group, true);
    }
  }
}

void CollectorScheduler::start() {
  State& s = *state_;
  s.work.emplace(s.io.get_executor());
  s.local_work.emplace(s.local_io.get_executor());
  std::mt19937_64 rng{std::random_device{}()};
  const auto now = Clock::now();
  // One random offset per interval for the whole agent: agents on many nodes do not wake in
  // step, while the collectors of one agent that share an interval wake together, one wake-up
  // instead of one per collector.
  std::map<std::chrono::nanoseconds, Clock::time_point> anchors;
  for (auto& group : s.groups) {
    auto [it, inserted] = anchors.try_emplace(group->interval);
    if (inserted) {
      std::uniform_int_distribution<int64_t> jitter(0, group->interval.count() - 1);
      it->second = now + std::chrono::nanoseconds(jitter(rng));
    }
    group->anchor = it->second;
    // The first round at once, the next at the anchor.
    Group* raw = group.get();
    auto self = state_;
    asio::post(raw->local ? s.local_io : s.io, [self, raw] {
      self->awaitTimer(*raw);
      self->startRound(*raw, false);
    });
  }
  s.startWatchdog();
  {
    std::lock_guard lock(s.mu);
    s.startRunner(s.runner_generation.load());
  }
  // The pool: enough threads that a hung collector leaves the others (and the watchdog)
  // running, few enough to stay small.
  const auto network_groups =
      std::count_if(s.groups.begin(), s.groups.end(), [](const auto& g) { return !g->local; });
  const std::size_t threads = std::clamp<std::size_t>(network_groups + 1, 2, 4);
  for (std::size_t i = 0; i < threads; ++i) {
    auto self = state_;
    s.threads.emplace_back([self, i] {
      nameThisThread("pool", static_cast<int>(i));
      self->io.run();
    });
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
    s.awaiting_idle = true;
    idle = s.idle_cv.wait_for(lock, grace, [&] { return s.in_flight == 0; });
  }
  s.stopWatchdog();
  s.work.reset();
  s.local_work.reset();
  s.io.stop();
  s.local_io.stop();
  std::thread runner;
  {
    std::lock_guard lock(s.mu);
    runner = std::move(s.runner);  // the watchdog replaces it no more: stopping is set
  }
  if (runner.joinable()) {
    s.threads.push_back(std::move(runner));
  }
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
    for (auto& group : s.groups) {
      group->timer->cancel();
    }
    s.io.restart();
    s.io.poll();
    s.local_io.restart();
    s.local_io.poll();
  }
  return idle;
}

bool CollectorScheduler::firstRoundDone() const {
  return state_->first_round.load() >= state_->slots.size();
}

}  // namespace vigil
