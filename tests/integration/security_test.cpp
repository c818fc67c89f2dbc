// vigil's HTTP server with TLS and bearer tokens, as an operator sets it up: certificates made
// with the openssl command (a CA, a server certificate for 127.0.0.1, a client certificate),
// token files, and clients that do and do not present them.
#include <httplib.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <memory>

#include "tests/support/process.h"

using namespace vigil::test;
using namespace std::chrono_literals;

namespace {

const std::string kReadToken = "read-0123456789abcdef0123456789abcdef";
const std::string kAdminToken = "admin-fedcba9876543210fedcba9876543210";

// Runs openssl with `args` in `dir`; the test fails if it does.
void openssl(const TempDir& dir, const std::string& args) {
  auto r = runCommand({"sh", "-c", "cd '" + dir.file("") + "' && openssl " + args});
  INFO("openssl " << args << "\n" << r.output);
  REQUIRE(r.exit_code == 0);
}

// A CA, and a certificate it signs for `name` (server: for 127.0.0.1).
void makeCa(const TempDir& dir) {
  openssl(dir,
          "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
          "-subj /CN=vigil-test-ca -keyout ca.key -out ca.crt");
}
void makeCert(const TempDir& dir, const std::string& name, const std::string& cn, bool server) {
  openssl(dir, "req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=" + cn +
                   " -keyout " + name + ".key -out " + name + ".csr");
  dir.write(name + ".ext", server ? "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                                  : "extendedKeyUsage=clientAuth\n");
  openssl(dir, "x509 -req -in " + name +
                   ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
                   "-extfile " +
                   name + ".ext -out " + name + ".crt");
}

// The subject of the certificate vigil presents now, or the handshake's error.
std::string servedSubject(const TempDir& dir, int port, const std::string& extra = "") {
  auto r = runCommand({"sh", "-c",
                       "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                           " -CAfile '" + dir.file("ca.crt") + "' " + extra +
                           " </dev/null 2>/dev/null | openssl x509 -noout -subject"});
  return r.exit_code == 0 ? r.output : "no certificate";
}

struct SecureVigil {
  TempDir dir;
  int port = freeLoopbackPort();
  std::unique_ptr<ChildProcess> process;

  explicit SecureVigil(const std::string& tls_extra = "") {
    makeCa(dir);
    makeCert(dir, "server", "vigil-a", true);
    makeCert(dir, "client", "prometheus", false);
    dir.write("read.token", kReadToken + "\n");
    dir.write("admin.token", kAdminToken + "\n");
    dir.write("vigil.yaml", R"(global:
  collection_interval: 1s
web:
  tls_server_config:
    cert_file: server.crt
    key_file: server.key
)" + tls_extra + R"(  authorization:
    read_token_files: [read.token]
    admin_token_files: [admin.token]
)");
    process = std::make_unique<ChildProcess>(
        vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), port, dir.file("data")),
        dir.file("vigil.log"));
  }

  std::unique_ptr<httplib::SSLClient> client(bool with_client_cert = false) const {
    auto c = with_client_cert
                 ? std::make_unique<httplib::SSLClient>("127.0.0.1", port, dir.file("client.crt"),
                                                        dir.file("client.key"))
                 : std::make_unique<httplib::SSLClient>("127.0.0.1", port);
    c->set_ca_cert_path(dir.file("ca.crt").c_str());
    c->enable_server_certificate_verification(true);
    c->set_connection_timeout(2, 0);
    c->set_read_timeout(5, 0);
    return c;
  }
  std::string log() const { return readFile(dir.file("vigil.log")); }
};

httplib::Headers bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

}  // namespace

