// The probe collector against real HTTP and HTTPS servers on loopback (a test CA and a
// certificate valid two days): blackbox_exporter's metrics, status and body checks, the
// certificate's expiry, an untrusted certificate, and TCP probes.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <thread>

#include "agent/collectors/service/probe_collector.h"
#include "tests/support/process.h"
#include "tests/support/test_ca.h"

using namespace vigil;
using namespace vigil::test;
using namespace std::chrono_literals;

namespace {

struct Server {
  std::unique_ptr<httplib::Server> server;
  int port = 0;
  std::thread thread;
  explicit Server(std::unique_ptr<httplib::Server> s) : server(std::move(s)) {
    server->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("status: ok", "text/plain");
    });
    server->Get("/broken", [](const httplib::Request&, httplib::Response& res) {
      res.status = 503;
      res.set_content("down", "text/plain");
    });
    port = server->bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { server->listen_after_bind(); });
    while (!server->is_running()) {
      std::this_thread::sleep_for(1ms);
    }
  }
  ~Server() {
    server->stop();
    thread.join();
  }
};

std::map<std::string, double> probe(const std::vector<ProbeTarget>& probes) {
  CollectorSettings settings;
  settings.probes = probes;
  auto c = collectors::makeProbeCollector(settings, HostPaths{});
  REQUIRE(c);
  MetricBatch batch;
  CollectContext ctx;
  ctx.deadline = std::chrono::steady_clock::now() + 5s;
  REQUIRE((*c)->collect(ctx, batch).isOk());
  std::map<std::string, double> out;
  for (const auto& f : batch.families()) {
    for (const auto& s : f.samples) {
      std::string key = f.name;
      for (const auto& l : s.labels) {
        key += "|" + l.value;
      }
      out[key] = s.value;
    }
  }
  return out;
}

}  // namespace

TEST_CASE("Probe collector: HTTP status, body, phases", "[probe][integration]") {
  Server http(std::make_unique<httplib::Server>());
  const std::string base = "http://127.0.0.1:" + std::to_string(http.port);
  ProbeTarget ok{base + "/healthz", "", {}, "status: ok", "", false};
  ProbeTarget wrong_body{base + "/healthz", "", {}, "status: degraded", "", false};
  ProbeTarget down{base + "/broken", "", {}, "", "", false};
  ProbeTarget expected_down{base + "/broken", "", {503}, "", "", false};
  const std::string h = base + "/healthz";
  // The same URL with different expectations: each through its own run.
  auto single = [&](const ProbeTarget& p) { return probe({p}); };
  auto a = single(ok);
  CHECK(a["probe_success|" + h] == 1);
  CHECK(a["probe_http_status_code|" + h] == 200);
  CHECK(a["probe_http_ssl|" + h] == 0);
  CHECK(a["probe_duration_seconds|" + h] > 0);
  CHECK(a["probe_http_duration_seconds|processing|" + h] > 0);
  CHECK(a.count("probe_ssl_earliest_cert_expiry|" + h) == 0);
  CHECK(single(wrong_body)["probe_success|" + h] == 0);
  auto b = single(down);
  CHECK(b["probe_success|" + base + "/broken"] == 0);
  CHECK(b["probe_http_status_code|" + base + "/broken"] == 503);
  CHECK(single(expected_down)["probe_success|" + base + "/broken"] == 1);
}

TEST_CASE("Probe collector: HTTPS certificate expiry and trust", "[probe][integration]") {
  TempDir dir;
  const auto certs = makeTestCertificates(dir, 2);
  Server https(std::make_unique<httplib::SSLServer>(certs.cert.c_str(), certs.key.c_str()));
  const std::string url = "https://127.0.0.1:" + std::to_string(https.port) + "/healthz";
  auto trusted = probe({ProbeTarget{url, "", {}, "", certs.ca, false}});
  CHECK(trusted["probe_success|" + url] == 1);
  CHECK(trusted["probe_http_ssl|" + url] == 1);
  CHECK(trusted["probe_http_duration_seconds|tls|" + url] > 0);
  // The server certificate expires in two days: the earliest in the chain.
  const double expiry = trusted["probe_ssl_earliest_cert_expiry|" + url];
  const double in_two_days = static_cast<double>(std::time(nullptr)) + 2 * 86400;
  CHECK(expiry > in_two_days - 3600);
  CHECK(expiry < in_two_days + 3600);
  // Without the test CA the certificate is not trusted: the probe fails.
  CHECK(probe({ProbeTarget{url, "", {}, "", "", false}})["probe_success|" + url] == 0);
  // Unless verification is off (expiry still reported).
  auto insecure = probe({ProbeTarget{url, "", {}, "", "", true}});
  CHECK(insecure["probe_success|" + url] == 1);
  CHECK(insecure["probe_ssl_earliest_cert_expiry|" + url] == expiry);
}

TEST_CASE("Probe collector: TCP", "[probe][integration]") {
  Server http(std::make_unique<httplib::Server>());
  const std::string open = "127.0.0.1:" + std::to_string(http.port);
  const std::string closed = "127.0.0.1:" + std::to_string(freeLoopbackPort());
  auto m =
      probe({ProbeTarget{"", open, {}, "", "", false}, ProbeTarget{"", closed, {}, "", "", false}});
  CHECK(m["probe_success|" + open] == 1);
  CHECK(m["probe_success|" + closed] == 0);
}
