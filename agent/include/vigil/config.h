#pragma once
// vigil's configuration file: one YAML document, validated strictly. Every problem is reported
// as FILE:LINE:COL with the dotted path of the field, and a file with any error is rejected
// whole, so a reload never half-applies a configuration.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/duration.h"
#include "vigil/metric.h"
#include "vigil/relabel.h"
#include "vigil/status.h"

namespace vigil {

enum class LogLevel { kDebug, kInfo, kWarn, kError };
enum class LogFormat { kLogfmt, kJson };

struct ListenAddress {
  std::string host;  // IP literal (IPv6 without brackets) or host name; "0.0.0.0" for ":PORT"
  uint16_t port = 0;
  /// "host:port", with brackets around IPv6 literals.
  std::string toString() const;
  /// Only this machine can reach it: 127.0.0.0/8, ::1 or localhost.
  bool isLoopback() const;
};

/// Parses "host:port", "[::1]:port" or ":port".
Result<ListenAddress> parseListenAddress(std::string_view text);

struct GlobalConfig {
  ListenAddress listen_address{"127.0.0.1", 9810};
  std::string data_dir = "data";
  Duration collection_interval{15000};
  Duration evaluation_interval{15000};
  /// The collectors that read this machine run as /metrics is scraped, once the scrapes come
  /// at a steady interval that fits theirs (see ScrapePhase).
  bool collect_before_scrapes = true;
  std::map<std::string, std::string> external_labels;
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kLogfmt;
};

/// Where the host's pseudo file systems are; in a container these are the host mounts.
struct HostPaths {
  std::string procfs = "/proc";
  std::string sysfs = "/sys";
  std::string rootfs = "/";
};

/// The in-memory time-series store.
struct StorageConfig {
  Duration retention{2LL * 3600 * 1000};
  std::size_t memory_budget_bytes = 0;  // 0: no limit beyond retention
  Duration checkpoint_interval{60000};
};

/// The series modelled by default: the node's and containers' resource usage.
const std::vector<std::string>& defaultAnomalySelectors();
/// The node resources the multivariate anomaly model watches together by default.
const std::vector<std::pair<std::string, std::string>>& defaultMultivariateFeatures();

/// Anomaly detection in the agent (the `anomaly` section): which series are modelled and how.
struct AnomalyConfig {
  bool enabled = true;
  std::string detector = "ensemble";
  /// PromQL series selectors; each matching series gets a model (counters, by their `_total`
  /// / `_count` / `_sum` / `_bucket` name, are modelled on their per-second rate).
  std::vector<std::string> selectors = defaultAnomalySelectors();
  std::size_t max_models = 10000;
  Duration interval{0};  // 0: the global collection interval
  /// The node's behaviour as a whole: named PromQL expressions (each summed to one value)
  /// scored together by the multivariate model; empty: off.
  std::vector<std::pair<std::string, std::string>> multivariate = defaultMultivariateFeatures();
};

/// Parses a size such as "512MiB", "1GB" or "0". As in Prometheus, KB/MB/GB mean the same as
/// KiB/MiB/GiB (powers of 1024).
Result<std::size_t> parseByteSize(std::string_view text);

/// A service a collector connects to (Redis, PostgreSQL): where, and where its credentials
/// come from. Passwords are read when connecting and never logged.
struct ServiceTarget {
  std::string address;   // host:port
  std::string database;  // PostgreSQL: the database to connect to (default "postgres")
  std::string username;
  std::string password;       // inline (prefer a file or the environment)
  std::string password_file;  // read at each connection, trailing newline dropped
  std::string password_env;   // an environment variable holding it
};

/// A blackbox-style probe (the probe collector's `probes:`): an HTTP(S) URL or a TCP address.
struct ProbeTarget {
  std::string url;                      // http:// or https://; empty for a TCP probe
  std::string tcp;                      // host:port for a TCP probe
  std::vector<int> valid_status_codes;  // empty: any 2xx
  std::string body_regex;               // RE2, searched in the body; empty: not checked
  std::string ca_file;                  // https: trust these CAs instead of the system's
  bool insecure_skip_verify = false;
};

/// Prices and this node's class for the cost collector (`collectors.cost.pricing:`), in
/// OpenCost's custom-pricing model. The defaults are OpenCost's (GCP us-central1).
struct CostPricing {
  double cpu_hourly = 0.031611;  // $ per vCPU-hour, on demand
  double spot_cpu_hourly = 0.006655;
  double ram_gib_hourly = 0.004237;  // $ per GiB-hour
  double spot_ram_gib_hourly = 0.000892;
  double gpu_hourly = 0.95;  // $ per GPU-hour
  // $ per GiB-month (730 hours) of storage: OpenCost's 0.00005479452 per hour, about 0.04.
  double storage_gib_monthly = 0.04;
  double discount = 0;  // off every price, 0 to 1
  // This node's class.
  bool spot = false;
  std::string instance_type;
  std::string region;
  std::string provider_id;
  int gpus = 0;
  /// OpenCost custom pricing's spotLabel and spotLabelValue: a node whose label has this value
  /// is priced as spot, whatever the well-known labels say.
  std::string spot_label;
  std::string spot_label_value;
  /// Whole-node prices from a CSV price file (OpenCost's CSV provider). The first row that
  /// matches this node gives its hourly price, split into CPU, RAM and GPU in the ratio of the
  /// per-resource prices above.
  struct NodePrice {
    std::string id_field;  // InstanceIDField: metadata.name, spec.providerID, metadata.labels.K
    std::string id;        // InstanceID; empty: the row matches by InstanceType (and Region)
    std::string region;    // empty: any region
    std::string instance_type;
    bool gpu = false;   // AssetClass gpu: the price of one of the node's GPUs, not of the node
    double hourly = 0;  // MarketPriceHourly
    std::string where;  // FILE:LINE, for logs
  };
  std::vector<NodePrice> node_prices;
  std::string price_file;  // where node_prices (or the custom prices) came from
};

/// Discovery of the pods on this node (a scrape config's `kubernetes_sd_configs:`, role pod
/// only), from the API server or the kubelet.
struct KubernetesSdConfig {
  /// The API server; empty for the in-cluster one (KUBERNETES_SERVICE_HOST and _PORT, with the
  /// service account's token and CA).
  std::string api_server;
  /// The kubelet (e.g. https://127.0.0.1:10250) whose /pods lists this node's pods, instead of
  /// the API server.
  std::string kubelet_url;
  /// The node whose pods are listed (fieldSelector spec.nodeName); empty: $NODE_NAME.
  std::string node_name;
  std::vector<std::string> namespaces;  // empty: every namespace
  std::string label_selector;           // passed to the API server as labelSelector
  std::string field_selector;           // added to the node's field selector
  std::string bearer_token_file;        // empty: the service account's token when in-cluster
  std::string ca_file;                  // empty: the service account's CA when in-cluster
  bool insecure_skip_verify = false;
  Duration refresh_interval{15000};
};

/// A Prometheus scrape_config (the scrape collector's `scrape_configs:`): static targets and
/// discovered pods.
struct ScrapeConfig {
  struct Target {
    std::string address;  // host:port, the `instance` label
    std::vector<Label> labels;
  };
  std::string job_name;
  std::string scheme = "http";
  std::string metrics_path = "/metrics";
  bool honor_labels = false;
  std::size_t sample_limit = 0;            // 0: none (the parser's own bound still holds)
  std::size_t body_size_limit = 10 << 20;  // bytes
  std::string ca_file;
  bool insecure_skip_verify = false;
  std::vector<Target> targets;
  std::vector<KubernetesSdConfig> kubernetes_sd_configs;
  /// Applied to each target's labels (__address__, __scheme__, __metrics_path__, job and the
  /// static labels) before it is scraped; a target they drop is not scraped.
  std::vector<RelabelConfig> relabel_configs;
  /// Applied to every scraped sample (with __name__ and the target's labels) before it is kept.
  std::vector<RelabelConfig> metric_relabel_configs;
};

struct CollectorSettings {
  std::string name;
  bool enabled = false;
  Duration interval{0};  // resolved: the collector's own, else global.collection_interval
  Duration timeout{0};   // resolved: the collector's own, else the interval (capped at 10s)
  std::vector<ServiceTarget> targets;  // for collectors of services (`targets:`)
  std::string directory;               // for collectors reading a directory (`directory:`)
  std::vector<ProbeTarget> probes;     // for the probe collector (`probes:`)
  std::vector<ScrapeConfig> scrapes;   // for the scrape collector (`scrape_configs:`)
  std::string listen_address;          // for collectors that listen (`listen_address:`)
  /// For the container collector (`kubernetes:`): where this node's pods are listed, to name
  /// their cgroups by namespace, pod and container.
  std::optional<KubernetesSdConfig> kubernetes;
  CostPricing pricing;  // for the cost collector (`pricing:`)
};

namespace alerting {
struct AlertingConfig;
struct AlertmanagerTarget;
}  // namespace alerting
struct RemoteWriteConfig;

/// vigil's own HTTP server (`web:`): TLS, and who may read and who may change things.
struct WebConfig {
  /// Prometheus's web-config `tls_server_config`.
  struct Tls {
    std::string cert_file;  // PEM, the certificate chain; reloaded when the file changes
    std::string key_file;   // PEM
    std::string client_ca_file;
    bool require_client_cert = false;  // client_auth_type: RequireAndVerifyClientCert
    bool tls13_only = false;           // min_version: TLS13 (default TLS12)
  };
  std::optional<Tls> tls;
  /// Bearer tokens, read from files (`authorization.read_token_files`, `admin_token_files`).
  /// A read token may read (metrics, queries, alerts, rules); an admin token may also change
  /// things (silences, acknowledgements, reloads, pushed alerts and metrics). Secrets: never
  /// logged or shown.
  std::vector<std::string> read_tokens;
  std::vector<std::string> admin_tokens;
  /// `authorization.disabled_on_loopback`: no tokens asked at all, allowed only when vigil
  /// listens on a loopback address.
  bool auth_disabled_on_loopback = false;
  /// `limits`: per client (by IP address), a token bucket of `burst` requests refilled at
  /// `requests_per_second_per_client` (0: no limit); past it, 429. And the most connections
  /// open at once, past which new ones are closed.
  double requests_per_second_per_client = 100;
  double burst = 200;
  std::size_t max_connections = 256;
  /// `compression`: `gzip` (the default) compresses a response of 1 KiB or more for a client
  /// that accepts it, as node_exporter and Prometheus do; `none` never does (promhttp's
  /// DisableCompression): about five times the bytes of a node's /metrics on the wire, and no
  /// compressing on the node (see the README's node_bench figures).
  bool gzip = true;
};

struct Config {
  std::string source;  // file name the configuration came from, or "<embedded default>"
  GlobalConfig global;
  WebConfig web;
  HostPaths paths;
  StorageConfig storage;
  std::vector<CollectorSettings> collectors;  // one entry per known collector, in catalog order
  std::vector<std::string> rule_files;        // globs, resolved against the config's directory
  AnomalyConfig anomaly;
  /// Alert routing (the `alerting` section, inline or from its `config_file`); null when the
  /// section is absent or empty.
  std::shared_ptr<const alerting::AlertingConfig> alerting;
  /// Alertmanagers the rule alerts are also sent to (the `alertmanagers` section); null when
  /// the section is absent.
  std::shared_ptr<const std::vector<alerting::AlertmanagerTarget>> alertmanagers;
  /// Remote-write endpoints (the `remote_write` section); null when the section is absent.
  std::shared_ptr<const std::vector<RemoteWriteConfig>> remote_write;

