// The probe collector against real HTTP and HTTPS servers on loopback (a test CA and a
// certificate valid two days): blackbox_exporter's metrics, status and body checks, the
// certificate's expiry, an untrusted certificate, and TCP probes.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <map>
#include <regex>
#include <set>
#include <sstream>
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

TEST_CASE("Probe collector: the series of a real blackbox_exporter 0.23", "[probe][integration]") {
  // Debian's prometheus-blackbox-exporter and vigil probe the same servers: each family vigil
  // exports has blackbox's labels (vigil adds `target`) and, where nothing varies from one
  // probe to the next, its values.
  TempDir dir;
  const auto certs = makeTestCertificates(dir, 2);
  Server http(std::make_unique<httplib::Server>());
  Server https(std::make_unique<httplib::SSLServer>(certs.cert.c_str(), certs.key.c_str()));
  dir.write("blackbox.yml",
            "modules:\n  http:\n    prober: http\n  https:\n    prober: http\n"
            "    http:\n      tls_config:\n        ca_file: " +
                certs.ca + "\n  tcp:\n    prober: tcp\n");
  const int port = freeLoopbackPort();
  ChildProcess blackbox(
      {"prometheus-blackbox-exporter", "--config.file=" + dir.file("blackbox.yml"),
       "--web.listen-address=127.0.0.1:" + std::to_string(port)},
      dir.file("blackbox.log"));
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  REQUIRE(eventually(10s, [&] {
    return runCommand({"curl", "-sf", base + "/-/healthy"}).exit_code == 0;
  }));
  struct Case {
    ProbeTarget target;
    std::string module;
  };
  const std::string h = "http://127.0.0.1:" + std::to_string(http.port);
  const std::string s = "https://127.0.0.1:" + std::to_string(https.port) + "/healthz";
  const std::string t = "127.0.0.1:" + std::to_string(http.port);
  const std::vector<Case> cases = {
      {ProbeTarget{h + "/healthz", "", {}, "", "", false}, "http"},
      {ProbeTarget{h + "/broken", "", {}, "", "", false}, "http"},
      {ProbeTarget{s, "", {}, "", certs.ca, false}, "https"},
      {ProbeTarget{"", t, {}, "", "", false}, "tcp"},
  };
  const std::set<std::string> steady = {"probe_success", "probe_http_status_code", "probe_http_ssl",
                                        "probe_ssl_earliest_cert_expiry"};
  for (const Case& c : cases) {
    const std::string target = c.target.url.empty() ? c.target.tcp : c.target.url;
    INFO(target);
    const CommandResult bb =
        runCommand({"curl", "-sfG", base + "/probe", "--data-urlencode", "target=" + target,
                    "--data-urlencode", "module=" + c.module});
    REQUIRE(bb.exit_code == 0);
    // blackbox's series as "name|label values..." (Go writes labels sorted by name).
    std::map<std::string, double> theirs;
    std::istringstream lines(bb.output);
    const std::regex label(R"re([a-zA-Z_][a-zA-Z0-9_]*="((?:[^"\\]|\\.)*)")re");
    for (std::string line; std::getline(lines, line);) {
      if (line.empty() || line[0] == '#') {
        continue;
      }
      const std::string series = line.substr(0, line.rfind(' '));
      std::string key = series.substr(0, series.find('{'));
      for (std::sregex_iterator it(series.begin(), series.end(), label), end; it != end; ++it) {
        key += "|" + (*it)[1].str();
      }
      theirs[key] = std::strtod(line.c_str() + line.rfind(' ') + 1, nullptr);
    }
    std::string differences;
    for (const auto& [ours_key, value] : probe({c.target})) {
      const std::string key = ours_key.substr(0, ours_key.size() - target.size() - 1);
      auto it = theirs.find(key);
      const std::string name = key.substr(0, key.find('|'));
      if (it == theirs.end()) {
        differences += "only vigil: " + key + "\n";
      } else if (steady.count(name) != 0 && it->second != value) {
        differences += key + ": vigil " + std::to_string(value) + ", blackbox " +
                       std::to_string(it->second) + "\n";
      }
    }
    INFO(differences);
    CHECK(differences.empty());
    CHECK(theirs.count("probe_success") == 1);
  }
}
