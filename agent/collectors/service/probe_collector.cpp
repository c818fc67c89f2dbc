#include "probe_collector.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <re2/re2.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <ctime>
#include <memory>

#include "tcp_client.h"

namespace vigil::collectors {

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kMaxBody = 1 << 20;  // what a health endpoint answers, with room

double secondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Url {
  bool tls = false;
  std::string host;
  std::string port;
  std::string path;
};

Url parseUrl(const std::string& url) {
  Url u;
  u.tls = url.starts_with("https://");
  std::string rest = url.substr(u.tls ? 8 : 7);
  const auto slash = rest.find('/');
  u.path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string hostport = rest.substr(0, slash);
  const auto bracket = hostport.rfind(']');
  const auto colon = hostport.rfind(':');
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    u.host = hostport.substr(0, colon);
    u.port = hostport.substr(colon + 1);
  } else {
    u.host = hostport;
    u.port = u.tls ? "443" : "80";
  }
  return u;
}

int msLeft(Clock::time_point deadline) {
  return static_cast<int>(std::max<int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
}

// Drives a non-blocking OpenSSL call to completion or the deadline.
template <typename Op>
int sslRetry(SSL* ssl, int fd, Clock::time_point deadline, Op op) {
  while (true) {
    const int rc = op();
    if (rc > 0) {
      return rc;
    }
    const int err = SSL_get_error(ssl, rc);
    short events = 0;
    if (err == SSL_ERROR_WANT_READ) {
      events = POLLIN;
    } else if (err == SSL_ERROR_WANT_WRITE) {
      events = POLLOUT;
    } else {
      return rc;
    }
    pollfd p{fd, events, 0};
    if (::poll(&p, 1, msLeft(deadline)) != 1) {
      return -1;
    }
  }
}

std::string sslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) {
    return "TLS handshake failed";
  }
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

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

  ProbeResult probeHttp(const ProbeTarget& p, Clock::time_point deadline) {
    ProbeResult r;
    const auto start = Clock::now();
    const Url u = parseUrl(p.url);
    r.is_tls = u.tls;
    // Resolve on its own to time it (the connect below resolves again, from the cache).
    auto t = Clock::now();
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    std::string host = u.host;
    if (host.size() > 2 && host.front() == '[') {
      host = host.substr(1, host.size() - 2);
    }
    if (::getaddrinfo(host.c_str(), u.port.c_str(), &hints, &found) != 0) {
      r.error = "cannot resolve " + host;
      r.duration = secondsSince(start);
      return r;
    }
    ::freeaddrinfo(found);
    r.resolve = secondsSince(t);
    t = Clock::now();
    TcpClient c;
    if (Status st = c.connect(u.host + ":" + u.port, deadline); !st.isOk()) {
      r.error = st.message();
      r.duration = secondsSince(start);
      return r;
    }
    r.connect = secondsSince(t);
    const std::string request = "GET " + u.path + " HTTP/1.1\r\nHost: " + u.host +
                                "\r\nUser-Agent: vigil-probe\r\nAccept: */*\r\n"
                                "Connection: close\r\n\r\n";
    std::string response;
    Clock::time_point sent;
    Clock::time_point first_byte;
    if (u.tls) {
      if (!exchangeTls(p, host, c.fd(), request, deadline, r, response, sent, first_byte)) {
        r.duration = secondsSince(start);
        return r;
      }
    } else {
      sent = Clock::now();
      if (Status st = c.send(request, deadline); !st.isOk()) {
        r.error = st.message();
        r.duration = secondsSince(start);
        return r;
      }
      bool first = true;
      while (response.size() < kMaxBody) {
        auto chunk = c.readSome(deadline);
        if (!chunk) {
          break;  // closed by the server (Connection: close) or the deadline
        }
        if (first) {
          first_byte = Clock::now();
          first = false;
        }
        response += *chunk;
      }
      if (first) {
        r.error = "no answer";
        r.duration = secondsSince(start);
        return r;
      }
    }
    r.processing = std::chrono::duration<double>(first_byte - sent).count();
    r.transfer = secondsSince(first_byte);
    // "HTTP/1.1 200 OK"
    if (response.starts_with("HTTP/") && response.size() > 12) {
      r.status = std::atoi(response.c_str() + response.find(' ') + 1);
    }
    const auto body_at = response.find("\r\n\r\n");
    const std::string_view body = body_at == std::string::npos
                                      ? std::string_view()
                                      : std::string_view(response).substr(body_at + 4);
    bool ok_status = p.valid_status_codes.empty()
                         ? (r.status >= 200 && r.status < 300)
                         : std::find(p.valid_status_codes.begin(), p.valid_status_codes.end(),
                                     r.status) != p.valid_status_codes.end();
    bool ok_body = true;
    if (!p.body_regex.empty()) {
      RE2 re(p.body_regex, RE2::Quiet);
      ok_body = re.ok() && RE2::PartialMatch(body, re);
    }
    r.success = ok_status && ok_body;
    if (!ok_status) {
      r.error = "status " + std::to_string(r.status);
    } else if (!ok_body) {
      r.error = "body does not match " + p.body_regex;
    }
    r.duration = secondsSince(start);
    return r;
  }

  static bool exchangeTls(const ProbeTarget& p, const std::string& host, int fd,
                          const std::string& request, Clock::time_point deadline, ProbeResult& r,
                          std::string& response, Clock::time_point& sent,
                          Clock::time_point& first_byte) {
    const auto t = Clock::now();
    std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                          &SSL_CTX_free);
    if (!ctx) {
      r.error = "cannot create a TLS context";
      return false;
    }
    if (p.ca_file.empty()) {
      SSL_CTX_set_default_verify_paths(ctx.get());
    } else if (SSL_CTX_load_verify_locations(ctx.get(), p.ca_file.c_str(), nullptr) != 1) {
      r.error = "cannot load ca_file " + p.ca_file;
      return false;
    }
    SSL_CTX_set_verify(ctx.get(), p.insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                       nullptr);
    std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), &SSL_free);
    SSL_set_fd(ssl.get(), fd);
    in6_addr ip6{};
    in_addr ip4{};
    const bool is_ip = ::inet_pton(AF_INET, host.c_str(), &ip4) == 1 ||
                       ::inet_pton(AF_INET6, host.c_str(), &ip6) == 1;
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str());
    } else {
      SSL_set_tlsext_host_name(ssl.get(), host.c_str());
      SSL_set1_host(ssl.get(), host.c_str());
    }
    if (sslRetry(ssl.get(), fd, deadline, [&] { return SSL_connect(ssl.get()); }) <= 0) {
      const long verify = SSL_get_verify_result(ssl.get());
      r.error = verify != X509_V_OK
                    ? std::string("certificate: ") + X509_verify_cert_error_string(verify)
                    : sslError();
      return false;
    }
    r.tls = secondsSince(t);
    // The earliest expiry across the chain the server presented.
    if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl.get())) {
      for (int i = 0; i < sk_X509_num(chain); ++i) {
        std::tm tm{};
        if (ASN1_TIME_to_tm(X509_get0_notAfter(sk_X509_value(chain, i)), &tm) == 1) {
          const double expiry = static_cast<double>(timegm(&tm));
          r.earliest_expiry = r.earliest_expiry == 0 ? expiry : std::min(r.earliest_expiry, expiry);
        }
      }
    }
    sent = Clock::now();
    if (sslRetry(ssl.get(), fd, deadline, [&] {
          return SSL_write(ssl.get(), request.data(), static_cast<int>(request.size()));
        }) <= 0) {
      r.error = "cannot send the request: " + sslError();
      return false;
    }
    char buf[16384];
    bool first = true;
    while (response.size() < kMaxBody) {
      const int n =
          sslRetry(ssl.get(), fd, deadline, [&] { return SSL_read(ssl.get(), buf, sizeof buf); });
      if (n <= 0) {
        break;
      }
      if (first) {
        first_byte = Clock::now();
        first = false;
      }
      response.append(buf, static_cast<std::size_t>(n));
    }
    if (first) {
      r.error = "no answer";
      return false;
    }
    return true;
  }

  std::vector<ProbeTarget> probes_;
};

}  // namespace

Result<CollectorPtr> makeProbeCollector(const CollectorSettings& settings, const HostPaths&) {
  return CollectorPtr(std::make_unique<ProbeCollector>(settings.probes));
}

}  // namespace vigil::collectors
