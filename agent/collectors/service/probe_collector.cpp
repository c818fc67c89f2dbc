#include "probe_collector.h"

#include <re2/re2.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "../common/http_get.h"
#include "../common/tcp_client.h"

namespace vigil::collectors {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxBody = 1 << 20;  // what a health endpoint answers, with room

struct ProbeResult {
  bool success = false;
  double duration = 0;
  int status = 0;
  bool is_tls = false;
  double earliest_expiry = 0;  // Unix seconds, 0 without TLS
  double resolve = 0, connect = 0, tls = 0, processing = 0, transfer = 0;
  std::string error;
};

class ProbeCollector : public Collector {
 public:
  explicit ProbeCollector(std::vector<ProbeTarget> probes) : probes_(std::move(probes)) {}

  Status collect(const CollectContext& ctx, MetricBatch& out) override {
    if (probes_.empty()) {
      return Status::ok();
    }
    auto& success = out.family("probe_success", "Displays whether or not the probe was a success",
                               MetricType::kGauge);
    auto& duration =
        out.family("probe_duration_seconds",
                   "Returns how long the probe took to complete in seconds", MetricType::kGauge);
    for (const auto& p : probes_) {
      const std::string target = p.url.empty() ? p.tcp : p.url;
      const ProbeResult r = p.url.empty() ? probeTcp(p, ctx.deadline) : probeHttp(p, ctx.deadline);
      if (!r.success) {
        spdlog::debug("probe failed target={} error=\"{}\"", target, r.error);
      }
      MetricBatch::add(success, {{"target", target}}, r.success ? 1 : 0);
      MetricBatch::add(duration, {{"target", target}}, r.duration);
      if (p.url.empty()) {
        continue;
      }
      MetricBatch::add(
          out.family("probe_http_status_code", "Response HTTP status code", MetricType::kGauge),
          {{"target", target}}, r.status);
      MetricBatch::add(
          out.family("probe_http_ssl", "Indicates if SSL was used for the final redirect",
                     MetricType::kGauge),
          {{"target", target}}, r.is_tls ? 1 : 0);
      auto& phases = out.family("probe_http_duration_seconds",
                                "Duration of http request by phase, summed over all redirects",
                                MetricType::kGauge);
      for (auto [phase, v] : {std::pair{"resolve", r.resolve}, std::pair{"connect", r.connect},
                              std::pair{"tls", r.tls}, std::pair{"processing", r.processing},
                              std::pair{"transfer", r.transfer}}) {
        MetricBatch::add(phases, {{"phase", phase}, {"target", target}}, v);
      }
      if (r.is_tls && r.earliest_expiry > 0) {
        MetricBatch::add(
            out.family("probe_ssl_earliest_cert_expiry",
                       "Returns last SSL chain expiry in unixtime", MetricType::kGauge),
            {{"target", target}}, r.earliest_expiry);
      }
    }
    return Status::ok();
  }

 private:
  static ProbeResult probeTcp(const ProbeTarget& p, Clock::time_point deadline) {
    ProbeResult r;
    const auto start = Clock::now();
    TcpClient c;
    Status st = c.connect(p.tcp, deadline);
    r.success = st.isOk();
    r.error = st.message();
    r.duration = secondsSince(start);
    return r;
  }

  static ProbeResult probeHttp(const ProbeTarget& p, Clock::time_point deadline) {
    ProbeResult r;
    const auto start = Clock::now();
    HttpGetOptions options;
    options.ca_file = p.ca_file;
    options.insecure_skip_verify = p.insecure_skip_verify;
    options.max_bytes = kMaxBody;
    options.user_agent = "vigil-probe";
    const HttpGetResult g = httpGet(p.url, options, deadline);
    r.duration = secondsSince(start);
    r.is_tls = g.tls;
    r.earliest_expiry = g.earliest_expiry;
    r.resolve = g.resolve;
    r.connect = g.connect;
    r.tls = g.tls_handshake;
    r.processing = g.processing;
    r.transfer = g.transfer;
    r.status = g.code;
    if (!g.status.isOk()) {
      r.error = g.status.message();
      return r;
    }
    const bool ok_status = p.valid_status_codes.empty()
                               ? (r.status >= 200 && r.status < 300)
                               : std::find(p.valid_status_codes.begin(), p.valid_status_codes.end(),
                                           r.status) != p.valid_status_codes.end();
    bool ok_body = true;
    if (!p.body_regex.empty()) {
      RE2 re(p.body_regex, RE2::Quiet);
      ok_body = re.ok() && RE2::PartialMatch(g.body, re);
    }
    r.success = ok_status && ok_body;
    if (!ok_status) {
      r.error = "status " + std::to_string(r.status);
    } else if (!ok_body) {
      r.error = "body does not match " + p.body_regex;
    }
    return r;
  }

  std::vector<ProbeTarget> probes_;
};

}  // namespace

Result<CollectorPtr> makeProbeCollector(const CollectorSettings& settings, const HostPaths&) {
  return CollectorPtr(std::make_unique<ProbeCollector>(settings.probes));
}

}  // namespace vigil::collectors
