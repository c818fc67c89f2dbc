// node_timex_* from adjtimex(2) in read-only mode: the kernel's view of clock synchronisation,
// which the clock alerts are written against.
#include <sys/timex.h>

#include <cerrno>
#include <cstring>

#include "node_collectors.h"

namespace vigil::collectors::node {
namespace {

class TimexCollector final : public Collector {
 public:
  Status collect(const CollectContext&, MetricBatch& out) override {
    struct timex tx {};
    tx.modes = 0;  // read only: needs no privilege
    const int state = ::adjtimex(&tx);
    if (state == -1) {
      return unavailable(std::string("adjtimex: ") + std::strerror(errno));
    }
    // Offsets are in microseconds, or nanoseconds when the kernel runs in nano mode.
    const double divisor = (tx.status & STA_NANO) != 0 ? 1e9 : 1e6;
    auto gauge = [&](const char* name, const char* help, double v) {
      out.addSingle(name, help, MetricType::kGauge, v);
    };
    auto counter = [&](const char* name, const char* help, double v) {
      out.addSingle(name, help, MetricType::kCounter, v);
    };
    gauge("node_timex_sync_status", "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
          state == TIME_ERROR ? 0 : 1);
    gauge("node_timex_offset_seconds", "Time offset in between local system and reference clock.",
          static_cast<double>(tx.offset) / divisor);
    gauge("node_timex_frequency_adjustment_ratio", "Local clock frequency adjustment.",
          1 + static_cast<double>(tx.freq) / 65536 / 1e6);
    gauge("node_timex_maxerror_seconds", "Maximum error in seconds.",
          static_cast<double>(tx.maxerror) / 1e6);
    gauge("node_timex_estimated_error_seconds", "Estimated error in seconds.",
          static_cast<double>(tx.esterror) / 1e6);
    gauge("node_timex_status", "Value of the status array bits.", static_cast<double>(tx.status));
    gauge("node_timex_loop_time_constant", "Phase-locked loop time constant.",
          static_cast<double>(tx.constant));
    gauge("node_timex_tick_seconds", "Seconds between clock ticks.",
          static_cast<double>(tx.tick) / 1e6);
    gauge("node_timex_pps_frequency_hertz", "Pulse per second frequency.",
          static_cast<double>(tx.ppsfreq) / 65536 / 1e6);
    gauge("node_timex_pps_jitter_seconds", "Pulse per second jitter.",
          static_cast<double>(tx.jitter) / divisor);
    gauge("node_timex_pps_shift_seconds", "Pulse per second interval duration.",
          static_cast<double>(tx.shift));
    gauge("node_timex_pps_stability_hertz",
          "Pulse per second stability, average of recent frequency changes.",
          static_cast<double>(tx.stabil) / 65536 / 1e6);
    counter("node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.",
            static_cast<double>(tx.jitcnt));
    counter("node_timex_pps_calibration_total", "Pulse per second count of calibration intervals.",
            static_cast<double>(tx.calcnt));
    counter("node_timex_pps_error_total", "Pulse per second count of calibration errors.",
            static_cast<double>(tx.errcnt));
    counter("node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            static_cast<double>(tx.stbcnt));
    gauge("node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset.",
          static_cast<double>(tx.tai));
    return Status::ok();
  }
};

}  // namespace

Result<CollectorPtr> makeTimexCollector(const CollectorSettings&, const HostPaths&) {
  return CollectorPtr(std::make_unique<TimexCollector>());
}

}  // namespace vigil::collectors::node
