#pragma once
// The latest published batch of every collector. Collectors replace their batch after each
// cycle; the /metrics handler takes a consistent set of pointers and renders outside the lock.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vigil/metric.h"

namespace vigil {

class SnapshotRegistry {
 public:
  using Snapshot = std::shared_ptr<const MetricBatch>;

  /// Replaces the source's batch; returns the one it replaced (null if none).
  Snapshot publish(const std::string& source, Snapshot batch) {
    std::lock_guard lock(mu_);
    Snapshot& slot = snapshots_[source];
    std::swap(slot, batch);
    return batch;
  }
  /// Drops every source not in `keep` (collectors disabled by a reload).
  void retainOnly(const std::vector<std::string>& keep) {
    std::lock_guard lock(mu_);
    for (auto it = snapshots_.begin(); it != snapshots_.end();) {
      bool kept = false;
      for (const auto& k : keep) {
        kept = kept || k == it->first;
      }
      it = kept ? std::next(it) : snapshots_.erase(it);
    }
  }
  /// The source whose batch has a family called `name`, other than `except`, and that
  /// family's type; nullopt if there is none.
  std::optional<std::pair<std::string, MetricType>> findFamily(const std::string& name,
                                                               const std::string& except) const {
    std::lock_guard lock(mu_);
    for (const auto& [source, snapshot] : snapshots_) {
      if (source == except || snapshot == nullptr) {
        continue;
      }
      for (const MetricFamily& f : snapshot->families()) {
        if (f.name == name) {
          return std::make_pair(source, f.type);
        }
      }
    }
    return std::nullopt;
  }
  std::vector<Snapshot> all() const {
    std::lock_guard lock(mu_);
    std::vector<Snapshot> out;
    out.reserve(snapshots_.size());
    for (const auto& [source, snapshot] : snapshots_) {
      out.push_back(snapshot);
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, Snapshot> snapshots_;
};

}  // namespace vigil
