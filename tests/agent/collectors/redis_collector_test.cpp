// The Redis collector against a real redis-server on loopback (Debian's), with a password:
// redis_exporter's names, cache hits and misses as the hit-rate rule reads them, keyspace per
// DB, and a wrong password or a dead server as redis_up 0 with the password never in the error.
#include <catch2/catch.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "agent/collectors/common/tcp_client.h"
#include "agent/collectors/service/redis_collector.h"
#include "tests/support/collect.h"
#include "tests/support/process.h"

using namespace vigil;
using namespace vigil::test;
using namespace std::chrono_literals;

namespace {

struct RedisServer {
  TempDir dir;
  int port = freeLoopbackPort();
  std::unique_ptr<ChildProcess> process;
  RedisServer() {
    process = std::make_unique<ChildProcess>(
        std::vector<std::string>{"redis-server", "--port", std::to_string(port), "--bind",
                                 "127.0.0.1", "--save", "", "--appendonly", "no", "--dir",
                                 dir.path(), "--requirepass", "s3cret-pw"},
        dir.file("redis.log"));
    REQUIRE(eventually(10s, [&] {
      collectors::TcpClient c;
      return c.connect(address(), std::chrono::steady_clock::now() + 200ms).isOk();
    }));
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  // Runs a command with redis-cli (the server's own client) for the test's setup.
  void cli(std::vector<std::string> args) {
    args.insert(args.begin(),
                {"redis-cli", "-p", std::to_string(port), "-a", "s3cret-pw", "--no-auth-warning"});
    REQUIRE(runCommand(args).exit_code == 0);
  }
};

std::map<std::string, double> collect(const ServiceTarget& target, Status* status = nullptr) {
  return collectOnce(collectors::makeRedisCollector, target,
                     {"db", "maxmemory_policy", "os", "process_id", "redis_build_id", "redis_mode",
                      "redis_version", "role", "run_id", "tcp_port"},
                     status);
}

}  // namespace

TEST_CASE("Redis collector: a real redis-server through AUTH", "[redis][integration]") {
  RedisServer redis;
  redis.cli({"SET", "user:1", "alice"});
  redis.cli({"SET", "session:9", "x", "EX", "3600"});
  redis.cli({"GET", "user:1"});    // a hit
  redis.cli({"GET", "user:404"});  // a miss
  redis.cli({"GET", "user:405"});  // another miss
  ServiceTarget t;
  t.address = redis.address();
  t.password = "s3cret-pw";
  Status st;
  auto m = collect(t, &st);
  INFO(st.message());
  REQUIRE(st.isOk());
  CHECK(m["redis_up"] == 1);
  CHECK(m["redis_keyspace_hits_total"] == 1);
  CHECK(m["redis_keyspace_misses_total"] == 2);
  CHECK(m["redis_db_keys|db=db0"] == 2);
  CHECK(m["redis_db_keys_expiring|db=db0"] == 1);
  CHECK(m["redis_connected_clients"] >= 1);
  CHECK(m["redis_memory_used_bytes"] > 0);
  CHECK(m.count("redis_memory_max_bytes") == 1);
  CHECK(m["redis_commands_processed_total"] >= 5);
  // One info series: standalone master, with the server's version.
  std::string info;
  for (const auto& [k, v] : m) {
    if (k.starts_with("redis_instance_info|")) {
      info = k;
    }
  }
  CHECK(info.find("redis_mode=standalone") != std::string::npos);
  CHECK(info.find("role=master") != std::string::npos);
  const auto version = info.find("redis_version=");
  REQUIRE(version != std::string::npos);
  CHECK(std::isdigit(static_cast<unsigned char>(info[version + 14])));
  CHECK(m["redis_ping_duration_seconds"] > 0);
  CHECK(m["redis_ping_duration_seconds"] < 1);

  // Credentials from a file, then from the environment.
  redis.dir.write("pw", "s3cret-pw\n");
  ServiceTarget from_file;
  from_file.address = redis.address();
  from_file.password_file = redis.dir.file("pw");
  CHECK(collect(from_file)["redis_up"] == 1);
  ::setenv("VIGIL_TEST_REDIS_PW", "s3cret-pw", 1);
  ServiceTarget from_env;
  from_env.address = redis.address();
  from_env.password_env = "VIGIL_TEST_REDIS_PW";
  CHECK(collect(from_env)["redis_up"] == 1);

  // A wrong password: down, and the error names the server's refusal, not the password.
  ServiceTarget wrong = t;
  wrong.password = "not-the-password";
  auto bad = collect(wrong, &st);
  CHECK(bad["redis_up"] == 0);
  CHECK_FALSE(st.isOk());
  CHECK(st.message().find("WRONGPASS") != std::string::npos);
  CHECK(st.message().find("not-the-password") == std::string::npos);
}

TEST_CASE("Redis collector: a server that is gone is down, within the deadline",
          "[redis][integration]") {
  ServiceTarget t;
  t.address = "127.0.0.1:" + std::to_string(freeLoopbackPort());
  Status st;
  const auto started = std::chrono::steady_clock::now();
  auto m = collect(t, &st);
  CHECK(m["redis_up"] == 0);
  CHECK(st.message().find("cannot connect") != std::string::npos);
  CHECK(std::chrono::steady_clock::now() - started < 3s);
}

TEST_CASE("Redis collector: the series and labels of a real redis_exporter 1.45",
          "[redis][integration]") {
  // Debian's prometheus-redis-exporter and vigil, on the same server: every series of the
  // families vigil exports has redis_exporter's labels (vigil adds `target`), and what does
  // not move between the two reads has the same value. vigil's own: redis_ping_duration_seconds,
  // and redis_max_clients (INFO's maxclients, as the reference names it; redis_exporter 1.45
  // reads it from CONFIG as redis_config_maxclients).
  RedisServer redis;
  redis.cli({"SET", "user:1", "alice"});
  redis.cli({"SET", "session:9", "x", "EX", "3600"});
  redis.cli({"-n", "3", "SET", "other", "db"});
  redis.cli({"GET", "user:1"});
  redis.cli({"GET", "user:404"});
  const int exporter_port = freeLoopbackPort();
  ChildProcess exporter({"prometheus-redis-exporter", "--redis.addr=redis://" + redis.address(),
                         "--redis.password=s3cret-pw",
                         "--web.listen-address=127.0.0.1:" + std::to_string(exporter_port)},
                        redis.dir.file("redis_exporter.log"));
  const std::string url = "http://127.0.0.1:" + std::to_string(exporter_port) + "/metrics";
  std::string body;
  REQUIRE(eventually(10s, [&] {
    CommandResult r = runCommand({"curl", "-sf", url});
    body = r.output;
    return r.exit_code == 0 && body.find("redis_up 1") != std::string::npos;
  }));
  ServiceTarget t;
  t.address = redis.address();
  t.password = "s3cret-pw";
  Status st;
  const auto ours = collect(t, &st);  // every label but target
  REQUIRE(st.isOk());

  // redis_exporter's series as "name|label=value|..." (Go writes labels sorted by name).
  std::map<std::string, double> theirs;
  std::istringstream lines(body);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty() || line[0] == '#') {
      continue;
    }
    const auto space = line.rfind(' ');
    std::string series = line.substr(0, space);
    std::string key = series.substr(0, series.find('{'));
    if (const auto open = series.find('{'); open != std::string::npos) {
      const std::regex label(R"re(([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)")re");
      const std::string labels = series.substr(open);
      for (std::sregex_iterator it(labels.begin(), labels.end(), label), end; it != end; ++it) {
        key += "|" + (*it)[1].str() + "=" + (*it)[2].str();
      }
    }
    theirs[key] = std::strtod(line.c_str() + space + 1, nullptr);
  }
  auto family = [](const std::string& key) { return key.substr(0, key.find('|')); };
  std::set<std::string> our_families;
  for (const auto& [key, value] : ours) {
    our_families.insert(family(key));
  }
  const std::set<std::string> ours_only = {"redis_ping_duration_seconds", "redis_max_clients"};
  const std::set<std::string> steady = {"redis_up",
                                        "redis_db_keys",
                                        "redis_db_keys_expiring",
                                        "redis_instance_info",
                                        "redis_memory_max_bytes",
                                        "redis_keyspace_hits_total",
                                        "redis_keyspace_misses_total",
                                        "redis_evicted_keys_total",
                                        "redis_connected_slaves"};
  std::string differences;
  for (const auto& [key, value] : ours) {
    if (ours_only.count(family(key)) != 0) {
      continue;
    }
    auto it = theirs.find(key);
    if (it == theirs.end()) {
      differences += "only vigil: " + key + "\n";
    } else if (steady.count(family(key)) != 0 && it->second != value) {
      differences += "values differ: " + key + " " + std::to_string(value) + " against " +
                     std::to_string(it->second) + "\n";
    }
  }
  for (const auto& [key, value] : theirs) {
    if (our_families.count(family(key)) != 0 && ours.count(key) == 0) {
      differences += "only redis_exporter: " + key + "\n";
    }
  }
  INFO(differences);
  CHECK(differences.empty());
  // Not an empty comparison: the keys of every database, empty ones as 0, as redis_exporter.
  CHECK(ours.at("redis_db_keys|db=db0") == 2);
  CHECK(ours.at("redis_db_keys|db=db3") == 1);
  CHECK(ours.at("redis_db_keys|db=db15") == 0);
}
