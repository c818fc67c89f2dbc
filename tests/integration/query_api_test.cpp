// The Prometheus query API on a running vigil, checked for Prometheus's JSON shapes.
#include <httplib.h>

#include <signal.h>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/process.h"

using namespace vigil::test;
using namespace std::chrono_literals;
using json = nlohmann::json;

TEST_CASE("Query API: Prometheus's endpoints and JSON shapes", "[integration][api]") {
  TempDir dir;
  const int port = freeLoopbackPort();
  dir.write("vigil.yaml", "global:\n  collection_interval: 1s\n");
  ChildProcess vigil(vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), port, dir.file("data")),
                     dir.file("vigil.log"));
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(5, 0);
  REQUIRE(eventually(10s, [&] {
    auto r = client.Get("/-/ready");
    return r && r->status == 200;
  }));
  std::this_thread::sleep_for(2500ms);  // a few collections to query over
  auto get = [&](const std::string& path, const httplib::Params& params) {
    auto r = client.Get(path, params, httplib::Headers{});
    REQUIRE(r);
    INFO(path << " -> " << r->status << " " << r->body);
    return std::make_pair(r->status, json::parse(r->body));
  };

  auto [s1, instant] = get("/api/v1/query", {{"query", "node_load1"}});
  CHECK(s1 == 200);
  CHECK(instant["status"] == "success");
  CHECK(instant["data"]["resultType"] == "vector");
  REQUIRE(instant["data"]["result"].size() == 1);
  CHECK(instant["data"]["result"][0]["metric"]["__name__"] == "node_load1");
  CHECK(instant["data"]["result"][0]["value"][1].is_string());

  auto [s2, rate] = get("/api/v1/query", {{"query", "sum(rate(node_cpu_seconds_total[5s]))"}});
  CHECK(s2 == 200);
  REQUIRE(rate["data"]["result"].size() == 1);
  CHECK(rate["data"]["result"][0]["metric"].empty());

  auto [s3, scalar] = get("/api/v1/query", {{"query", "1 + 2"}, {"time", "1700000000"}});
  CHECK(s3 == 200);
  CHECK(scalar["data"]["resultType"] == "scalar");
  CHECK(scalar["data"]["result"][0] == 1700000000);
  CHECK(scalar["data"]["result"][1] == "3");

  const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  auto [s4, range] = get("/api/v1/query_range", {{"query", "node_load1"},
                                                 {"start", std::to_string(now - 3)},
                                                 {"end", std::to_string(now)},
                                                 {"step", "1s"}});
  CHECK(s4 == 200);
  CHECK(range["data"]["resultType"] == "matrix");
  REQUIRE(range["data"]["result"].size() == 1);
  CHECK(range["data"]["result"][0]["values"].size() >= 2);

  auto [s5, series] = get("/api/v1/series", {{"match[]", "node_cpu_seconds_total{mode=\"idle\"}"}});
  CHECK(s5 == 200);
  REQUIRE(!series["data"].empty());
  CHECK(series["data"][0]["mode"] == "idle");

  auto [s6, labels] = get("/api/v1/labels", {});
  CHECK(s6 == 200);
  CHECK(std::find(labels["data"].begin(), labels["data"].end(), "__name__") !=
        labels["data"].end());

  auto [s7, values] = get("/api/v1/label/mode/values", {});
  CHECK(s7 == 200);
  CHECK(std::find(values["data"].begin(), values["data"].end(), "idle") != values["data"].end());

  auto [s8, build] = get("/api/v1/status/buildinfo", {});
  CHECK(s8 == 200);
  CHECK(build["data"]["version"].is_string());

  // Errors: Prometheus's types and HTTP statuses, with the position of a parse error.
  auto [e1, bad] = get("/api/v1/query", {{"query", "sum(node_load1"}});
  CHECK(e1 == 400);
  CHECK(bad["status"] == "error");
  CHECK(bad["errorType"] == "bad_data");
  CHECK_THAT(bad["error"].get<std::string>(), Catch::Contains("1:15: parse error"));
  auto [e2, missing] = get("/api/v1/query_range", {{"query", "up"}});
  CHECK(e2 == 400);
  CHECK_THAT(missing["error"].get<std::string>(), Catch::Contains("invalid parameter \"start\""));
  auto [e3, many] =
      get("/api/v1/query", {{"query", "node_cpu_seconds_total + on(cpu) node_cpu_seconds_total"}});
  CHECK(e3 == 422);
  CHECK(many["errorType"] == "execution");
  // A request may shorten the query timeout; past it: 503, errorType "timeout".
  auto [e4, slow] =
      get("/api/v1/query", {{"query", "sum_over_time(vector(1)[1000d:1s])"}, {"timeout", "50ms"}});
  CHECK(e4 == 503);
  CHECK(slow["errorType"] == "timeout");
  CHECK(slow["error"] == "query timed out in expression evaluation");
  auto [e5, bad_timeout] = get("/api/v1/query", {{"query", "up"}, {"timeout", "soon"}});
  CHECK(e5 == 400);
  CHECK(bad_timeout["errorType"] == "bad_data");
  // Times and steps beyond what milliseconds in int64 hold are refused, not wrapped around.
  auto [e6, far] = get("/api/v1/query", {{"query", "rate(up[5m])"}, {"time", "1e46"}});
  CHECK(e6 == 400);
  CHECK_THAT(far["error"].get<std::string>(), Catch::Contains("valid timestamp"));
  auto [e7, wide] =
      get("/api/v1/query_range",
          {{"query", "time()"}, {"start", "-9.2e15"}, {"end", "9.2e15"}, {"step", "9.2e15"}});
  CHECK(e7 == 400);
  CHECK_THAT(wide["error"].get<std::string>(), Catch::Contains("maximum resolution"));
  auto [s9, last] =
      get("/api/v1/query_range",
          {{"query", "time()"}, {"start", "9.2e15"}, {"end", "9.2e15"}, {"step", "9.2e15"}});
  CHECK(s9 == 200);
  CHECK(last["data"]["result"][0]["values"].size() == 1);

  // POST with a form body, as Grafana sends it.
  auto post = client.Post("/api/v1/query", "query=node_load1", "application/x-www-form-urlencoded");
  REQUIRE(post);
  CHECK(post->status == 200);
  CHECK(json::parse(post->body)["data"]["result"].size() == 1);
}

