// Faults around vigil: its data directory full or read-only (a tmpfs mounted over it, so that
// even root cannot write), and configuration reloads while it is busy. vigil keeps collecting,
// evaluating and answering, says what fails, and recovers when the fault goes.
#include <httplib.h>
#include <sys/mount.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

#include "tests/support/alerting_vigil.h"
#include "tests/support/loopback_server.h"
#include "tests/support/process.h"

using namespace vigil::test;
using namespace std::chrono_literals;

namespace {

// A metric's value in a /metrics body, or -1.
double metricValue(const std::string& body, const std::string& series) {
  std::smatch m;
  const std::regex re("(^|\n)" +
                      std::regex_replace(series, std::regex(R"([{}\[\]().*+?^$|\\])"), R"(\$&)") +
                      " ([^\n]+)");
  return std::regex_search(body, m, re) ? std::stod(m[2].str()) : -1;
}

struct MountedDataDir {
  std::string path;
  bool mounted = false;
  explicit MountedDataDir(std::string p) : path(std::move(p)) {
    std::filesystem::create_directories(path);
    mounted = ::mount("tmpfs", path.c_str(), "tmpfs", 0, "size=64k") == 0;
  }
  bool remount(const char* options, unsigned long flags = 0) const {
    return ::mount("tmpfs", path.c_str(), "tmpfs", MS_REMOUNT | flags, options) == 0;
  }
  ~MountedDataDir() {
    if (mounted) {
      ::umount2(path.c_str(), MNT_DETACH);
    }
  }
};

}  // namespace

TEST_CASE("Faults: a full, then read-only data directory, vigil keeps working and recovers",
          "[integration][fault]") {
  TempDir dir;
  MountedDataDir data(dir.file("data"));
  if (!data.mounted) {
    // Mounting needs root (CI runs as root); without it there is no way to make the directory
    // unwritable for vigil here.
    WARN("cannot mount a tmpfs (not root?): skipped");
    return;
  }
  dir.write("rules.yml", R"(groups:
  - name: always
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1)
)");
  dir.write("vigil.yaml", openOnLoopback(R"(global:
  collection_interval: 1s
  evaluation_interval: 1s
storage:
  checkpoint_interval: 1s
rule_files: [rules.yml]
)"));
  const int port = freeLoopbackPort();
  ChildProcess vigil(vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), port, data.path),
                     dir.file("vigil.log"));
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(5, 0);
  auto metrics = [&] {
    auto r = client.Get("/metrics");
    return r && r->status == 200 ? r->body : std::string();
  };
  auto firing = [&] {
    auto r = client.Get("/api/v1/alerts");
    return r && r->status == 200 && r->body.find("\"AlwaysFiring\"") != std::string::npos &&
           r->body.find("\"firing\"") != std::string::npos;
  };
  // 64 KiB is too little for this machine's checkpoint: it fails, and says so.
  REQUIRE(eventually(
      15s, [&] { return metricValue(metrics(), "vigil_store_checkpoint_failures_total") >= 2; }));
  INFO(readFile(dir.file("vigil.log")));
  CHECK_THAT(readFile(dir.file("vigil.log")), Catch::Contains("store checkpoint failed"));
  // ... while collecting and alerting go on.
  const double cpu_before = metricValue(metrics(), "vigil_collector_success{collector=\"cpu\"}");
  CHECK(cpu_before == 1);
  CHECK(eventually(10s, firing));

  // Space returns: the next checkpoints are written.
  REQUIRE(data.remount("size=64m"));
  CHECK(eventually(10s, [&] {
    const std::string body = metrics();
    return metricValue(body, "vigil_store_last_checkpoint_timestamp_seconds") > 0 &&
           std::filesystem::exists(data.path + "/store.checkpoint");
  }));
  const double written = metricValue(metrics(), "vigil_store_last_checkpoint_timestamp_seconds");

  // Read-only: writes fail again, nothing else does.
  REQUIRE(data.remount("size=64m", MS_RDONLY));
  const double failures = metricValue(metrics(), "vigil_store_checkpoint_failures_total");
  CHECK(eventually(10s, [&] {
    return metricValue(metrics(), "vigil_store_checkpoint_failures_total") >= failures + 2;
  }));
  CHECK(firing());
  auto ready = client.Get("/-/ready");
  REQUIRE(ready);
  CHECK(ready->status == 200);
  CHECK(metricValue(metrics(), "vigil_collector_success{collector=\"cpu\"}") == 1);

  // Writable again: checkpoints resume.
  REQUIRE(data.remount("size=64m"));
  CHECK(eventually(10s, [&] {
    return metricValue(metrics(), "vigil_store_last_checkpoint_timestamp_seconds") > written;
  }));
  vigil.signal(SIGTERM);
  CHECK(vigil.waitExit(5s) == 0);
}

