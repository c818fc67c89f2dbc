#pragma once
// A Collector produces one MetricBatch per cycle. The scheduler calls it on its interval from a
// worker thread, never concurrently with itself, and publishes the batch when it returns.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/config.h"
#include "vigil/metric.h"
#include "vigil/status.h"

namespace vigil {

class Store;

struct CollectContext {
  /// Work past this point is wasted: the cycle is already counted as failed.
  std::chrono::steady_clock::time_point deadline;
  const HostPaths* paths = nullptr;
  /// For a collector that takesSpareBatches(): a batch it returned some cycles ago that nothing
  /// references any more, or null. It may move it into `out` and overwrite the values (its
  /// layout() says which shape it has) instead of building every label set again.
  MetricBatch* spare = nullptr;
  /// What every collector has produced so far, for collectors that derive their series from
  /// other collectors' (the cost collector prices the container collector's usage). Read only.
  const Store* store = nullptr;
  /// The time (ms since the epoch) the batch's samples are stored at.
  int64_t timestamp_ms = 0;
  /// Names the round of collection this cycle belongs to, unique in the process; 0 when the
  /// caller runs no rounds. Collectors that read the same file share one read per round.
  uint64_t round = 0;
};

class Collector {
 public:
  virtual ~Collector() = default;
  /// Appends this cycle's samples to `out`, which is empty on entry. Must not throw.
  /// A missing source file is not an error: the metric is simply absent. An error Status means
  /// the cycle failed; whatever was appended before it is still published.
  virtual Status collect(const CollectContext& ctx, MetricBatch& out) = 0;
  /// Whether it wants CollectContext::spare. The others are handed `out` recycled instead
  /// (MetricBatch::recycle()), so that add() takes back last cycle's families and label sets.
  virtual bool takesSpareBatches() const { return false; }
};
using CollectorPtr = std::unique_ptr<Collector>;

/// Knows one kind of collector: its name in the configuration and how to build it.
struct CollectorFactory {
  std::string name;
  bool enabled_by_default = true;
  std::string description;
  std::function<Result<CollectorPtr>(const CollectorSettings&, const HostPaths&)> create;
  std::vector<CollectorOption> options = {};  // its own configuration keys, if any
  /// Talks to other hosts (scrapes, probes, databases): a cycle may take seconds, so it is not
  /// run in turn with the collectors that read this machine.
  bool waits_on_network = false;
};

/// Every collector kind built into vigil, in the order they appear in the configuration.
const std::vector<CollectorFactory>& builtinCollectors();

/// The names and defaults the configuration parser needs.
std::vector<CollectorInfo> builtinCollectorInfo();

}  // namespace vigil
