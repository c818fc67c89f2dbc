// The `push` collector: what was pushed to /metrics/job/..., into the store and /metrics.
#include "push_collector.h"

#include "push_registry.h"

namespace vigil::collectors {

namespace {

class PushCollector : public Collector {
 public:
  Status collect(const CollectContext&, MetricBatch& out) override {
    PushRegistry::instance().snapshot(out);
    return Status::ok();
  }
};

}  // namespace

Result<CollectorPtr> makePushCollector(const CollectorSettings&, const HostPaths&) {
  return CollectorPtr(std::make_unique<PushCollector>());
}

}  // namespace vigil::collectors