TEST_CASE("Faults: configuration reloads while alerts, queries and scrapes keep coming",
          "[integration][fault]") {
  TempDir dir;
  // Without a request budget: the load comes from this one client address.
  const std::string unlimited = "  limits: {requests_per_second_per_client: 0}\n";
  const std::string a = openOnLoopback("global:\n  collection_interval: 1s\n") + unlimited;
  const std::string b =
      openOnLoopback("global:\n  collection_interval: 2s\ncollectors:\n  cpu: {enabled: false}\n") +
      unlimited;
  dir.write("vigil.yaml", a);
  const int port = freeLoopbackPort();
  ChildProcess vigil(vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), port, dir.file("data")),
                     dir.file("vigil.log"));
  httplib::Client probe("127.0.0.1", port);
  REQUIRE(eventually(10s, [&] {
    auto r = probe.Get("/-/ready");
    return r && r->status == 200;
  }));

  std::atomic<bool> done{false};
  std::atomic<int> posted{0}, post_errors{0}, reads{0}, read_errors{0};
  std::thread poster([&] {
    httplib::Client c("127.0.0.1", port);
    for (int i = 0; !done.load(); ++i) {
      const std::string body = R"([{"labels":{"alertname":"Load)" + std::to_string(i) + R"("}}])";
      auto r = c.Post("/api/v2/alerts", body, "application/json");
      (r && r->status == 200 ? posted : post_errors)++;
    }
  });
  std::thread reader([&] {
    httplib::Client c("127.0.0.1", port);
    for (int i = 0; !done.load(); ++i) {
      auto r = i % 2 == 0 ? c.Get("/metrics") : c.Get("/api/v1/query?query=up");
      (r && r->status == 200 ? reads : read_errors)++;
    }
  });
  int reloads_ok = 0;
  for (int i = 0; i < 20; ++i) {
    dir.write("vigil.yaml", i % 2 == 0 ? b : a);
    auto r = probe.Post("/-/reload");
    reloads_ok += r && r->status == 200 ? 1 : 0;
    std::this_thread::sleep_for(100ms);
  }
  done = true;
  poster.join();
  reader.join();
  INFO(readFile(dir.file("vigil.log")));
  CHECK(reloads_ok == 20);
  CHECK(post_errors.load() == 0);
  CHECK(read_errors.load() == 0);
  CHECK(posted.load() > 20);
  CHECK(reads.load() > 20);
  // Every alert posted is held (none lost across the reloads).
  auto alerts = probe.Get("/api/v2/alerts");
  REQUIRE(alerts);
  CHECK(nlohmann::json::parse(alerts->body).size() == static_cast<std::size_t>(posted.load()));
  auto ready = probe.Get("/-/ready");
  REQUIRE(ready);
  CHECK(ready->status == 200);
}

namespace {

// libfaketime (Debian's libfaketime) moves vigil's wall clock, and only it: the monotonic clock
// goes on, as it does when NTP steps the clock. The offset is read from a file, so it can be
// changed while vigil runs.
constexpr const char* kFaketimeLibrary = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

struct FaketimeEnvironment {
  explicit FaketimeEnvironment(const std::string& offset_file) {
    ::setenv("LD_PRELOAD", kFaketimeLibrary, 1);
    ::setenv("FAKETIME_TIMESTAMP_FILE", offset_file.c_str(), 1);
    ::setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
    ::setenv("FAKETIME_CACHE_DURATION", "1", 1);
  }
  // Only the child started meanwhile gets it.
  ~FaketimeEnvironment() {
    for (const char* name : {"LD_PRELOAD", "FAKETIME_TIMESTAMP_FILE",
                             "FAKETIME_DONT_FAKE_MONOTONIC", "FAKETIME_CACHE_DURATION"}) {
      ::unsetenv(name);
    }
  }
};

}  // namespace

