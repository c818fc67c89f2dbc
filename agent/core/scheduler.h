#pragma once
// Runs every enabled collector on its own interval on a small pool of worker threads, so that a
// slow collector holds up only itself. Each collector's first cycle runs at start; later cycles
// are offset by a random jitter so that vigils on many nodes do not all wake at the same
// instant. Collectors that share an interval and read only this machine wake together and run
// in turn on one thread (see Group in scheduler.cpp).

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "scrape_phase.h"
#include "self_metrics.h"
#include "snapshot_registry.h"
#include "vigil/collector.h"
#include "vigil/store.h"

namespace vigil {

class CollectorScheduler {
 public:
  struct Entry {
    CollectorSettings settings;
    CollectorPtr collector;
    /// Runs on a timer of its own. Collectors that read this machine's state share one wake-up
    /// per interval and run one after another; one that waits on other hosts would hold them
    /// up.
    bool waits_on_network = false;
  };

  /// Called as each round of the collectors that read this machine starts, before any of them
  /// stamps a sample: where the agent looks at its clocks, at no extra wake-up.
  using RoundHook = std::function<void()>;

  /// Each cycle's batch is appended to `store` (source "collector/NAME") and published to
  /// `snapshots` for /metrics.
  CollectorScheduler(std::vector<Entry> entries, HostPaths paths, Store& store,
                     SnapshotRegistry& snapshots, SelfMetrics& self_metrics,
                     RoundHook on_round = {});
  ~CollectorScheduler();
  CollectorScheduler(const CollectorScheduler&) = delete;
  CollectorScheduler& operator=(const CollectorScheduler&) = delete;

  /// Lets the rounds of the collectors that read this machine fall on the scrapes `phase`
  /// expects (when its scrape interval and theirs fit, one a whole multiple of the other)
  /// instead of at a random phase, to be run by scrapeArrived(). Before start().
  void followScrapes(std::shared_ptr<const ScrapePhase> phase);
  /// A scrape of the scraper `phase` follows arrived: runs, on this thread, the rounds due on
  /// it, so that the scrape gets samples taken as it came. A round of local collectors takes
  /// about a millisecond; should one of them hang, the rest of the round is handed on after
  /// 250 ms as on the collecting thread, but this thread waits for the hung one.
  void scrapeArrived();
  void start();
  /// Stops scheduling and waits until in-flight cycles finish or `grace` passes. Returns false
  /// when a cycle was still running; its thread is then left to finish on its own.
  bool stop(std::chrono::milliseconds grace);
  /// True once every collector has finished its first cycle.
  bool firstRoundDone() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace vigil