TEST_CASE("Security: HTTPS with read and admin tokens", "[integration][security]") {
  SecureVigil vigil;
  const bool up = eventually(10s, [&] {
    auto res = vigil.client()->Get("/-/ready");
    return res && res->status == 200;  // probes need no token
  });
  INFO(vigil.log());
  REQUIRE(up);

  // Reading needs a read (or admin) token once read tokens are configured.
  auto anonymous = vigil.client()->Get("/metrics");
  REQUIRE(anonymous);
  CHECK(anonymous->status == 401);
  CHECK(anonymous->get_header_value("WWW-Authenticate") == "Bearer realm=\"vigil\"");
  auto wrong = vigil.client()->Get("/metrics", bearer(kReadToken + "x"));
  REQUIRE(wrong);
  CHECK(wrong->status == 401);
  for (const auto& token : {kReadToken, kAdminToken}) {
    auto ok = vigil.client()->Get("/metrics", bearer(token));
    REQUIRE(ok);
    CHECK(ok->status == 200);
  }
  // A query may be POSTed with a read token: it changes nothing.
  auto query = vigil.client()->Post("/api/v1/query", bearer(kReadToken), "query=up",
                                    "application/x-www-form-urlencoded");
  REQUIRE(query);
  CHECK(query->status == 200);

  // Changing things needs the admin scope.
  auto reload_read = vigil.client()->Post("/-/reload", bearer(kReadToken), "", "text/plain");
  REQUIRE(reload_read);
  CHECK(reload_read->status == 403);
  const std::string silence =
      R"({"matchers":[{"name":"alertname","value":"X","isRegex":false,"isEqual":true}],)"
      R"("startsAt":"2030-01-01T00:00:00Z","endsAt":"2030-01-01T01:00:00Z",)"
      R"("createdBy":"test","comment":"test"})";
  auto silence_read =
      vigil.client()->Post("/api/v2/silences", bearer(kReadToken), silence, "application/json");
  REQUIRE(silence_read);
  CHECK(silence_read->status == 403);
  auto silence_admin =
      vigil.client()->Post("/api/v2/silences", bearer(kAdminToken), silence, "application/json");
  REQUIRE(silence_admin);
  CHECK(silence_admin->status == 200);
  auto reload_admin = vigil.client()->Post("/-/reload", bearer(kAdminToken), "", "text/plain");
  REQUIRE(reload_admin);
  CHECK(reload_admin->status == 200);

  // Every refusal is counted; no token ever reaches the log.
  auto metrics = vigil.client()->Get("/metrics", bearer(kReadToken));
  REQUIRE(metrics);
  CHECK_THAT(metrics->body,
             Catch::Contains("vigil_http_requests_refused_total{reason=\"unauthenticated\"} 2"));
  CHECK_THAT(metrics->body,
             Catch::Contains("vigil_http_requests_refused_total{reason=\"forbidden\"} 2"));
  CHECK(vigil.log().find(kReadToken) == std::string::npos);
  CHECK(vigil.log().find(kAdminToken) == std::string::npos);

  // Plain HTTP and old protocols get no answer.
  httplib::Client plain("127.0.0.1", vigil.port);
  plain.set_connection_timeout(2, 0);
  plain.set_read_timeout(2, 0);
  auto cleartext = plain.Get("/-/healthy");
  CHECK((!cleartext || cleartext->status != 200));
  CHECK(servedSubject(vigil.dir, vigil.port, "-tls1_1") == "no certificate");
  CHECK_THAT(servedSubject(vigil.dir, vigil.port, "-tls1_2"), Catch::Contains("CN = vigil-a"));
}

TEST_CASE("Security: a renewed certificate is served without a restart, a broken one is not",
          "[integration][security]") {
  SecureVigil vigil;
  REQUIRE(eventually(10s, [&] {
    return servedSubject(vigil.dir, vigil.port).find("vigil-a") != std::string::npos;
  }));
  // A half-written renewal (the certificate of another key): the old one stays.
  makeCert(vigil.dir, "renewed", "vigil-b", true);
  std::rename(vigil.dir.file("renewed.crt").c_str(), vigil.dir.file("server.crt").c_str());
  std::this_thread::sleep_for(1500ms);
  CHECK_THAT(servedSubject(vigil.dir, vigil.port), Catch::Contains("CN = vigil-a"));
  // The key arrives: the new certificate is served.
  std::rename(vigil.dir.file("renewed.key").c_str(), vigil.dir.file("server.key").c_str());
  CHECK(eventually(5s, [&] {
    return servedSubject(vigil.dir, vigil.port).find("CN = vigil-b") != std::string::npos;
  }));
  auto metrics = vigil.client()->Get("/metrics", bearer(kReadToken));
  REQUIRE(metrics);
  CHECK_THAT(metrics->body, Catch::Contains("vigil_http_tls_reloads_total{result=\"failure\"} 1"));
  CHECK_THAT(metrics->body, Catch::Contains("vigil_http_tls_reloads_total{result=\"success\"} 1"));
}