  const CollectorSettings* collector(std::string_view name) const;
};

using ConfigError = SourceError;

/// What the config parser needs to know about a collector that it does not own.
/// A key of its own a collector takes besides enabled, interval and timeout.
enum class CollectorOption {
  kNone,
  kTargets,        // `targets:` services it connects to
  kDirectory,      // `directory:` files it reads
  kProbes,         // `probes:`
  kScrapeConfigs,  // `scrape_configs:`
  kListenAddress,  // `listen_address:` where it listens
  kKubernetes,     // `kubernetes:` where the pods of this node are listed
  kPricing,        // `pricing:` prices and the node's class
};

struct CollectorInfo {
  std::string name;
  bool enabled_by_default = true;
  std::vector<CollectorOption> options = {};  // the keys of its own, if any
};

struct ConfigParseResult {
  std::optional<Config> config;  // set only when errors is empty
  std::vector<ConfigError> errors;
};

/// Parses configuration text. `file` names it in error messages and anchors relative paths.
ConfigParseResult parseConfig(std::string_view yaml_text, std::string_view file,
                              const std::vector<CollectorInfo>& collectors);

/// Reads and parses a configuration file.
ConfigParseResult loadConfigFile(const std::string& path,
                                 const std::vector<CollectorInfo>& collectors);

/// The configuration `vigil run` uses when given no --config.
std::string_view embeddedDefaultConfig();

}  // namespace vigil