TEST_CASE(
    "Faults: the wall clock steps an hour back and forward, vigil keeps collecting, "
    "evaluating and notifying",
    "[integration][fault][clock]") {
  if (!std::filesystem::exists(kFaketimeLibrary)) {
    FAIL("libfaketime is not installed (scripts/setup.sh --with-test-servers installs it)");
  }
  // A remote-write receiver that takes everything.
  LoopbackServer receiver;
  receiver.http.Post("/api/v1/write",
                     [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  receiver.start();
  TempDir clock_dir;
  clock_dir.write("offset", "+0\n");
  std::unique_ptr<AlertingVigil> started_vigil;
  {
    FaketimeEnvironment faketime(clock_dir.file("offset"));
    started_vigil = std::make_unique<AlertingVigil>(R"(global:
  log_level: info
  collection_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  route:
    receiver: team
    group_by: [alertname]
    group_wait: 1s
    group_interval: 3s
    repeat_interval: 1h
  receivers:
    - name: team
remote_write:
  - url: http://)" + receiver.address() + R"(/api/v1/write
    name: clock
)",
                                                    R"(groups:
  - name: clock
    interval: 1s
    rules:
      - record: vigil_test_evaluated_at
        expr: time()
      - alert: AlwaysFiring
        expr: vector(1)
      - alert: FiresAfterTwentySeconds
        expr: vector(1)
        for: 20s
)");
  }
  AlertingVigil& vigil = *started_vigil;
  const auto started = std::chrono::steady_clock::now();
  httplib::Client client = vigil.client();
  auto log = [&] { return vigil.log(); };
  auto notified = [&](const std::string& needle) { return vigil.notifications(needle); };
  auto remote_written = [&] {
    auto r = client.Get("/metrics");
    std::smatch m;
    const std::regex sent(R"(vigil_remote_write_samples_total\{[^}]*result="sent"[^}]*\} (\S+))");
    return r && r->status == 200 && std::regex_search(r->body, m, sent) ? std::stod(m[1].str())
                                                                        : -1;
  };
  auto metric = [&](const std::string& series) {
    auto r = client.Get("/metrics");
    return r && r->status == 200 ? metricValue(r->body, series) : -1;
  };
  // vigil's own notion of now: the newest rule evaluation, and what it collected, queried at
  // its (faked) present time; empty when nothing recent made it into the store.
  auto freshness = [&](const std::string& query) -> std::optional<double> {
    auto r = client.Get("/api/v1/query?query=" + httplib::detail::encode_query_param(query));
    if (!r || r->status != 200) {
      return std::nullopt;
    }
    const auto body = nlohmann::json::parse(r->body, nullptr, false);
    if (body.is_discarded() || body["data"]["result"].empty()) {
      return std::nullopt;
    }
    return std::stod(body["data"]["result"][0]["value"][1].get<std::string>());
  };
  auto post = [&](const std::string& instance) {
    auto r = client.Post("/api/v2/alerts",
                         R"([{"labels":{"alertname":"Posted","instance":")" + instance + R"("}}])",
                         "application/json");
    return r && r->status == 200;
  };
  const std::string evaluated_age = "time() - vigil_test_evaluated_at";
  const std::string collected_age = "time() - timestamp(node_time_seconds)";

  REQUIRE(eventually(10s, [&] { return notified("AlwaysFiring") == 1; }));
  REQUIRE(post("before"));
  REQUIRE(eventually(10s, [&] { return notified(R"(instance=\"before\")") == 1; }));

  // An hour back.
  clock_dir.write("offset", "-1h\n");
  REQUIRE(eventually(
      10s, [&] { return metric("vigil_clock_jumps_total{direction=\"backward\"}") == 1; }));
  INFO(log());
  // The step is measured against the monotonic clock, so a loaded machine sees it a
  // millisecond or so short of the hour.
  CHECK(std::regex_search(log(), std::regex("the wall clock stepped back by (1h|59m5[89]s)")));
  CHECK(metric("vigil_clock_dropped_samples_total") > 0);
  // Rules evaluate and collectors collect at the new time (their samples are not refused as
  // out of order), and an alert joining an existing group is notified at once, not in an hour.
  CHECK(eventually(10s, [&] {
    auto age = freshness(evaluated_age);
    return age && *age >= 0 && *age < 5;
  }));
  CHECK(eventually(10s, [&] {
    auto age = freshness(collected_age);
    return age && *age >= 0 && *age < 5;
  }));
  // Remote write goes on sending what is collected at the new time.
  const double written = remote_written();
  double latest = written;
  if (!eventually(10s, [&] {
        latest = remote_written();
        return latest > written + 100;
      })) {
    auto r = client.Get("/metrics");
    std::string queue_lines;
    if (r) {
      std::istringstream lines(r->body);
      for (std::string line; std::getline(lines, line);) {
        if (line.rfind("vigil_remote_write_", 0) == 0 || line.rfind("vigil_clock", 0) == 0 ||
            line.rfind("vigil_store_samples", 0) == 0) {
          queue_lines += line + "\n";
        }
      }
    }
    FAIL_CHECK("remote write sent " << latest - written << " samples in 10 s after the step back ("
                                    << written << " before)\n"
                                    << queue_lines);
  }
  REQUIRE(post("after-back"));
  CHECK(eventually(15s, [&] { return notified(R"(instance=\"after-back\")") == 1; }));
  // A `for` keeps its progress: the alert fires about 20 s after vigil started, not an hour on.
  CHECK(eventually(30s, [&] { return notified("FiresAfterTwentySeconds") == 1; }));
  // In seconds, so that a failure shows how long it took.
  const double seconds_since_start =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK(seconds_since_start < 45);

  // And forward again.
  clock_dir.write("offset", "+0\n");
  REQUIRE(eventually(
      10s, [&] { return metric("vigil_clock_jumps_total{direction=\"forward\"}") == 1; }));
  CHECK(eventually(10s, [&] {
    auto age = freshness(evaluated_age);
    return age && *age >= 0 && *age < 5;
  }));
  REQUIRE(post("after-forward"));
  CHECK(eventually(15s, [&] { return notified(R"(instance=\"after-forward\")") == 1; }));
  // Nothing notified twice for the steps: no alert resolved because the clock jumped over its
  // end, none notified again.
  INFO(log());
  CHECK(notified("(resolved)") == 0);
  CHECK(notified("AlwaysFiring") == 1);
  CHECK(notified("FiresAfterTwentySeconds") == 1);
  CHECK(vigil.process->running());
  vigil.process->signal(SIGTERM);
  CHECK(vigil.process->waitExit(5s) == 0);
}