TEST_CASE("Security: client certificates, when required", "[integration][security]") {
  SecureVigil vigil(
      "    client_ca_file: ca.crt\n    client_auth_type: RequireAndVerifyClientCert\n");
  const bool up = eventually(10s, [&] {
    auto res = vigil.client(true)->Get("/-/ready");
    return res && res->status == 200;
  });
  INFO(vigil.log());
  REQUIRE(up);
  auto without = vigil.client(false)->Get("/-/ready");
  CHECK((!without || without->status != 200));
  auto with = vigil.client(true)->Get("/metrics", bearer(kReadToken));
  REQUIRE(with);
  CHECK(with->status == 200);
}

TEST_CASE(
    "Security: without tokens, reading is open and changing is refused unless disabled "
    "on loopback",
    "[integration][security]") {
  TempDir dir;
  const int port = freeLoopbackPort();
  dir.write("vigil.yaml", "global:\n  collection_interval: 1s\n");
  ChildProcess vigil(vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), port, dir.file("data")),
                     dir.file("vigil.log"));
  httplib::Client client("127.0.0.1", port);
  REQUIRE(eventually(10s, [&] {
    auto res = client.Get("/metrics");
    return res && res->status == 200;
  }));
  auto reload = client.Post("/-/reload");
  REQUIRE(reload);
  CHECK(reload->status == 403);
  CHECK_THAT(reload->body, Catch::Contains("web.authorization.admin_token_files"));
  auto push = client.Put("/metrics/job/batch", "x 1\n", "text/plain");
  REQUIRE(push);
  CHECK(push->status == 403);

  // Disabling authorization is refused on an address other machines can reach.
  dir.write("open.yaml", "web:\n  authorization:\n    disabled_on_loopback: true\n");
  auto refused = runCommand({VIGIL_BINARY, "run", "--config", dir.file("open.yaml"),
                             "--listen-address", "0.0.0.0:" + std::to_string(freeLoopbackPort()),
                             "--data-dir", dir.file("data2")});
  CHECK(refused.exit_code != 0);
  CHECK_THAT(refused.output, Catch::Contains("authorization can be disabled only on a loopback"));
}

TEST_CASE("Security: a client over its request budget gets 429 and others are served",
          "[integration][security]") {
  TempDir dir;
  const int port = freeLoopbackPort();
  dir.write("vigil.yaml", R"(global:
  collection_interval: 1s
web:
  limits:
    requests_per_second_per_client: 5
    burst: 10
)");
  ChildProcess vigil(vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), port, dir.file("data")),
                     dir.file("vigil.log"));
  httplib::Client client("127.0.0.1", port);
  REQUIRE(eventually(10s, [&] {
    auto res = client.Get("/-/healthy");
    return res && res->status == 200;
  }));
  std::this_thread::sleep_for(2100ms);  // the bucket refills to its burst
  int ok = 0;
  int limited = 0;
  std::string retry_after;
  std::string body;
  for (int i = 0; i < 30; ++i) {
    auto res = client.Get("/api/v1/labels");
    REQUIRE(res);
    if (res->status == 200) {
      ++ok;
    } else if (res->status == 429) {
      ++limited;
      retry_after = res->get_header_value("Retry-After");
      body = res->body;
    }
  }
  // The burst of 10, plus what refilled at 5 per second while the 30 requests went out.
  CHECK(ok >= 10);
  CHECK(ok <= 14);
  CHECK(limited == 30 - ok);
  CHECK(retry_after == "1");
  CHECK_THAT(body, Catch::Contains("more than 5 per second"));
  // A second later the client has budget again.
  std::this_thread::sleep_for(1100ms);
  auto again = client.Get("/metrics");
  REQUIRE(again);
  CHECK(again->status == 200);
  CHECK_THAT(again->body,
             Catch::Contains("vigil_http_requests_refused_total{reason=\"rate_limited\"} " +
                             std::to_string(limited)));
}