TEST_CASE("CLI: vigil query evaluates on a running agent", "[integration][api][cli]") {
  TempDir dir;
  const int port = freeLoopbackPort();
  ChildProcess vigil({VIGIL_BINARY, "run", "--listen-address", "127.0.0.1:" + std::to_string(port),
                      "--data-dir", dir.file("data")},
                     dir.file("vigil.log"));
  const std::string address = "127.0.0.1:" + std::to_string(port);
  REQUIRE(eventually(10s, [&] {
    return runCommand({VIGIL_BINARY, "query", "--address", address, "up"}).exit_code == 0;
  }));
  CommandResult load = runCommand({VIGIL_BINARY, "query", "--address", address, "node_load1"});
  CHECK(load.exit_code == 0);
  CHECK_THAT(load.output, Catch::StartsWith("node_load1{} => "));
  CommandResult scalar =
      runCommand({VIGIL_BINARY, "query", "--address", address, "--time", "100", "2 * 21"});
  CHECK(scalar.output == "42\n");
  CommandResult bad = runCommand({VIGIL_BINARY, "query", "--address", address, "sum("});
  CHECK(bad.exit_code == 1);
  CHECK_THAT(bad.output, Catch::Contains("parse error"));
}

TEST_CASE("Rules in the agent: alerts fire, are logged and listed, bad rules are refused",
          "[integration][rules]") {
  TempDir dir;
  dir.write("alerts.yml", R"(groups:
  - name: always
    interval: 1s
    rules:
      - alert: AlwaysFiring
        expr: vector(1) > 0
        labels:
          severity: info
        annotations:
          summary: 'value is {{ $value }}'
      - record: vigil:up:one
        expr: vector(1)
)");
  dir.write("vigil.yaml",
            openOnLoopback("global:\n  collection_interval: 1s\nrule_files: [alerts.yml]\n"));
  const int port = freeLoopbackPort();
  ChildProcess vigil({VIGIL_BINARY, "run", "--config", dir.file("vigil.yaml"), "--listen-address",
                      "127.0.0.1:" + std::to_string(port), "--data-dir", dir.file("data")},
                     dir.file("vigil.log"));
  httplib::Client client("127.0.0.1", port);
  bool firing = eventually(10s, [&] {
    auto r = client.Get("/api/v1/alerts");
    return r && r->status == 200 && r->body.find("\"state\":\"firing\"") != std::string::npos;
  });
  INFO(readFile(dir.file("vigil.log")));
  REQUIRE(firing);
  auto alerts = json::parse(client.Get("/api/v1/alerts")->body);
  REQUIRE(alerts["data"]["alerts"].size() == 1);
  CHECK(alerts["data"]["alerts"][0]["labels"]["alertname"] == "AlwaysFiring");
  CHECK(alerts["data"]["alerts"][0]["annotations"]["summary"] == "value is 1");
  CHECK(alerts["data"]["alerts"][0]["value"] == "1e+00");
  auto metrics = client.Get("/metrics");
  REQUIRE(metrics);
  CHECK_THAT(metrics->body, Catch::Contains("vigil_rule_group_rules{rule_group=\"" +
                                            dir.file("alerts.yml") + ";always\"} 2"));
  CHECK_THAT(metrics->body,
             Catch::Contains("vigil_rule_group_evaluation_failures_total{rule_group="));
  auto rules = json::parse(client.Get("/api/v1/rules")->body);
  REQUIRE(rules["data"]["groups"].size() == 1);
  CHECK(rules["data"]["groups"][0]["rules"][0]["state"] == "firing");
  CHECK(rules["data"]["groups"][0]["rules"][1]["type"] == "recording");
  CHECK_THAT(readFile(dir.file("vigil.log")),
             Catch::Contains("alert firing {alertname=\\\"AlwaysFiring\\\""));
  // Recording rules and ALERTS land in the store, queryable like anything else.
  auto recorded =
      client.Get("/api/v1/query", httplib::Params{{"query", "vigil:up:one"}}, httplib::Headers{});
  REQUIRE(recorded);
  CHECK(json::parse(recorded->body)["data"]["result"].size() == 1);
  auto alerts_series =
      client.Get("/api/v1/query", httplib::Params{{"query", "ALERTS{alertstate=\"firing\"}"}},
                 httplib::Headers{});
  REQUIRE(alerts_series);
  CHECK(json::parse(alerts_series->body)["data"]["result"].size() == 1);

  // A broken rule file is refused at reload with its position; the running rules stay.
  dir.write("alerts.yml",
            "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: sum(\n");
  auto reload = client.Post("/-/reload");
  REQUIRE(reload);
  CHECK(reload->status == 500);
  CHECK_THAT(reload->body, Catch::Contains("alerts.yml:5:19: groups[0].rules[0].expr"));
  CHECK(json::parse(client.Get("/api/v1/alerts")->body)["data"]["alerts"].size() == 1);
}

