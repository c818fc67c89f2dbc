// The PostgreSQL collector against a real server (Debian's postgresql, a throwaway cluster on
// loopback with password authentication): postgres_exporter's names, per-database counters,
// connections by state against max_connections, and a wrong password or a dead server as
// pg_up 0 with the password never in the error.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "agent/collectors/service/postgres_collector.h"
#include "tests/support/collect.h"
#include "tests/support/process.h"
#include "tests/support/test_ca.h"

using namespace vigil;
using namespace vigil::test;
using namespace std::chrono_literals;

namespace {

// Debian keeps the server programs out of PATH, under /usr/lib/postgresql/VERSION/bin.
std::string pgBinary(const std::string& name) {
  std::error_code ec;
  for (const auto& version : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
    const auto path = version.path() / "bin" / name;
    if (std::filesystem::exists(path)) {
      return path.string();
    }
  }
  return name;
}

struct PostgresServer {
  TempDir dir;
  int port = freeLoopbackPort();
  std::unique_ptr<ChildProcess> process;

  // The server refuses to run as root; the tests may, so it runs as the postgres user then.
  std::vector<std::string> asServerUser(std::vector<std::string> argv) const {
    if (::geteuid() == 0) {
      argv.insert(argv.begin(),
                  {"setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"});
    }
    return argv;
  }

  // With `tls_only`, the server has a certificate and refuses connections without TLS.
  explicit PostgresServer(bool tls_only = false) {
    dir.write("pw", "db-s3cret\n");
    if (::geteuid() == 0) {
      REQUIRE(runCommand({"chown", "-R", "postgres:postgres", dir.path()}).exit_code == 0);
    }
    const auto init = runCommand(asServerUser(
        {pgBinary("initdb"), "-D", dir.file("data"), "-U", "vigil", "--auth=scram-sha-256",
         "--pwfile=" + dir.file("pw"), "-E", "UTF8", "--no-sync"}));
    INFO(init.output);
    REQUIRE(init.exit_code == 0);
    std::vector<std::string> argv = {pgBinary("postgres"),         "-D", dir.file("data"), "-p",
                                     std::to_string(port),         "-k", dir.path(),       "-c",
                                     "listen_addresses=127.0.0.1", "-c", "fsync=off"};
    if (tls_only) {
      const TestCertificates certs = makeTestCertificates(dir);
      dir.write("data/pg_hba.conf",
                "hostssl all all 127.0.0.1/32 scram-sha-256\n"
                "hostnossl all all 127.0.0.1/32 reject\n");
      // The server reads its key only if no one else can.
      REQUIRE(::chmod(certs.key.c_str(), 0600) == 0);
      if (::geteuid() == 0) {
        REQUIRE(runCommand({"chown", "-R", "postgres:postgres", dir.path()}).exit_code == 0);
      }
      argv.insert(argv.end(), {"-c", "ssl=on", "-c", "ssl_cert_file=" + certs.cert, "-c",
                               "ssl_key_file=" + certs.key});
    }
    process = std::make_unique<ChildProcess>(asServerUser(argv), dir.file("postgres.log"));
    REQUIRE(eventually(20s, [&] { return psql("SELECT 1").exit_code == 0; }));
  }

  CommandResult psql(const std::string& sql, const std::string& db = "postgres") const {
    return runCommand({"env", "PGPASSWORD=db-s3cret", "psql", "-h", "127.0.0.1", "-p",
                       std::to_string(port), "-U", "vigil", "-d", db, "-v", "ON_ERROR_STOP=1", "-c",
                       sql});
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  // The collector's target for `database` (the default one when empty), as the test user.
  ServiceTarget target(const std::string& database = "") const {
    ServiceTarget t;
    t.address = address();
    t.username = "vigil";
    t.password = "db-s3cret";
    t.database = database;
    return t;
  }
};

std::map<std::string, double> collect(const ServiceTarget& target, Status* status = nullptr) {
  return collectOnce(collectors::makePostgresCollector, target, {"datname", "state"}, status);
}

}  // namespace

TEST_CASE("Postgres collector: a real PostgreSQL with password authentication",
          "[postgres][integration]") {
  PostgresServer pg;
  REQUIRE(pg.psql("CREATE DATABASE app").exit_code == 0);
  REQUIRE(pg.psql("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);"
                  "DELETE FROM t WHERE id <= 10;",
                  "app")
              .exit_code == 0);
  ServiceTarget t = pg.target("app");
  Status st;
  auto m = collect(t, &st);
  INFO(st.message());
  REQUIRE(st.isOk());
  CHECK(m["pg_up"] == 1);
  CHECK(m["pg_settings_max_connections"] == 100);  // PostgreSQL's default
  CHECK(m["pg_settings_superuser_reserved_connections"] == 3);
  CHECK(m["pg_stat_database_tup_inserted|datname=app"] >= 100);
  CHECK(m["pg_stat_database_tup_deleted|datname=app"] >= 10);
  CHECK(m["pg_stat_database_xact_commit|datname=app"] >= 1);
  CHECK(m["pg_stat_database_numbackends|datname=app"] >= 1);  // this very connection
  CHECK(m["pg_stat_activity_count|datname=app|state=active"] >= 1);
  CHECK(m["pg_replication_is_replica"] == 0);
  CHECK(m["pg_ping_duration_seconds"] > 0);
  CHECK(m["pg_ping_duration_seconds"] < 1);

  // A wrong password: down, with libpq's reason and without the password.
  ServiceTarget wrong = t;
  wrong.password = "not-the-password";
  auto bad = collect(wrong, &st);
  CHECK(bad["pg_up"] == 0);
  CHECK(st.message().find("password authentication failed") != std::string::npos);
  CHECK(st.message().find("not-the-password") == std::string::npos);
}

// libpq brings the system's shared OpenSSL into a process whose own copy is linked in statically
// (VIGIL_STATIC_DEPS): each must keep to its own, through a TLS handshake and SCRAM.
TEST_CASE("Postgres collector: a server that accepts TLS connections only",
          "[postgres][integration]") {
  PostgresServer pg(/*tls_only=*/true);
  const auto plain = runCommand({"env", "PGPASSWORD=db-s3cret", "PGSSLMODE=disable", "psql", "-h",
                                 "127.0.0.1", "-p", std::to_string(pg.port), "-U", "vigil", "-d",
                                 "postgres", "-c", "SELECT 1"});
  REQUIRE(plain.exit_code != 0);  // the server does refuse a connection without TLS
  Status st;
  auto m = collect(pg.target(), &st);
  INFO(st.message());
  REQUIRE(st.isOk());
  CHECK(m["pg_up"] == 1);
  CHECK(m["pg_settings_max_connections"] == 100);
}

TEST_CASE("Postgres collector: a server that is gone is down", "[postgres][integration]") {
  ServiceTarget t;
  t.address = "127.0.0.1:" + std::to_string(freeLoopbackPort());
  Status st;
  auto m = collect(t, &st);
  CHECK(m["pg_up"] == 0);
  CHECK_FALSE(st.isOk());
}
