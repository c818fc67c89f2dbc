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

  /// Where one source publishes: taken once (a collector's slot keeps it), so that publishing
  /// each cycle finds its place without looking the name up.
  struct Source {
    Snapshot snapshot;  // guarded by the registry's lock
  };
  using SourceHandle = std::shared_ptr<Source>;

  /// The source's place, made on first use.
  SourceHandle source(const std::string& name) {
    std::lock_guard lock(mu_);
    SourceHandle& place = sources_[name];
    if (place == nullptr) {
      place = std::make_shared<Source>();
      reorder();
    }
    return place;
  }
  /// Replaces the source's batch; returns the one it replaced (null if none). A handle whose
  /// source retainOnly() dropped since (a collector that outlived a reload) publishes to no one.
  Snapshot publish(const SourceHandle& source, Snapshot batch) {
    std::lock_guard lock(mu_);
    std::swap(source->snapshot, batch);
    return batch;
  }
  Snapshot publish(const std::string& name, Snapshot batch) {
    return publish(source(name), std::move(batch));
  }
  /// Drops every source not in `keep` (collectors disabled by a reload).
  void retainOnly(const std::vector<std::string>& keep) {
    std::lock_guard lock(mu_);
    for (auto it = sources_.begin(); it != sources_.end();) {
      bool kept = false;
      for (const auto& k : keep) {
        kept = kept || k == it->first;
      }
      it = kept ? std::next(it) : sources_.erase(it);
    }
    reorder();
  }
  /// The source whose batch has a family called `name`, other than `except`, and that
  /// family's type; nullopt if there is none.
  std::optional<std::pair<std::string, MetricType>> findFamily(const std::string& name,
                                                               const std::string& except) const {
    std::lock_guard lock(mu_);
    for (const auto& [source, place] : sources_) {
      if (source == except || place->snapshot == nullptr) {
        continue;
      }
      for (const MetricFamily& f : place->snapshot->families()) {
        if (f.name == name) {
          return std::make_pair(source, f.type);
        }
      }
    }
    return std::nullopt;
  }
  /// Every source's batch, in the order of their names.
  std::vector<Snapshot> all() const {
    std::lock_guard lock(mu_);
    std::vector<Snapshot> out;
    out.reserve(ordered_.size());
    for (const Source* place : ordered_) {
      if (place->snapshot != nullptr) {
        out.push_back(place->snapshot);
      }
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, SourceHandle> sources_;
  // The same places in the same order, for all() on every scrape: walking a vector rather
  // than the map's nodes.
  std::vector<const Source*> ordered_;

  void reorder() {
    ordered_.clear();
    for (const auto& [name, place] : sources_) {
      ordered_.push_back(place.get());
    }
  }
};

}  // namespace vigil