TEST_CASE("Rules in the agent: a firing alert survives kill -9 without firing again",
          "[integration][rules][restart]") {
  TempDir dir;
  dir.write("alerts.yml", R"(groups:
  - name: g
    interval: 1s
    rules:
      - alert: StaysFiring
        expr: vector(1)
      - alert: SlowPending
        expr: vector(1)
        for: 1h
)");
  dir.write(
      "vigil.yaml",
      openOnLoopback("global:\n  collection_interval: 1s\nstorage:\n  checkpoint_interval: 1s\n"
                     "rule_files: [alerts.yml]\n"));
  const int port = freeLoopbackPort();
  const auto argv = vigilRunArgv(VIGIL_BINARY, dir.file("vigil.yaml"), port, dir.file("data"));
  httplib::Client client("127.0.0.1", port);
  auto activeAt = [&](const std::string& name) -> std::string {
    auto r = client.Get("/api/v1/alerts");
    if (!r || r->status != 200) {
      return "";
    }
    const json body = json::parse(r->body);  // named: a temporary would die before the loop
    for (const auto& a : body["data"]["alerts"]) {
      if (a["labels"]["alertname"] == name) {
        return a["state"].get<std::string>() + "@" + a["activeAt"].get<std::string>();
      }
    }
    return "";
  };
  std::string firing_before;
  std::string pending_before;
  {
    ChildProcess first(argv, dir.file("first.log"));
    REQUIRE(eventually(10s, [&] {
      firing_before = activeAt("StaysFiring");
      pending_before = activeAt("SlowPending");
      return firing_before.rfind("firing@", 0) == 0 && pending_before.rfind("pending@", 0) == 0;
    }));
    std::this_thread::sleep_for(2500ms);  // a state checkpoint after that
    first.signal(SIGKILL);
    REQUIRE(first.waitExit(5s));
  }
  CHECK_THAT(readFile(dir.file("first.log")),
             Catch::Contains("alert firing {alertname=\\\"StaysFiring\\\"}"));
  ChildProcess second(argv, dir.file("second.log"));
  REQUIRE(eventually(10s, [&] { return !activeAt("StaysFiring").empty(); }));
  std::this_thread::sleep_for(2000ms);  // a few evaluations after the restart
  // Still firing since the same moment, and the pending alert kept its `for` progress.
  CHECK(activeAt("StaysFiring") == firing_before);
  CHECK(activeAt("SlowPending") == pending_before);
  // No second "firing" announcement for an alert that never stopped.
  CHECK_THAT(readFile(dir.file("second.log")), !Catch::Contains("alert firing"));
}
