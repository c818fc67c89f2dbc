#include <catch2/catch.hpp>
#include <fstream>
#include <sstream>

#include "vigil/alerting/config.h"
#include "vigil/collector.h"
#include "vigil/config.h"
#include "vigil/remote_write.h"

using namespace vigil;

namespace {

ConfigParseResult parse(const std::string& yaml) {
  return parseConfig(yaml, "vigil.yaml", builtinCollectorInfo());
}

// Every error of a parse as the user reads it.
std::vector<std::string> errorList(const ConfigParseResult& r) {
  std::vector<std::string> out;
  for (const auto& e : r.errors) {
    out.push_back(e.toString());
  }
  return out;
}

// All errors of a parse, one per line, for readable failure messages.
std::string errorsOf(const ConfigParseResult& r) {
  std::string out;
  for (const auto& e : r.errors) {
    out += e.toString() + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("Config: the embedded default is valid and collects this machine on loopback",
          "[agent][config]") {
  auto r = parseConfig(embeddedDefaultConfig(), "<embedded default>", builtinCollectorInfo());
  INFO(errorsOf(r));
  REQUIRE(r.config);
  CHECK(r.config->global.listen_address.host == "127.0.0.1");
  CHECK(r.config->global.collection_interval == Duration{15000});
  const auto* cpu = r.config->collector("cpu");
  REQUIRE(cpu);
  CHECK(cpu->enabled);
  CHECK(cpu->interval == Duration{15000});
  CHECK(cpu->timeout == Duration{10000});
}

TEST_CASE("Config: the annotated example under deploy/ is valid", "[agent][config]") {
  auto r = loadConfigFile(VIGIL_SOURCE_DIR "/deploy/vigil.example.yaml", builtinCollectorInfo());
  INFO(errorsOf(r));
  REQUIRE(r.config);
  CHECK(r.config->global.data_dir == "/var/lib/vigil");
  CHECK(r.config->global.external_labels.at("cluster") == "prod-eu-1");
  CHECK(r.config->collector("process")->interval == Duration{30000});
  CHECK(r.config->collector("process")->timeout == Duration{5000});
}

TEST_CASE("Config: an empty file means every default", "[agent][config]") {
  auto r = parse("");
  REQUIRE(r.config);
  CHECK(r.config->global.listen_address.toString() == "127.0.0.1:9810");
  CHECK(r.config->global.collect_before_scrapes);
  CHECK(r.config->collectors.size() == builtinCollectorInfo().size());
}

TEST_CASE("Config: values are read into the typed configuration", "[agent][config]") {
  auto r = parse(R"(
global:
  listen_address: "[::1]:9999"
  data_dir: /tmp/vigil
  collection_interval: 1m30s
  evaluation_interval: 30s
  collect_before_scrapes: false
  log_level: debug
  log_format: json
  external_labels:
    region: eu
collectors:
  paths:
    procfs: /host/proc
    sysfs: /host/sys
    rootfs: /host/root
  cpu:
    interval: 5s
    timeout: 2s
  netdev:
    enabled: false
rule_files:
  - rules/*.yaml
  - /etc/vigil/extra.yaml
)");
  INFO(errorsOf(r));
  REQUIRE(r.config);
  const Config& c = *r.config;
  CHECK(c.global.listen_address.host == "::1");
  CHECK(c.global.listen_address.port == 9999);
  CHECK(c.global.listen_address.toString() == "[::1]:9999");
  CHECK(c.global.collection_interval == Duration{90000});
  CHECK(c.global.evaluation_interval == Duration{30000});
  CHECK_FALSE(c.global.collect_before_scrapes);
  CHECK(c.global.log_level == LogLevel::kDebug);
  CHECK(c.global.log_format == LogFormat::kJson);
  CHECK(c.paths.procfs == "/host/proc");
  CHECK(c.paths.rootfs == "/host/root");
  CHECK(c.collector("cpu")->interval == Duration{5000});
  CHECK(c.collector("cpu")->timeout == Duration{2000});
  CHECK_FALSE(c.collector("netdev")->enabled);
  // Collectors without their own interval follow the global one.
  CHECK(c.collector("meminfo")->interval == Duration{90000});
  // Relative rule globs are anchored at the configuration file's directory, as in Prometheus.
  REQUIRE(c.rule_files.size() == 2);
  CHECK(c.rule_files[0] == "rules/*.yaml");
  CHECK(c.rule_files[1] == "/etc/vigil/extra.yaml");
}

TEST_CASE("Config: rule_files are resolved against the file's directory", "[agent][config]") {
  auto r =
      parseConfig("rule_files: [alerts/*.yml]", "/etc/vigil/vigil.yaml", builtinCollectorInfo());
  REQUIRE(r.config);
  CHECK(r.config->rule_files.at(0) == "/etc/vigil/alerts/*.yml");
}

TEST_CASE("Config: every error names file, line, column and field", "[agent][config]") {
  struct Case {
    const char* name;
    const char* yaml;
    const char* expected;  // the full first error line
  };
  const Case cases[] = {
      {"unknown top-level key", "globl:\n  log_level: info\n",
       "vigil.yaml:1:1: globl: unknown key (expected one of: global, web, collectors, storage, "
       "rule_files, alerting, alertmanagers, anomaly, remote_write)"},
      {"bad size", "storage:\n  memory_budget: 512 megs\n",
       "vigil.yaml:2:18: storage.memory_budget: invalid size \"512 megs\": unknown unit \" megs\" "
       "(use B, KiB, MiB, GiB, TiB or KB, MB, GB, TB)"},
      {"retention too short", "storage:\n  retention: 10s\n",
       "vigil.yaml:2:14: storage.retention: duration 10s is out of range (1m to 1y)"},
      {"unknown global key", "global:\n  scrape_interval: 15s\n",
       "vigil.yaml:2:3: global.scrape_interval: unknown key (expected one of: listen_address, "
       "data_dir, collection_interval, evaluation_interval, collect_before_scrapes, "
       "external_labels, log_level, log_format)"},
      {"bad duration", "global:\n  collection_interval: 5 minutes\n",
       "vigil.yaml:2:24: global.collection_interval: invalid duration \"5 minutes\": unknown unit "
       "\" minutes\" (use Prometheus syntax such as 15s, 5m or 1h30m)"},
      {"duration out of range", "global:\n  evaluation_interval: 10ms\n",
       "vigil.yaml:2:24: global.evaluation_interval: duration 10ms is out of range (100ms to 1d)"},
      {"port out of range", "global:\n  listen_address: 127.0.0.1:99999\n",
       "vigil.yaml:2:19: global.listen_address: invalid address \"127.0.0.1:99999\": port "
       "\"99999\" is not a number from 0 to 65535"},
      {"address without port", "global:\n  listen_address: localhost\n",
       "vigil.yaml:2:19: global.listen_address: invalid address \"localhost\": expected HOST:PORT "
       "such as 127.0.0.1:9810"},
      {"unbracketed IPv6", "global:\n  listen_address: ::1:9810\n",
       "vigil.yaml:2:19: global.listen_address: invalid address \"::1:9810\": put IPv6 addresses "
       "in brackets, as in [::1]:9810"},
      {"bad log level", "global:\n  log_level: verbose\n",
       "vigil.yaml:2:14: global.log_level: unknown level \"verbose\" (expected debug, info, warn "
       "or error)"},
      {"bad log format", "global:\n  log_format: text\n",
       "vigil.yaml:2:15: global.log_format: unknown format \"text\" (expected logfmt or json)"},
      {"wrong type", "global:\n  data_dir: [a, b]\n",
       "vigil.yaml:2:13: global.data_dir: expected a string, got a list"},
      {"global not a mapping", "global: 15s\n",
       "vigil.yaml:1:9: global: expected a mapping, got \"15s\""},
      {"bad external label name", "global:\n  external_labels:\n    1region: eu\n",
       "vigil.yaml:3:5: global.external_labels.1region: invalid label name (must match "
       "[a-zA-Z_][a-zA-Z0-9_]* and not start with __)"},
      {"reserved external label name", "global:\n  external_labels:\n    __name__: x\n",
       "vigil.yaml:3:5: global.external_labels.__name__: invalid label name (must match "
       "[a-zA-Z_][a-zA-Z0-9_]* and not start with __)"},
      {"unknown collector", "collectors:\n  cpuu:\n    enabled: true\n",
       "vigil.yaml:2:3: collectors.cpuu: unknown collector (expected paths or one of: cpu, "
       "meminfo, loadavg, stat, vmstat, filefd, pressure, netdev, netclass, netstat, sockstat, "
       "conntrack, diskstats, filesystem, uname, time, os, timex, entropy, softnet, udp_queues, "
       "arp, schedstat, cpufreq, hwmon, dmi, thermal_zone, edac, nvme, rapl, textfile, cgroup, "
       "cost, "
       "process, "
       "push, "
       "statsd, "
       "postgres, probe, scrape, "
       "redis)"},
      {"boolean spelled yes", "collectors:\n  cpu:\n    enabled: yes\n",
       "vigil.yaml:3:14: collectors.cpu.enabled: expected true or false, got \"yes\""},
      {"unknown collector key", "collectors:\n  cpu:\n    enable: true\n",
       "vigil.yaml:3:5: collectors.cpu.enable: unknown key (expected one of: enabled, interval, "
       "timeout)"},
      {"timeout longer than interval", "collectors:\n  cpu:\n    interval: 5s\n    timeout: 10s\n",
       "vigil.yaml:4:14: collectors.cpu.timeout: timeout 10s is longer than the interval 5s"},
      {"relative host path", "collectors:\n  paths:\n    procfs: host/proc\n",
       "vigil.yaml:3:13: collectors.paths.procfs: must be an absolute path, got \"host/proc\""},
      {"rule_files not a list", "rule_files: rules/*.yaml\n",
       "vigil.yaml:1:13: rule_files: expected a list of file globs, got \"rules/*.yaml\""},
      {"rule_files entry not a string", "rule_files:\n  - {a: b}\n",
       "vigil.yaml:2:5: rule_files[0]: expected a string, got a mapping"},
      {"unknown key in the anomaly section", "anomaly:\n  detectors: {}\n",
       "vigil.yaml:2:3: anomaly.detectors: unknown key (expected one of: enabled, detector, "
       "selectors, max_models, interval, multivariate)"},
      {"multivariate feature not PromQL", "anomaly:\n  multivariate:\n    cpu: sum(x\n",
       "vigil.yaml:3:10: anomaly.multivariate.cpu: 1:6: parse error: unexpected end of input "
       "in aggregation, expected \")\""},
      {"multivariate feature a range", "anomaly:\n  multivariate:\n    cpu: x[5m]\n",
       "vigil.yaml:3:10: anomaly.multivariate.cpu: expected an instant vector or scalar "
       "expression, got range vector"},
      {"multivariate not a mapping", "anomaly:\n  multivariate: [x]\n",
       "vigil.yaml:2:17: anomaly.multivariate: expected a mapping of names to PromQL "
       "expressions, got a list"},
      {"alerting section checked as an Alertmanager configuration",
       "alerting:\n  route:\n    receiver: pager\n  receivers:\n    - name: team\n",
       "vigil.yaml:3:15: alerting.route.receiver: undefined receiver \"pager\" used in route"},
      {"duplicate key", "global:\n  log_level: info\n  log_level: debug\n",
       "vigil.yaml:3:3: global.log_level: duplicate key"},
      {"invalid YAML", "global:\n  log_level: [info\n",
       "vigil.yaml:3:1: invalid YAML: end of sequence flow not found"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto r = parse(c.yaml);
    CHECK_FALSE(r.config);
    REQUIRE(!r.errors.empty());
    CHECK(r.errors[0].toString() == c.expected);
  }
}

TEST_CASE("Config: all errors are reported at once, not just the first", "[agent][config]") {
  auto r = parse(R"(global:
  collection_interval: 5 minutes
  log_level: loud
collectors:
  cpu:
    enabled: maybe
  nosuch: {}
)");
  REQUIRE_FALSE(r.config);
  REQUIRE(r.errors.size() == 4);
  CHECK(r.errors[0].line == 2);
  CHECK(r.errors[1].line == 3);
  CHECK_THAT(r.errors[2].message, Catch::StartsWith("collectors.nosuch"));
  CHECK(r.errors[3].line == 6);
  CHECK_THAT(r.errors[3].message, Catch::StartsWith("collectors.cpu.enabled"));
}

TEST_CASE("Config: a missing file is an error naming the file", "[agent][config]") {
  auto r = loadConfigFile("/nonexistent/vigil.yaml", builtinCollectorInfo());
  REQUIRE_FALSE(r.config);
  REQUIRE(r.errors.size() == 1);
  CHECK_THAT(r.errors[0].toString(),
             Catch::StartsWith("/nonexistent/vigil.yaml: cannot read file"));
}

TEST_CASE("Config: errors in a file carry the file's path", "[agent][config]") {
  const std::string path = VIGIL_FIXTURES "/config/bad_interval.yaml";
  auto r = loadConfigFile(path, builtinCollectorInfo());
  REQUIRE_FALSE(r.config);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].toString() ==
        path +
            ":4:24: global.collection_interval: invalid duration \"5 minutes\": unknown unit "
            "\" minutes\" (use Prometheus syntax such as 15s, 5m or 1h30m)");
}

TEST_CASE("Config: storage settings and byte sizes", "[agent][config]") {
  auto r =
      parse("storage:\n  retention: 6h\n  memory_budget: 256MiB\n  checkpoint_interval: 30s\n");
  INFO(errorsOf(r));
  REQUIRE(r.config);
  CHECK(r.config->storage.retention == Duration{6 * 3600 * 1000});
  CHECK(r.config->storage.memory_budget_bytes == 256u * 1024 * 1024);
  CHECK(r.config->storage.checkpoint_interval == Duration{30000});
  CHECK(*parseByteSize("2GB") == 2ULL << 30);
  CHECK(*parseByteSize("100") == 100);
  CHECK(*parseByteSize("1KiB") == 1024);
  CHECK_FALSE(parseByteSize("MB").isOk());
  CHECK_FALSE(parseByteSize("99999999999999999999TB").isOk());
}

TEST_CASE("Config: listen addresses", "[agent][config]") {
  CHECK(parseListenAddress(":9810")->host == "0.0.0.0");
  CHECK(parseListenAddress("localhost:0")->port == 0);
  CHECK(parseListenAddress("[::1]:80")->host == "::1");
  CHECK_FALSE(parseListenAddress("[::g]:80").isOk());
  CHECK_FALSE(parseListenAddress("127.0.0.1:").isOk());
  CHECK_FALSE(parseListenAddress("bad host:80").isOk());
}

TEST_CASE("Config: the alerting section, inline or from an alertmanager.yml", "[agent][config]") {
  auto inline_config = parseConfig(R"(alerting:
  route:
    receiver: team
    routes:
      - matchers: ['severity="page"']
        receiver: oncall
  receivers:
    - name: team
    - name: oncall
)",
                                   "vigil.yaml", builtinCollectorInfo());
  REQUIRE(inline_config.config.has_value());
  REQUIRE(inline_config.config->alerting != nullptr);
  CHECK(inline_config.config->alerting->route.routes.at(0).options.receiver == "oncall");

  auto referenced = loadConfigFile(VIGIL_FIXTURES "/alerting/vigil_with_alertmanager.yaml",
                                   builtinCollectorInfo());
  REQUIRE(referenced.config.has_value());
  REQUIRE(referenced.config->alerting != nullptr);
  CHECK(referenced.config->alerting->route.options.group_by ==
        std::vector<std::string>{"alertname"});

  auto missing = parseConfig("alerting:\n  config_file: /nonexistent/am.yml\n", "vigil.yaml",
                             builtinCollectorInfo());
  REQUIRE(missing.errors.size() == 1);
  CHECK(missing.errors[0].toString().starts_with("/nonexistent/am.yml: cannot read file"));
}

TEST_CASE("Config: alertmanagers to forward rule alerts to", "[config]") {
  auto r = parseConfig(R"(alertmanagers:
  - url: 'http://127.0.0.1:9093/'
    timeout: 5s
    http_config:
      basic_auth: {username: vigil, password: pw}
)",
                       "vigil.yaml", {});
  REQUIRE(r.config);
  REQUIRE(r.config->alertmanagers);
  REQUIRE(r.config->alertmanagers->size() == 1);
  CHECK((*r.config->alertmanagers)[0].url == "http://127.0.0.1:9093");
  CHECK((*r.config->alertmanagers)[0].timeout.count() == 5000);
  CHECK((*r.config->alertmanagers)[0].http.auth_type == "Basic");
  auto bad = parseConfig("alertmanagers:\n  - url: 127.0.0.1:9093\n", "vigil.yaml", {});
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].toString() ==
        "vigil.yaml:2:10: alertmanagers[0].url: expected an http:// or https:// URL");
}

TEST_CASE("Config: remote_write as Prometheus writes it", "[config]") {
  auto r = parseConfig(R"(remote_write:
  - url: https://mimir.example:9009/api/v1/push
    name: mimir
    remote_timeout: 10s
    headers: {X-Scope-OrgID: team-a}
    bearer_token: abc
    tls_config: {insecure_skip_verify: true}
    write_relabel_configs:
      - source_labels: [__name__]
        regex: 'go_.*'
        action: drop
      - target_label: cluster
        replacement: prod
    queue_config: {max_samples_per_send: 1000, min_shards: 2, max_shards: 10, min_backoff: 100ms}
    metadata_config: {send: false}
)",
                       "vigil.yaml", {});
  INFO(errorsOf(r));
  REQUIRE(r.config);
  REQUIRE(r.config->remote_write);
  REQUIRE(r.config->remote_write->size() == 1);
  const vigil::RemoteWriteConfig& c = (*r.config->remote_write)[0];
  CHECK(c.name == "mimir");
  CHECK(c.remote_timeout.count() == 10000);
  CHECK(c.http.auth_type == "Bearer");
  CHECK(c.http.credentials == "abc");
  CHECK(c.http.insecure_skip_verify);
  REQUIRE(c.http.headers.size() == 1);
  REQUIRE(c.write_relabel_configs.size() == 2);
  CHECK(c.write_relabel_configs[0].action == vigil::RelabelAction::kDrop);
  CHECK(c.queue.max_samples_per_send == 1000);
  CHECK(c.queue.min_shards == 2);
  CHECK(c.queue.max_shards == 10);
  CHECK(c.queue.min_backoff.count() == 100);
  CHECK_FALSE(c.metadata.send);

  auto bad = parseConfig(R"(remote_write:
  - url: mimir:9009
    write_relabel_configs:
      - action: rename
      - action: hashmod
        target_label: shard
    queue_config: {min_shards: 5, max_shards: 2}
)",
                         "vigil.yaml", {});
  REQUIRE(bad.errors.size() == 4);
  CHECK(bad.errors[0].toString() ==
        "vigil.yaml:2:10: remote_write[0].url: expected an http:// or https:// URL, got "
        "\"mimir:9009\"");
  CHECK(bad.errors[1].toString().starts_with(
      "vigil.yaml:4:17: remote_write[0].write_relabel_configs[0].action: unknown relabel action "
      "\"rename\""));
  CHECK(bad.errors[2].toString() ==
        "vigil.yaml:5:9: remote_write[0].write_relabel_configs[1]: modulus: relabel "
        "configuration for hashmod requires non-zero modulus");
  CHECK(bad.errors[3].toString() ==
        "vigil.yaml:7:19: remote_write[0].queue_config: min_shards must not be greater than "
        "max_shards");
}

TEST_CASE("Config: scrape relabel_configs and metric_relabel_configs", "[config]") {
  const std::vector<CollectorInfo> catalog = {{"scrape", true, {CollectorOption::kScrapeConfigs}}};
  auto r = parseConfig(R"(collectors:
  scrape:
    scrape_configs:
      - job_name: app
        static_configs: [{targets: ['127.0.0.1:8080']}]
        relabel_configs:
          - {source_labels: [__address__], regex: '(.*):.*', target_label: host}
        metric_relabel_configs:
          - {source_labels: [__name__], regex: 'go_.*', action: drop}
)",
                       "vigil.yaml", catalog);
  INFO(errorsOf(r));
  REQUIRE(r.config);
  const auto& scrape = r.config->collector("scrape")->scrapes.at(0);
  CHECK(scrape.relabel_configs.size() == 1);
  CHECK(scrape.metric_relabel_configs.at(0).action == vigil::RelabelAction::kDrop);
  auto bad = parseConfig(R"(collectors:
  scrape:
    scrape_configs:
      - job_name: app
        metric_relabel_configs:
          - {regex: '(', action: drop}
)",
                         "vigil.yaml", catalog);
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].toString().starts_with(
      "vigil.yaml:6:13: collectors.scrape.scrape_configs[0].metric_relabel_configs[0]: regex: "
      "invalid regular expression"));
}

TEST_CASE("Config: the anomaly section", "[config]") {
  auto ok = parseConfig(R"(anomaly:
  detector: ewma
  max_models: 50
  interval: 30s
  selectors: ['node_load1', '{__name__=~"container_.*"}']
)",
                        "vigil.yaml", {});
  REQUIRE(ok.config);
  CHECK(ok.config->anomaly.detector == "ewma");
  CHECK(ok.config->anomaly.max_models == 50);
  CHECK(ok.config->anomaly.interval.count() == 30000);
  CHECK(ok.config->anomaly.selectors.size() == 2);
  auto defaults = parseConfig("", "vigil.yaml", {});
  REQUIRE(defaults.config);
  CHECK(defaults.config->anomaly.enabled);
  CHECK(defaults.config->anomaly.selectors == defaultAnomalySelectors());
  auto bad =
      parseConfig("anomaly:\n  detector: fancy\n  selectors: ['rate(x[5m])']\n", "vigil.yaml", {});
  REQUIRE(bad.errors.size() == 2);
  CHECK(bad.errors[0].toString() ==
        "vigil.yaml:2:13: anomaly.detector: unknown detector \"fancy\" (known: ensemble, ewma, "
        "mad, shape)");
  CHECK(bad.errors[1].toString() ==
        "vigil.yaml:3:15: anomaly.selectors[0]: expected a series selector such as node_load1 or "
        "{job=\"x\"}");
}

TEST_CASE("Config: service targets for the redis collector", "[config]") {
  auto ok = parseConfig(R"(collectors:
  redis:
    targets:
      - address: 127.0.0.1:6379
        password_file: /run/secrets/redis
)",
                        "vigil.yaml", builtinCollectorInfo());
  REQUIRE(ok.config);
  const auto* redis = ok.config->collector("redis");
  REQUIRE(redis != nullptr);
  REQUIRE(redis->targets.size() == 1);
  CHECK(redis->targets[0].address == "127.0.0.1:6379");
  CHECK(redis->targets[0].password_file == "/run/secrets/redis");
  auto bad = parseConfig(
      "collectors:\n  redis:\n    targets:\n      - address: localhost\n        password: a\n"
      "        password_env: B\n",
      "vigil.yaml", builtinCollectorInfo());
  REQUIRE(bad.errors.size() == 2);
  CHECK(bad.errors[0].toString() ==
        "vigil.yaml:4:18: collectors.redis.targets[0].address: expected host:port, got "
        "\"localhost\"");
  CHECK(bad.errors[1].toString() ==
        "vigil.yaml:4:9: collectors.redis.targets[0]: give at most one of password, "
        "password_file and password_env");
  // Other collectors take no targets.
  auto not_here =
      parseConfig("collectors:\n  cpu:\n    targets: []\n", "vigil.yaml", builtinCollectorInfo());
  REQUIRE_FALSE(not_here.errors.empty());
  CHECK(not_here.errors[0].toString().starts_with(
      "vigil.yaml:3:5: collectors.cpu.targets: unknown key"));
}

TEST_CASE("Config: probes", "[config]") {
  auto ok = parseConfig(R"(collectors:
  probe:
    probes:
      - url: https://app.example/healthz
        valid_status_codes: [200, 204]
        body_regex: 'ok'
      - tcp: 127.0.0.1:5432
)",
                        "vigil.yaml", builtinCollectorInfo());
  REQUIRE(ok.config);
  const auto* probe = ok.config->collector("probe");
  REQUIRE(probe->probes.size() == 2);
  CHECK(probe->probes[0].valid_status_codes == std::vector<int>{200, 204});
  CHECK(probe->probes[1].tcp == "127.0.0.1:5432");
  auto bad = parseConfig(R"(collectors:
  probe:
    probes:
      - url: ftp://x
      - tcp: 'a:1'
        url: 'http://b'
      - url: http://c
        body_regex: '('
        valid_status_codes: [700]
      - url: http://c
)",
                         "vigil.yaml", builtinCollectorInfo());
  CHECK(errorList(bad) ==
        std::vector<std::string>{
            "vigil.yaml:4:14: collectors.probe.probes[0].url: expected an http:// or "
            "https:// URL",
            "vigil.yaml:5:9: collectors.probe.probes[1]: give exactly one of url and tcp",
            "vigil.yaml:9:29: collectors.probe.probes[2].valid_status_codes: not an HTTP "
            "status code: 700",
            "vigil.yaml:8:21: collectors.probe.probes[2].body_regex: invalid regular "
            "expression: missing ): (",
            "vigil.yaml:10:9: collectors.probe.probes[3]: \"http://c\" is probed twice"});
}

TEST_CASE("Config: scrape_configs as Prometheus writes them", "[config]") {
  auto ok = parseConfig(R"(collectors:
  scrape:
    scrape_configs:
      - job_name: api
        metrics_path: /internal/metrics
        sample_limit: 5000
        body_size_limit: 5MiB
        static_configs:
          - targets: ['127.0.0.1:8080', '127.0.0.1:8081']
            labels: {tier: backend}
)",
                        "vigil.yaml", builtinCollectorInfo());
  REQUIRE(ok.config);
  const auto& scrapes = ok.config->collector("scrape")->scrapes;
  REQUIRE(scrapes.size() == 1);
  CHECK(scrapes[0].metrics_path == "/internal/metrics");
  CHECK(scrapes[0].sample_limit == 5000);
  CHECK(scrapes[0].body_size_limit == 5u << 20);
  REQUIRE(scrapes[0].targets.size() == 2);
  CHECK(scrapes[0].targets[1].address == "127.0.0.1:8081");
  CHECK(scrapes[0].targets[1].labels == std::vector<Label>{{"tier", "backend"}});
  auto bad = parseConfig(R"(collectors:
  scrape:
    scrape_configs:
      - job_name: a
        scheme: ftp
        static_configs: [{targets: [nohost]}]
      - job_name: a
)",
                         "vigil.yaml", builtinCollectorInfo());
  CHECK(errorList(bad) ==
        std::vector<std::string>{
            "vigil.yaml:5:17: collectors.scrape.scrape_configs[0].scheme: expected http or https",
            "vigil.yaml:6:36: collectors.scrape.scrape_configs[0].static_configs[0].targets: "
            "expected host:port, got \"nohost\"",
            "vigil.yaml:7:19: collectors.scrape.scrape_configs[1].job_name: found multiple scrape "
            "configs with job name \"a\""});
}

TEST_CASE("Config: kubernetes_sd_configs for the pods of this node", "[config]") {
  auto ok = parseConfig(R"(collectors:
  scrape:
    scrape_configs:
      - job_name: kubernetes-pods
        kubernetes_sd_configs:
          - role: pod
            node_name: node-a
            namespaces: {names: [shop, cache]}
            selectors: [{role: pod, label: 'app=api'}, {role: pod, field: 'status.phase=Running'}]
            refresh_interval: 30s
          - role: pod
            kubelet_url: https://127.0.0.1:10250
            tls_config: {insecure_skip_verify: true}
            bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
)",
                        "vigil.yaml", builtinCollectorInfo());
  INFO(errorsOf(ok));
  REQUIRE(ok.config);
  const auto& sd = ok.config->collector("scrape")->scrapes.at(0).kubernetes_sd_configs;
  REQUIRE(sd.size() == 2);
  CHECK(sd[0].api_server.empty());  // in-cluster
  CHECK(sd[0].node_name == "node-a");
  CHECK(sd[0].namespaces == std::vector<std::string>{"shop", "cache"});
  CHECK(sd[0].label_selector == "app=api");
  CHECK(sd[0].field_selector == "status.phase=Running");
  CHECK(sd[0].refresh_interval.count() == 30000);
  CHECK(sd[1].kubelet_url == "https://127.0.0.1:10250");
  CHECK(sd[1].insecure_skip_verify);
  auto bad = parseConfig(R"(collectors:
  scrape:
    scrape_configs:
      - job_name: a
        kubernetes_sd_configs:
          - role: node
          - role: pod
            api_server: 10.0.0.1:6443
          - role: pod
            kubelet_url: http://127.0.0.1:10255
            selectors: [{role: pod, label: 'app=x'}]
          - {}
)",
                         "vigil.yaml", builtinCollectorInfo());
  CHECK(errorList(bad) ==
        std::vector<std::string>{
            "vigil.yaml:6:19: collectors.scrape.scrape_configs[0].kubernetes_sd_configs[0].role: "
            "role node is not supported: vigil discovers role: pod, the pods of its node",
            "vigil.yaml:8:25: collectors.scrape.scrape_configs[0].kubernetes_sd_configs[1]."
            "api_server: expected an http:// or https:// URL",
            "vigil.yaml:11:24: collectors.scrape.scrape_configs[0].kubernetes_sd_configs[2]."
            "selectors: the kubelet's pod list takes no selectors",
            "vigil.yaml:12:13: collectors.scrape.scrape_configs[0].kubernetes_sd_configs[3].role: "
            "a role is required (vigil discovers role: pod, the pods of its node)"});
}

TEST_CASE("Config: the container collector's kubernetes key", "[config]") {
  auto ok = parseConfig("collectors:\n  cgroup:\n    kubernetes: {}\n", "vigil.yaml",
                        builtinCollectorInfo());
  INFO(errorsOf(ok));
  REQUIRE(ok.config);
  const auto& k = ok.config->collector("cgroup")->kubernetes;
  REQUIRE(k.has_value());
  CHECK(k->api_server.empty());  // in-cluster, this node from NODE_NAME
  CHECK(!ok.config->collector("cpu")->kubernetes.has_value());
  auto bad = parseConfig("collectors:\n  cgroup:\n    kubernetes: {role: pod}\n", "vigil.yaml",
                         builtinCollectorInfo());
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].toString().find("collectors.cgroup.kubernetes") != std::string::npos);
}

TEST_CASE("Config: the cost collector's prices and node class", "[config]") {
  auto ok = parseConfig(R"(collectors:
  cost:
    pricing:
      cpu_hourly: 0.05
      spot_cpu_hourly: 0.01
      ram_gib_hourly: 0.006
      discount: 0.15
      spot: true
      instance_type: m5.large
      region: eu-west-1
      gpus: 2
    kubernetes: {node_name: node-a}
)",
                        "vigil.yaml", builtinCollectorInfo());
  INFO(errorsOf(ok));
  REQUIRE(ok.config);
  const CostPricing& p = ok.config->collector("cost")->pricing;
  CHECK(p.cpu_hourly == 0.05);
  CHECK(p.spot_cpu_hourly == 0.01);
  CHECK(p.ram_gib_hourly == 0.006);
  CHECK(p.spot_ram_gib_hourly == CostPricing{}.spot_ram_gib_hourly);  // OpenCost's default
  CHECK(p.discount == 0.15);
  CHECK(p.spot);
  CHECK(p.instance_type == "m5.large");
  CHECK(p.gpus == 2);
  REQUIRE(ok.config->collector("cost")->kubernetes.has_value());
  CHECK(ok.config->collector("cost")->kubernetes->node_name == "node-a");
  auto bad = parseConfig(R"(collectors:
  cost:
    pricing:
      cpu_hourly: cheap
      discount: 1.5
      gpus: -1
)",
                         "vigil.yaml", builtinCollectorInfo());
  CHECK(errorList(bad) ==
        std::vector<std::string>{
            "vigil.yaml:4:19: collectors.cost.pricing.cpu_hourly: expected a number from 0 to "
            "1000, got \"cheap\"",
            "vigil.yaml:5:17: collectors.cost.pricing.discount: expected a number from 0 to 1, "
            "got \"1.5\"",
            "vigil.yaml:6:13: collectors.cost.pricing.gpus: expected a whole number, at least 0"});
}

TEST_CASE("Config: an OpenCost price file, JSON or CSV, with errors by line", "[config][cost]") {
  auto load = [](const std::string& pricing) {
    return parseConfig("collectors:\n  cost:\n    pricing:\n" + pricing,
                       VIGIL_FIXTURES "/cost/vigil.yaml", builtinCollectorInfo());
  };
  // OpenCost's custom pricing JSON (numbers as strings, its other keys accepted); a key of
  // the configuration besides the file overrides the file.
  auto json = load("      price_file: opencost-pricing.json\n      spot_cpu_hourly: 0.02\n");
  INFO(errorsOf(json));
  REQUIRE(json.config);
  const CostPricing& p = json.config->collector("cost")->pricing;
  CHECK(p.cpu_hourly == 0.04);
  CHECK(p.spot_cpu_hourly == 0.02);
  CHECK(p.ram_gib_hourly == 0.005);
  CHECK(p.spot_ram_gib_hourly == 0.001);
  CHECK(p.gpu_hourly == 0.9);
  CHECK(p.storage_gib_monthly == Approx(0.04));  // OpenCost's storage is per GB-hour
  CHECK(p.discount == Approx(0.1));
  CHECK(p.spot_label == "node-lifecycle");
  CHECK(p.spot_label_value == "spot");

  auto csv = load("      price_file: node-prices.csv\n");
  INFO(errorsOf(csv));
  REQUIRE(csv.config);
  const auto& rows = csv.config->collector("cost")->pricing.node_prices;
  REQUIRE(rows.size() == 4);  // the pv row is not a node's price
  CHECK(rows[0].id == "node-a");
  CHECK(rows[0].id_field == "metadata.name");
  CHECK(rows[0].hourly == 0.25);
  CHECK(rows[1].id_field == "spec.providerID");
  CHECK(rows[1].region == "eu-west-1");
  CHECK(rows[2].id.empty());
  CHECK(rows[2].instance_type == "e2-standard-4");
  CHECK(rows[3].gpu);
  CHECK(rows[3].hourly == 2.93);
  CHECK(rows[3].where == VIGIL_FIXTURES "/cost/node-prices.csv:5");

  const std::string dir = VIGIL_FIXTURES "/cost/";
  CHECK(errorList(load("      price_file: bad-pricing.json\n")) ==
        std::vector<std::string>{
            dir + "bad-pricing.json:3:10: RAM: expected a price from 0 to 100000 per hour, got "
                  "\"five cents\"",
            dir + "bad-pricing.json:4:10: GPU: expected a number or a string",
            dir + "bad-pricing.json:5:15: discount: expected a discount such as \"10%\" or 0.1, "
                  "got \"120%\""});
  CHECK(errorList(load("      price_file: bad-node-prices.csv\n")) ==
        std::vector<std::string>{
            dir +
                "bad-node-prices.csv:3:1: MarketPriceHourly \"a quarter\" is not a price from 0 to "
                "100000 per hour",
            dir + "bad-node-prices.csv:4:1: expected 8 fields as in the header, got 7",
            dir + "bad-node-prices.csv:5:1: AssetClass \"loadbalancer\" is not node, gpu or pv",
            dir + "bad-node-prices.csv:6:1: InstanceIDField \"status.nodeInfo\" is not "
                  "metadata.name, spec.providerID or metadata.labels.NAME",
            dir + "bad-node-prices.csv:7:1: a row needs an InstanceID or an InstanceType to match "
                  "nodes by",
            dir + "bad-node-prices.csv:8:1: a quoted field is not closed"});
  auto header = errorList(load("      price_file: bad-header.csv\n"));
  REQUIRE(header.size() == 4);
  CHECK(header[0] == dir +
                         "bad-header.csv:1:1: the header has no AssetClass column (expected "
                         "OpenCost's: EndTimestamp,InstanceID,Region,AssetClass,"
                         "InstanceIDField,InstanceType,MarketPriceHourly,Version)");
  auto missing = errorList(load("      price_file: no-such-prices.csv\n"));
  REQUIRE(missing.size() == 1);
  CHECK(missing[0].starts_with(dir + "no-such-prices.csv: cannot read file"));
}

TEST_CASE("Config: the web section: TLS files and token files", "[config][security]") {
  const std::string dir = VIGIL_FIXTURES "/web/";
  auto ok = parseConfig(R"(web:
  tls_server_config:
    cert_file: server.crt
    key_file: /etc/vigil/server.key
    client_ca_file: ca.crt
    client_auth_type: RequireAndVerifyClientCert
    min_version: TLS13
  authorization:
    read_token_files: [read.token]
    admin_token_files: [admin.token]
  limits:
    requests_per_second_per_client: 20
    burst: 40
    max_connections: 64
)",
                        dir + "vigil.yaml", builtinCollectorInfo());
  INFO(errorsOf(ok));
  REQUIRE(ok.config);
  const WebConfig& web = ok.config->web;
  REQUIRE(web.tls);
  CHECK(web.tls->cert_file == dir + "server.crt");
  CHECK(web.tls->key_file == "/etc/vigil/server.key");
  CHECK(web.tls->require_client_cert);
  CHECK(web.tls->tls13_only);
  CHECK(web.read_tokens == std::vector<std::string>{"a-read-token-of-32-characters-xx"});
  CHECK(web.admin_tokens.size() == 1);
  CHECK_FALSE(web.auth_disabled_on_loopback);
  CHECK(web.requests_per_second_per_client == 20);
  CHECK(web.burst == 40);
  CHECK(web.max_connections == 64);
  CHECK(web.gzip);  // the default
  auto plain = parseConfig("web:\n  compression: none\n", "vigil.yaml", {});
  REQUIRE(plain.config);
  CHECK_FALSE(plain.config->web.gzip);
  CHECK(
      errorList(parseConfig("web:\n  compression: br\n", "vigil.yaml", {})) ==
      std::vector<std::string>{
          "vigil.yaml:2:16: web.compression: unknown compression \"br\" (expected gzip or none)"});
  CHECK(errorList(parseConfig("web:\n  limits: {burst: 0}\n", "vigil.yaml", {})) ==
        std::vector<std::string>{"vigil.yaml:2:19: web.limits.burst: expected a number from 1 to "
                                 "1000000, got \"0\""});

  auto bad = parseConfig(R"(global:
  listen_address: 0.0.0.0:9810
web:
  tls_server_config:
    cert_file: server.crt
    client_auth_type: RequireAndVerifyClientCert
    min_version: TLS10
  authorization:
    read_token_files: [short.token, missing.token]
    disabled_on_loopback: true
)",
                         dir + "vigil.yaml", builtinCollectorInfo());
  const auto errors = errorList(bad);
  REQUIRE(errors.size() == 6);
  CHECK(errors[0] == dir + "vigil.yaml:5:5: web.tls_server_config.key_file: missing");
  CHECK(errors[1] == dir +
                         "vigil.yaml:6:23: web.tls_server_config.client_auth_type: "
                         "RequireAndVerifyClientCert needs client_ca_file, the CA that signs "
                         "the clients' certificates");
  CHECK(errors[2] == dir +
                         "vigil.yaml:7:18: web.tls_server_config.min_version: expected TLS12 "
                         "or TLS13 (older versions are not offered), got \"TLS10\"");
  CHECK(errors[3] == dir + "vigil.yaml:9:24: web.authorization.read_token_files[0]: " + dir +
                         "short.token: a token must have at least 16 characters (e.g. `openssl "
                         "rand -hex 32`)");
  CHECK(errors[4].starts_with(dir + "vigil.yaml:9:37: web.authorization.read_token_files[1]: " +
                              dir + "missing.token: cannot read file"));
  CHECK(errors[5] == dir +
                         "vigil.yaml:10:27: web.authorization.disabled_on_loopback: vigil "
                         "listens on 0.0.0.0:9810, which other machines can reach: "
                         "authorization can be disabled only on a loopback address "
                         "(127.0.0.1, ::1)");
  // The secret itself appears in no message.
  for (const auto& e : errors) {
    CHECK(e.find("tooshort") == std::string::npos);
  }
}

TEST_CASE("Config: the statsd and textfile collectors' own keys", "[config]") {
  auto ok = parseConfig(
      "collectors:\n  statsd:\n    listen_address: 127.0.0.1:9125\n  textfile:\n"
      "    directory: textfiles\n",
      "conf/vigil.yaml", builtinCollectorInfo());
  INFO((ok.errors.empty() ? "" : ok.errors[0].toString()));
  REQUIRE(ok.config);
  CHECK(ok.config->collector("statsd")->listen_address == "127.0.0.1:9125");
  CHECK(ok.config->collector("textfile")->directory == "conf/textfiles");
  auto bad = parseConfig("collectors:\n  statsd:\n    listen_address: nowhere\n", "vigil.yaml",
                         builtinCollectorInfo());
  REQUIRE(bad.errors.size() == 1);
  CHECK(bad.errors[0].toString().starts_with("vigil.yaml:3:21: collectors.statsd.listen_address:"));
}
