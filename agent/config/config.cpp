#include "vigil/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <re2/re2.h>

#include "../alerting/alerting_yaml.h"
#include "price_file.h"
#include "vigil/anomaly/detector.h"
#include "vigil/anomaly/multivariate.h"
#include "vigil/metric.h"
#include "vigil/remote_write.h"
#include "vigil/rules/promql_parser.h"
#include "vigil/yaml_reader.h"

namespace vigil {

std::string ListenAddress::toString() const {
  if (host.find(':') != std::string::npos) {
    return "[" + host + "]:" + std::to_string(port);
  }
  return host + ":" + std::to_string(port);
}

namespace {

bool isHostName(std::string_view host) {
  if (host.empty() || host.size() > 253) {
    return false;
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.';
  });
}

}  // namespace

bool ListenAddress::isLoopback() const {
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

Result<ListenAddress> parseListenAddress(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return invalidArgument("invalid address \"" + std::string(text) +
                             "\": expected [IPv6]:PORT such as [::1]:9810");
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    in6_addr addr6{};
    if (inet_pton(AF_INET6, std::string(host).c_str(), &addr6) != 1) {
      return invalidArgument("invalid address \"" + std::string(text) + "\": \"" +
                             std::string(host) + "\" is not an IPv6 address");
    }
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return invalidArgument("invalid address \"" + std::string(text) +
                             "\": expected HOST:PORT such as 127.0.0.1:9810");
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return invalidArgument("invalid address \"" + std::string(text) +
                             "\": put IPv6 addresses in brackets, as in [::1]:9810");
    }
    if (!host.empty() && !isHostName(host)) {
      return invalidArgument("invalid address \"" + std::string(text) + "\": \"" +
                             std::string(host) + "\" is not an IP address or host name");
    }
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return invalidArgument("invalid address \"" + std::string(text) + "\": port \"" +
                           std::string(port) + "\" is not a number from 0 to 65535");
  }
  ListenAddress out;
  out.host = host.empty() ? "0.0.0.0" : std::string(host);
  out.port = static_cast<uint16_t>(value);
  return out;
}

const std::vector<std::string>& defaultAnomalySelectors() {
  static const std::vector<std::string> selectors = {
      R"({__name__=~"node_cpu_seconds_total|node_load1|node_memory_MemAvailable_bytes|node_disk_(read|written)_bytes_total|node_network_(receive|transmit)_bytes_total|node_filesystem_avail_bytes|node_pressure_(cpu|memory|io)_waiting_seconds_total"})",
      R"({__name__=~"container_cpu_usage_seconds_total|container_memory_working_set_bytes"})",
      // Each namespace's spending (rules/library/cost.yml records it; NamespaceSpendRising-
      // Unusually alerts on its score).
      R"({__name__="namespace:vigil_cost_hourly:sum"})",
  };
  return selectors;
}

const std::vector<std::pair<std::string, std::string>>& defaultMultivariateFeatures() {
  // Resources that move together on a serving node: work arrives over the network, costs CPU
  // and context switches, and touches the disk; a node where one moves without the others is
  // doing something unusual even when each looks ordinary.
  static const std::vector<std::pair<std::string, std::string>> features = {
      {"cpu_busy_cores", R"(sum(rate(node_cpu_seconds_total{mode!="idle"}[1m])))"},
      {"load1", "node_load1"},
      {"context_switches", "rate(node_context_switches_total[1m])"},
      {"network_receive_bytes", R"(sum(rate(node_network_receive_bytes_total{device!="lo"}[1m])))"},
      {"network_transmit_bytes",
       R"(sum(rate(node_network_transmit_bytes_total{device!="lo"}[1m])))"},
      {"disk_read_bytes", "sum(rate(node_disk_read_bytes_total[1m]))"},
      {"disk_written_bytes", "sum(rate(node_disk_written_bytes_total[1m]))"},
      {"memory_used_bytes", "node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes"},
  };
  return features;
}

Result<std::size_t> parseByteSize(std::string_view text) {
  std::size_t i = 0;
  unsigned long long number = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    if (number > (~0ULL) / 10 - 9) {
      return invalidArgument("size \"" + std::string(text) + "\" is too large");
    }
    number = number * 10 + static_cast<unsigned>(text[i] - '0');
    ++i;
  }
  if (i == 0) {
    return invalidArgument("invalid size \"" + std::string(text) +
                           "\": expected a number with a unit such as 512MiB or 2GB");
  }
  const std::string_view unit = text.substr(i);
  struct Unit {
    std::string_view name;
    unsigned shift;
  };
  static constexpr Unit kUnits[] = {{"", 0},     {"B", 0},   {"KB", 10},  {"KiB", 10}, {"MB", 20},
                                    {"MiB", 20}, {"GB", 30}, {"GiB", 30}, {"TB", 40},  {"TiB", 40}};
  for (const Unit& u : kUnits) {
    if (u.name == unit) {
      if (u.shift > 0 && number > ((~0ULL) >> u.shift)) {
        return invalidArgument("size \"" + std::string(text) + "\" is too large");
      }
      return static_cast<std::size_t>(number << u.shift);
    }
  }
  return invalidArgument("invalid size \"" + std::string(text) + "\": unknown unit \"" +
                         std::string(unit) + "\" (use B, KiB, MiB, GiB, TiB or KB, MB, GB, TB)");
}

const CollectorSettings* Config::collector(std::string_view name) const {
  for (const auto& c : collectors) {
    if (c.name == name) {
      return &c;
    }
  }
  return nullptr;
}

namespace {

constexpr Duration kMinInterval{100};
constexpr Duration kMaxInterval{24LL * 3600 * 1000};
constexpr Duration kMaxDefaultTimeout{10000};

// Walks the YAML tree, converting it into Config and collecting every error with its position.
class ConfigReader : public YamlReader {
 public:
  using YamlReader::duration;
  using YamlReader::YamlReader;
  /// Relative paths in the configuration are relative to its file's directory.
  std::string base_dir_;

  std::optional<Duration> duration(const YAML::Node& node, const std::string& field, Duration min,
                                   Duration max) {
    auto parsed = duration(node, field);
    if (!parsed) {
      return std::nullopt;
    }
    if (*parsed < min || *parsed > max) {
      error(node, field,
            "duration " + node.Scalar() + " is out of range (" + formatDuration(min) + " to " +
                formatDuration(max) + ")");
      return std::nullopt;
    }
    return *parsed;
  }
  static std::string describe(const YAML::Node& node) { return kindOf(node); }

  // The alerting section: an Alertmanager configuration inline, or `config_file` naming one
  // (relative to this file's directory).
  void readAlerting(const YAML::Node& node, Config& config, std::string_view file) {
    if (node.IsMap() && node["config_file"]) {
      if (!checkMap(node, "alerting", {"config_file"})) {
        return;
      }
      auto path = scalar(node["config_file"], "alerting.config_file");
      if (!path) {
        return;
      }
      std::filesystem::path p(*path);
      if (p.is_relative() && !file.empty() && file.front() != '<') {
        p = std::filesystem::path(std::string(file)).parent_path() / p;
      }
      auto loaded = alerting::loadAlertingConfigFile(p.string());
      for (auto& e : loaded.errors) {
        errors().push_back(std::move(e));
      }
      if (loaded.config) {
        config.alerting =
            std::make_shared<const alerting::AlertingConfig>(std::move(*loaded.config));
      }
      return;
    }
    auto parsed = std::make_shared<alerting::AlertingConfig>();
    const std::size_t before = errors().size();
    alerting::readAlertingDocument(*this, node, "alerting", *parsed);
    if (errors().size() == before) {
      config.alerting = std::move(parsed);
    }
  }

  void readGlobal(const YAML::Node& node, GlobalConfig& g) {
    const std::string f = "global";
    if (!checkMap(node, f,
                  {"listen_address", "data_dir", "collection_interval", "evaluation_interval",
                   "collect_before_scrapes", "external_labels", "log_level", "log_format"})) {
      return;
    }
    if (auto n = node["listen_address"]) {
      if (auto s = scalar(n, f + ".listen_address")) {
        auto addr = parseListenAddress(*s);
        if (addr) {
          g.listen_address = *addr;
        } else {
          error(n, f + ".listen_address", addr.status().message());
        }
      }
    }
    if (auto n = node["data_dir"]) {
      if (auto s = scalar(n, f + ".data_dir")) {
        if (s->empty()) {
          error(n, f + ".data_dir", "must not be empty");
        } else {
          g.data_dir = *s;
        }
      }
    }
    if (auto n = node["collection_interval"]) {
      if (auto d = duration(n, f + ".collection_interval", kMinInterval, kMaxInterval)) {
        g.collection_interval = *d;
      }
    }
    if (auto n = node["evaluation_interval"]) {
      if (auto d = duration(n, f + ".evaluation_interval", kMinInterval, kMaxInterval)) {
        g.evaluation_interval = *d;
      }
    }
    if (auto n = node["collect_before_scrapes"]) {
      if (auto b = boolean(n, f + ".collect_before_scrapes")) {
        g.collect_before_scrapes = *b;
      }
    }
    if (auto n = node["external_labels"]) {
      const std::string ef = f + ".external_labels";
      if (!n.IsMap()) {
        error(n, ef, "expected a mapping of label names to values, got " + kindOf(n));
      } else {
        for (const auto& kv : n) {
          const std::string name = kv.first.Scalar();
          if (!isValidLabelName(name) || name.rfind("__", 0) == 0) {
            error(kv.first, join(ef, name),
                  "invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __)");
            continue;
          }
          if (g.external_labels.count(name) != 0) {
            error(kv.first, join(ef, name), "duplicate key");
            continue;
          }
          if (auto v = scalar(kv.second, join(ef, name))) {
            g.external_labels[name] = *v;
          }
        }
      }
    }
    if (auto n = node["log_level"]) {
      if (auto s = scalar(n, f + ".log_level")) {
        if (*s == "debug") {
          g.log_level = LogLevel::kDebug;
        } else if (*s == "info") {
          g.log_level = LogLevel::kInfo;
        } else if (*s == "warn") {
          g.log_level = LogLevel::kWarn;
        } else if (*s == "error") {
          g.log_level = LogLevel::kError;
        } else {
          error(n, f + ".log_level",
                "unknown level \"" + *s + "\" (expected debug, info, warn or error)");
        }
      }
    }
    if (auto n = node["log_format"]) {
      if (auto s = scalar(n, f + ".log_format")) {
        if (*s == "logfmt") {
          g.log_format = LogFormat::kLogfmt;
        } else if (*s == "json") {
          g.log_format = LogFormat::kJson;
        } else {
          error(n, f + ".log_format", "unknown format \"" + *s + "\" (expected logfmt or json)");
        }
      }
    }
  }

  void readWeb(const YAML::Node& node, const ListenAddress& listen, WebConfig& web) {
    const std::string f = "web";
    if (!checkMap(node, f, {"tls_server_config", "authorization", "limits", "compression"})) {
      return;
    }
    if (auto n = node["compression"]) {
      if (auto s = scalar(n, join(f, "compression"))) {
        if (*s == "gzip" || *s == "none") {
          web.gzip = *s == "gzip";
        } else {
          error(n, join(f, "compression"),
                "unknown compression \"" + *s + "\" (expected gzip or none)");
        }
      }
    }
    if (auto n = node["limits"]; n && !n.IsNull()) {
      const std::string lf = join(f, "limits");
      if (checkMap(n, lf, {"requests_per_second_per_client", "burst", "max_connections"})) {
        auto rate = [&](const char* key, double& into, double min) {
          if (auto v = n[key]) {
            if (auto s = scalar(v, join(lf, key))) {
              double d = 0;
              auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), d);
              if (ec != std::errc() || end != s->data() + s->size() || !(d >= min) || d > 1e6) {
                error(v, join(lf, key),
                      "expected a number from " + formatPlainFloat(min) + " to 1000000, got \"" +
                          *s + "\"");
              } else {
                into = d;
              }
            }
          }
        };
        rate("requests_per_second_per_client", web.requests_per_second_per_client, 0);
        rate("burst", web.burst, 1);
        if (auto v = n["max_connections"]) {
          readCount(v, join(lf, "max_connections"), 1, web.max_connections);
        }
      }
    }
    if (auto n = node["tls_server_config"]; n && !n.IsNull()) {
      const std::string tf = join(f, "tls_server_config");
      if (checkMap(
              n, tf,
              {"cert_file", "key_file", "client_ca_file", "client_auth_type", "min_version"})) {
        WebConfig::Tls tls;
        tls.cert_file = path(n, tf, "cert_file", true);
        tls.key_file = path(n, tf, "key_file", true);
        tls.client_ca_file = path(n, tf, "client_ca_file", false);
        if (auto v = n["client_auth_type"]) {
          if (auto s = scalar(v, join(tf, "client_auth_type"))) {
            if (*s == "RequireAndVerifyClientCert") {
              tls.require_client_cert = true;
              if (tls.client_ca_file.empty()) {
                error(v, join(tf, "client_auth_type"),
                      "RequireAndVerifyClientCert needs client_ca_file, the CA that signs the "
                      "clients' certificates");
              }
            } else if (*s != "NoClientCert") {
              error(v, join(tf, "client_auth_type"),
                    "expected NoClientCert or RequireAndVerifyClientCert, got \"" + *s + "\"");
            }
          }
        }
        if (auto v = n["min_version"]) {
          if (auto s = scalar(v, join(tf, "min_version"))) {
            if (*s == "TLS13") {
              tls.tls13_only = true;
            } else if (*s != "TLS12") {
              error(v, join(tf, "min_version"),
                    "expected TLS12 or TLS13 (older versions are not offered), got \"" + *s + "\"");
            }
          }
        }
        web.tls = std::move(tls);
      }
    }
    if (auto n = node["authorization"]; n && !n.IsNull()) {
      const std::string af = join(f, "authorization");
      if (checkMap(n, af, {"read_token_files", "admin_token_files", "disabled_on_loopback"})) {
        readTokens(n, af, "read_token_files", web.read_tokens);
        readTokens(n, af, "admin_token_files", web.admin_tokens);
        if (auto v = n["disabled_on_loopback"]) {
          if (auto b = boolean(v, join(af, "disabled_on_loopback"))) {
            web.auth_disabled_on_loopback = *b;
            if (*b && !listen.isLoopback()) {
              error(v, join(af, "disabled_on_loopback"),
                    "vigil listens on " + listen.toString() +
                        ", which other machines can reach: authorization can be disabled only "
                        "on a loopback address (127.0.0.1, ::1)");
            }
          }
        }
      }
    }
  }

  // A file name, relative to the configuration's directory.
  std::string path(const YAML::Node& n, const std::string& f, const char* key, bool required) {
    auto v = n[key];
    if (!v) {
      if (required) {
        error(n, join(f, key), "missing");
      }
      return {};
    }
    auto s = scalar(v, join(f, key));
    if (!s || s->empty()) {
      if (s) error(v, join(f, key), "empty file name");
      return {};
    }
    std::filesystem::path p(*s);
    if (p.is_relative() && !base_dir_.empty()) {
      p = std::filesystem::path(base_dir_) / p;
    }
    return p.string();
  }

  // Each file holds one token (a trailing newline is not part of it). The token itself never
  // appears in a message.
  void readTokens(const YAML::Node& n, const std::string& f, const char* key,
                  std::vector<std::string>& into) {
    auto list = n[key];
    if (!list || list.IsNull() || !checkList(list, join(f, key))) {
      return;
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      const std::string field = index(join(f, key), i);
      auto s = scalar(list[i], field);
      if (!s) {
        continue;
      }
      std::filesystem::path p(*s);
      if (p.is_relative() && !base_dir_.empty()) {
        p = std::filesystem::path(base_dir_) / p;
      }
      auto text = readConfigText(p.string(), 4096);
      if (!text) {
        error(list[i], field, p.string() + ": " + text.status().message());
        continue;
      }
      std::string token = std::move(*text);
      while (!token.empty() && (token.back() == '\n' || token.back() == '\r' ||
                                token.back() == ' ' || token.back() == '\t')) {
        token.pop_back();
      }
      if (token.size() < kMinTokenBytes) {
        error(list[i], field,
              p.string() + ": a token must have at least " + std::to_string(kMinTokenBytes) +
                  " characters (e.g. `openssl rand -hex 32`)");
        continue;
      }
      if (token.find_first_of(" \t\r\n") != std::string::npos) {
        error(list[i], field, p.string() + ": a token is one line without spaces");
        continue;
      }
      into.push_back(std::move(token));
    }
  }

  static constexpr std::size_t kMinTokenBytes = 16;

  void readStorage(const YAML::Node& node, StorageConfig& storage) {
    const std::string f = "storage";
    if (!checkMap(node, f, {"retention", "memory_budget", "checkpoint_interval"})) {
      return;
    }
    if (auto n = node["retention"]) {
      if (auto d = duration(n, f + ".retention", Duration{60000}, Duration{365LL * 86400000})) {
        storage.retention = *d;
      }
    }
    if (auto n = node["memory_budget"]) {
      if (auto s = scalar(n, f + ".memory_budget")) {
        auto size = parseByteSize(*s);
        if (size) {
          storage.memory_budget_bytes = *size;
        } else {
          error(n, f + ".memory_budget", size.status().message());
        }
      }
    }
    if (auto n = node["checkpoint_interval"]) {
      if (auto d = duration(n, f + ".checkpoint_interval", Duration{1000}, Duration{86400000})) {
        storage.checkpoint_interval = *d;
      }
    }
  }

  void readAnomaly(const YAML::Node& node, AnomalyConfig& out) {
    const std::string f = "anomaly";
    if (!checkMap(node, f,
                  {"enabled", "detector", "selectors", "max_models", "interval", "multivariate"})) {
      return;
    }
    if (auto n = node["enabled"]) {
      if (auto b = boolean(n, f + ".enabled")) {
        out.enabled = *b;
      }
    }
    if (auto n = node["detector"]) {
      if (auto s = scalar(n, f + ".detector")) {
        const auto names = anomaly::detectorNames();
        if (std::find(names.begin(), names.end(), *s) == names.end()) {
          std::string known;
          for (const auto& name : names) {
            known += (known.empty() ? "" : ", ") + name;
          }
          error(n, f + ".detector", "unknown detector \"" + *s + "\" (known: " + known + ")");
        } else {
          out.detector = *s;
        }
      }
    }
    if (auto n = node["selectors"]) {
      if (auto list = stringList(n, f + ".selectors")) {
        for (std::size_t i = 0; i < list->size(); ++i) {
          auto parsed = promql::parse((*list)[i]);
          const std::string field = f + ".selectors[" + std::to_string(i) + "]";
          if (parsed.error) {
            error(n[i], field, parsed.error->toString());
          } else if (parsed.expr->kind != promql::ExprKind::kVectorSelector) {
            error(n[i], field, "expected a series selector such as node_load1 or {job=\"x\"}");
          }
        }
        out.selectors = *list;
      }
    }
    if (auto n = node["max_models"]) {
      if (auto s = scalar(n, f + ".max_models")) {
        std::size_t v = 0;
        auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
        if (ec != std::errc() || end != s->data() + s->size() || v > 10'000'000) {
          error(n, f + ".max_models", "expected a number of models up to 10000000");
        } else {
          out.max_models = v;
        }
      }
    }
    if (auto n = node["interval"]) {
      if (auto d = duration(n, f + ".interval", Duration{1000}, Duration{3600000})) {
        out.interval = *d;
      }
    }
    if (auto n = node["multivariate"]) {
      readMultivariate(n, out);
    }
  }

  // name: PromQL expression, at most MultivariateModel::kMaxFeatures of them.
  void readMultivariate(const YAML::Node& node, AnomalyConfig& out) {
    const std::string f = "anomaly.multivariate";
    if (node.IsNull()) {
      out.multivariate.clear();
      return;
    }
    if (!node.IsMap()) {
      error(node, f, "expected a mapping of names to PromQL expressions, got " + kindOf(node));
      return;
    }
    std::vector<std::pair<std::string, std::string>> features;
    bool ok = true;
    for (const auto& kv : node) {
      const std::string name = kv.first.Scalar();
      const std::string field = join(f, name);
      if (std::any_of(features.begin(), features.end(),
                      [&](const auto& feature) { return feature.first == name; })) {
        error(kv.first, field, "duplicate key");
        ok = false;
        continue;
      }
      auto text = scalar(kv.second, field);
      if (!text) {
        ok = false;
        continue;
      }
      auto parsed = promql::parse(*text);
      if (parsed.error) {
        error(kv.second, field, parsed.error->toString());
        ok = false;
      } else if (parsed.expr->type() != promql::ValueType::kVector &&
                 parsed.expr->type() != promql::ValueType::kScalar) {
        error(kv.second, field,
              std::string("expected an instant vector or scalar expression, got ") +
                  promql::valueTypeName(parsed.expr->type()));
        ok = false;
      }
      features.emplace_back(name, *text);
    }
    if (features.size() > anomaly::MultivariateModel::kMaxFeatures) {
      error(node, f,
            "at most " + std::to_string(anomaly::MultivariateModel::kMaxFeatures) +
                " expressions, got " + std::to_string(features.size()));
      ok = false;
    }
    if (ok) {
      out.multivariate = std::move(features);
    }
  }

  void readPaths(const YAML::Node& node, HostPaths& paths) {
    const std::string f = "collectors.paths";
    if (!checkMap(node, f, {"procfs", "sysfs", "rootfs"})) {
      return;
    }
    auto readPath = [&](const char* key, std::string& out) {
      if (auto n = node[key]) {
        if (auto s = scalar(n, join(f, key))) {
          if (s->empty() || s->front() != '/') {
            error(n, join(f, key), "must be an absolute path, got \"" + *s + "\"");
          } else {
            out = *s;
          }
        }
      }
    };
    readPath("procfs", paths.procfs);
    readPath("sysfs", paths.sysfs);
    readPath("rootfs", paths.rootfs);
  }

  void readCollectors(const YAML::Node& node, const std::vector<CollectorInfo>& known,
                      Config& config) {
    const std::string f = "collectors";
    std::vector<YAML::Node> sections(known.size());
    if (node && !node.IsNull()) {
      if (!node.IsMap()) {
        error(node, f, "expected a mapping, got " + kindOf(node));
      } else {
        std::set<std::string> seen;
        for (const auto& kv : node) {
          const std::string key = kv.first.Scalar();
          if (!seen.insert(key).second) {
            error(kv.first, join(f, key), "duplicate key");
            continue;
          }
          if (key == "paths") {
            readPaths(kv.second, config.paths);
            continue;
          }
          auto it = std::find_if(known.begin(), known.end(),
                                 [&](const CollectorInfo& c) { return c.name == key; });
          if (it == known.end()) {
            std::string list;
            for (const auto& c : known) {
              list += list.empty() ? "" : ", ";
              list += c.name;
            }
            error(kv.first, join(f, key),
                  "unknown collector (expected paths or one of: " + list + ")");
            continue;
          }
          sections[static_cast<std::size_t>(it - known.begin())] = kv.second;
        }
      }
    }
    for (std::size_t i = 0; i < known.size(); ++i) {
      CollectorSettings s;
      s.name = known[i].name;
      s.enabled = known[i].enabled_by_default;
      s.interval = config.global.collection_interval;
      std::optional<Duration> timeout;
      const YAML::Node& section = sections[i];
      const std::string cf = join(f, s.name);
      std::vector<std::string_view> keys = {"enabled", "interval", "timeout"};
      for (CollectorOption o : known[i].options) {
        keys.push_back(optionKey(o));
      }
      const bool ok_section = section && !section.IsNull() && checkMap(section, cf, keys);
      for (CollectorOption o : known[i].options) {
        const char* key = optionKey(o);
        if (ok_section && section[key]) {
          readOption(o, section[key], join(cf, key), s);
        }
      }
      if (ok_section) {
        if (auto n = section["enabled"]) {
          if (auto b = boolean(n, join(cf, "enabled"))) {
            s.enabled = *b;
          }
        }
        if (auto n = section["interval"]) {
          if (auto d = duration(n, join(cf, "interval"), kMinInterval, kMaxInterval)) {
            s.interval = *d;
          }
        }
        if (auto n = section["timeout"]) {
          if (auto d = duration(n, join(cf, "timeout"), Duration{1}, kMaxInterval)) {
            timeout = *d;
            if (*d > s.interval) {
              error(n, join(cf, "timeout"),
                    "timeout " + formatDuration(*d) + " is longer than the interval " +
                        formatDuration(s.interval));
            }
          }
        }
      }
      s.timeout = timeout.value_or(std::min(s.interval, kMaxDefaultTimeout));
      config.collectors.push_back(std::move(s));
    }
  }

  static const char* optionKey(CollectorOption option) {
    switch (option) {
      case CollectorOption::kTargets:
        return "targets";
      case CollectorOption::kDirectory:
        return "directory";
      case CollectorOption::kProbes:
        return "probes";
      case CollectorOption::kScrapeConfigs:
        return "scrape_configs";
      case CollectorOption::kListenAddress:
        return "listen_address";
      case CollectorOption::kKubernetes:
        return "kubernetes";
      case CollectorOption::kPricing:
        return "pricing";
      case CollectorOption::kNone:
        break;
    }
    return nullptr;
  }

  // A collector's own key, into its settings.
  void readOption(CollectorOption option, const YAML::Node& n, const std::string& f,
                  CollectorSettings& s) {
    switch (option) {
      case CollectorOption::kTargets:
        readTargets(n, f, s.targets);
        break;
      case CollectorOption::kProbes:
        readProbes(n, f, s.probes);
        break;
      case CollectorOption::kScrapeConfigs:
        readScrapeConfigs(n, f, s.scrapes);
        break;
      case CollectorOption::kDirectory:
        if (auto d = scalar(n, f)) {
          std::filesystem::path p(*d);
          if (p.is_relative() && !base_dir_.empty()) {
            p = std::filesystem::path(base_dir_) / p;
          }
          s.directory = p.string();
        }
        break;
      case CollectorOption::kListenAddress:
        if (auto a = scalar(n, f)) {
          if (auto parsed = parseListenAddress(*a); !parsed) {
            error(n, f, parsed.status().message());
          } else {
            s.listen_address = *a;
          }
        }
        break;
      case CollectorOption::kKubernetes:
        if (KubernetesSdConfig k; readKubernetesSdConfig(n, f, k, /*with_role=*/false)) {
          s.kubernetes = std::move(k);
        }
        break;
      case CollectorOption::kPricing:
        readPricing(n, f, s.pricing);
        break;
      case CollectorOption::kNone:
        break;
    }
  }

  void readPricing(const YAML::Node& n, const std::string& f, CostPricing& p) {
    if (!checkMap(
            n, f,
            {"cpu_hourly", "spot_cpu_hourly", "ram_gib_hourly", "spot_ram_gib_hourly", "gpu_hourly",
             "storage_gib_monthly", "discount", "spot", "instance_type", "region", "provider_id",
             "gpus", "price_file", "spot_label", "spot_label_value"})) {
      return;
    }
    // The file first: what the configuration says besides it overrides it.
    if (auto v = n["price_file"]) {
      if (auto s = scalar(v, join(f, "price_file"))) {
        std::filesystem::path path(*s);
        if (path.is_relative() && !base_dir_.empty()) {
          path = std::filesystem::path(base_dir_) / path;
        }
        readPriceFile(path.string(), p, errors());
      }
    }
    auto price = [&](const char* key, double& into, double max) {
      if (auto v = n[key]) {
        if (auto s = scalar(v, join(f, key))) {
          double d = 0;
          auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), d);
          if (ec != std::errc() || end != s->data() + s->size() || !(d >= 0) || d > max) {
            error(v, join(f, key),
                  "expected a number from 0 to " + formatPlainFloat(max) + ", got \"" + *s + "\"");
          } else {
            into = d;
          }
        }
      }
    };
    price("cpu_hourly", p.cpu_hourly, 1000);
    price("spot_cpu_hourly", p.spot_cpu_hourly, 1000);
    price("ram_gib_hourly", p.ram_gib_hourly, 1000);
    price("spot_ram_gib_hourly", p.spot_ram_gib_hourly, 1000);
    price("gpu_hourly", p.gpu_hourly, 10000);
    price("storage_gib_monthly", p.storage_gib_monthly, 1000);
    price("discount", p.discount, 1);
    if (auto v = n["spot"]) {
      if (auto b = boolean(v, join(f, "spot"))) {
        p.spot = *b;
      }
    }
    for (const auto& [key, into] :
         {std::pair{"instance_type", &p.instance_type}, std::pair{"region", &p.region},
          std::pair{"provider_id", &p.provider_id}, std::pair{"spot_label", &p.spot_label},
          std::pair{"spot_label_value", &p.spot_label_value}}) {
      if (auto v = n[key]) {
        if (auto s = scalar(v, join(f, key))) {
          *into = *s;
        }
      }
    }
    if (auto v = n["gpus"]) {
      std::size_t gpus = 0;
      if (readCount(v, join(f, "gpus"), 0, gpus)) {
        p.gpus = static_cast<int>(std::min<std::size_t>(gpus, 1024));
      }
    }
  }

  void readTargets(const YAML::Node& node, const std::string& f, std::vector<ServiceTarget>& out) {
    if (!checkList(node, f)) {
      return;
    }
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string tf = index(f, i);
      if (!checkMap(
              node[i], tf,
              {"address", "database", "username", "password", "password_file", "password_env"})) {
        continue;
      }
      ServiceTarget t;
      for (auto [key, member] : {std::pair{"address", &ServiceTarget::address},
                                 std::pair{"username", &ServiceTarget::username},
                                 std::pair{"password", &ServiceTarget::password},
                                 std::pair{"password_file", &ServiceTarget::password_file},
                                 std::pair{"password_env", &ServiceTarget::password_env}}) {
        if (auto n = node[i][key]) {
          if (auto v = scalar(n, join(tf, key))) {
            t.*member = *v;
          }
        }
      }
      const auto colon = t.address.rfind(':');
      if (t.address.empty()) {
        error(node[i], join(tf, "address"), "an address host:port is required");
      } else if (colon == std::string::npos || colon + 1 == t.address.size() ||
                 t.address.find_first_not_of("0123456789", colon + 1) != std::string::npos) {
        error(node[i]["address"], join(tf, "address"),
              "expected host:port, got \"" + t.address + "\"");
      }
      const int sources = (t.password.empty() ? 0 : 1) + (t.password_file.empty() ? 0 : 1) +
                          (t.password_env.empty() ? 0 : 1);
      if (sources > 1) {
        error(node[i], tf, "give at most one of password, password_file and password_env");
      }
      out.push_back(std::move(t));
    }
  }

  // Prometheus's relabel_config list: every entry compiled and its fields checked as
  // Prometheus's loader does.
  void readRelabelConfigs(const YAML::Node& node, const std::string& f,
                          std::vector<RelabelConfig>& out) {
    if (node.IsNull() || !checkList(node, f)) {
      return;
    }
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string rf = index(f, i);
      const YAML::Node& n = node[i];
      if (!checkMap(n, rf,
                    {"source_labels", "separator", "regex", "modulus", "target_label",
                     "replacement", "action"})) {
        continue;
      }
      RelabelConfig c;
      bool ok = true;
      if (auto v = n["source_labels"]) {
        if (auto list = stringList(v, join(rf, "source_labels"))) {
          for (const auto& name : *list) {
            if (!isValidLabelName(name)) {
              error(v, join(rf, "source_labels"), "\"" + name + "\" is not a valid label name");
              ok = false;
            }
          }
          c.source_labels = *list;
        } else {
          ok = false;
        }
      }
      auto readText = [&](const char* key, std::string& into) {
        if (auto v = n[key]) {
          if (auto s = scalar(v, join(rf, key))) {
            into = *s;
          } else {
            ok = false;
          }
        }
      };
      readText("separator", c.separator);
      readText("regex", c.regex);
      readText("target_label", c.target_label);
      readText("replacement", c.replacement);
      if (auto v = n["modulus"]) {
        if (auto s = scalar(v, join(rf, "modulus"))) {
          auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), c.modulus);
          if (ec != std::errc() || end != s->data() + s->size()) {
            error(v, join(rf, "modulus"), "expected a whole number");
            ok = false;
          }
        }
      }
      if (auto v = n["action"]) {
        if (auto s = scalar(v, join(rf, "action"))) {
          if (auto a = parseRelabelAction(*s)) {
            c.action = *a;
          } else {
            error(v, join(rf, "action"), a.status().message());
            ok = false;
          }
        }
      }
      if (!ok) {
        continue;
      }
      if (Status st = c.compile(); !st.isOk()) {
        error(n, rf, st.message());
        continue;
      }
      out.push_back(std::move(c));
    }
  }

  void readRemoteWrite(const YAML::Node& node, const std::string& f,
                       std::vector<RemoteWriteConfig>& out) {
    if (!checkList(node, f)) {
      return;
    }
    std::set<std::string> names;
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string ef = index(f, i);
      const YAML::Node& n = node[i];
      if (!checkMap(
              n, ef,
              {"url", "name", "remote_timeout", "headers", "write_relabel_configs", "authorization",
               "basic_auth", "bearer_token", "bearer_token_file", "tls_config", "queue_config",
               "metadata_config", "send_exemplars", "send_native_histograms"})) {
        continue;
      }
      RemoteWriteConfig c;
      if (auto v = n["url"]) {
        if (auto s = scalar(v, join(ef, "url"))) {
          c.url = *s;
          if (!c.url.starts_with("http://") && !c.url.starts_with("https://")) {
            error(v, join(ef, "url"), "expected an http:// or https:// URL, got \"" + c.url + "\"");
          }
        }
      } else {
        error(n, join(ef, "url"), "a url is required");
      }
      if (auto v = n["name"]) {
        if (auto s = scalar(v, join(ef, "name"))) {
          c.name = *s;
          if (!names.insert(c.name).second) {
            error(v, join(ef, "name"),
                  "found multiple remote write configs with name \"" + c.name + "\"");
          }
        }
      }
      if (auto v = n["remote_timeout"]) {
        if (auto d = duration(v, join(ef, "remote_timeout"), Duration{1}, Duration{3600 * 1000})) {
          c.remote_timeout = *d;
        }
      }
      alerting::readHttpClientFields(*this, n, ef, c.http);
      if (auto v = n["write_relabel_configs"]) {
        readRelabelConfigs(v, join(ef, "write_relabel_configs"), c.write_relabel_configs);
      }
      for (const char* unsupported : {"send_exemplars", "send_native_histograms"}) {
        if (auto v = n[unsupported]; v && v.IsScalar() && v.Scalar() == "true") {
          error(v, join(ef, unsupported), "vigil keeps neither exemplars nor native histograms");
        }
      }
      if (auto q = n["queue_config"]; q && !q.IsNull()) {
        const std::string qf = join(ef, "queue_config");
        if (checkMap(q, qf,
                     {"capacity", "min_shards", "max_shards", "max_samples_per_send",
                      "batch_send_deadline", "min_backoff", "max_backoff", "retry_on_http_429"})) {
          readCount(q["capacity"], join(qf, "capacity"), 1, c.queue.capacity);
          std::size_t shards = 0;
          if (readCount(q["min_shards"], join(qf, "min_shards"), 1, shards)) {
            c.queue.min_shards = static_cast<int>(std::min<std::size_t>(shards, 1000));
          }
          if (readCount(q["max_shards"], join(qf, "max_shards"), 1, shards)) {
            c.queue.max_shards = static_cast<int>(std::min<std::size_t>(shards, 1000));
          }
          readCount(q["max_samples_per_send"], join(qf, "max_samples_per_send"), 1,
                    c.queue.max_samples_per_send);
          for (auto [key, into] : {std::pair{"batch_send_deadline", &c.queue.batch_send_deadline},
                                   std::pair{"min_backoff", &c.queue.min_backoff},
                                   std::pair{"max_backoff", &c.queue.max_backoff}}) {
            if (auto v = q[key]) {
              if (auto d = duration(v, join(qf, key), Duration{1}, Duration{3600 * 1000})) {
                *into = *d;
              }
            }
          }
          if (auto v = q["retry_on_http_429"]) {
            if (auto b = boolean(v, join(qf, "retry_on_http_429"))) {
              c.queue.retry_on_http_429 = *b;
            }
          }
          if (c.queue.min_shards > c.queue.max_shards) {
            error(q, qf, "min_shards must not be greater than max_shards");
          }
          if (c.queue.min_backoff > c.queue.max_backoff) {
            error(q, qf, "min_backoff must not be greater than max_backoff");
          }
        }
      }
      if (auto m = n["metadata_config"]; m && !m.IsNull()) {
        const std::string mf = join(ef, "metadata_config");
        if (checkMap(m, mf, {"send", "send_interval", "max_samples_per_send"})) {
          if (auto v = m["send"]) {
            if (auto b = boolean(v, join(mf, "send"))) {
              c.metadata.send = *b;
            }
          }
          if (auto v = m["send_interval"]) {
            if (auto d = duration(v, join(mf, "send_interval"), Duration{1000},
                                  Duration{24 * 3600 * 1000})) {
              c.metadata.send_interval = *d;
            }
          }
          readCount(m["max_samples_per_send"], join(mf, "max_samples_per_send"), 1,
                    c.metadata.max_samples_per_send);
        }
      }
      out.push_back(std::move(c));
    }
  }

  // A whole number of at least `min`; false (after reporting) when absent or invalid.
  bool readCount(const YAML::Node& v, const std::string& field, std::size_t min,
                 std::size_t& into) {
    if (!v) {
      return false;
    }
    auto s = scalar(v, field);
    if (!s) {
      return false;
    }
    std::size_t n = 0;
    auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), n);
    if (ec != std::errc() || end != s->data() + s->size() || n < min) {
      error(v, field, "expected a whole number, at least " + std::to_string(min));
      return false;
    }
    into = n;
    return true;
  }

  void readScrapeConfigs(const YAML::Node& node, const std::string& f,
                         std::vector<ScrapeConfig>& out) {
    if (!checkList(node, f)) {
      return;
    }
    std::set<std::string> jobs;
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string sf = index(f, i);
      const YAML::Node& n = node[i];
      if (!checkMap(n, sf,
                    {"job_name", "scheme", "metrics_path", "honor_labels", "sample_limit",
                     "body_size_limit", "tls_config", "static_configs", "kubernetes_sd_configs",
                     "relabel_configs", "metric_relabel_configs"})) {
        continue;
      }
      ScrapeConfig c;
      if (auto v = n["job_name"]) {
        if (auto s = scalar(v, join(sf, "job_name"))) {
          c.job_name = *s;
        }
      }
      if (c.job_name.empty()) {
        error(n, join(sf, "job_name"), "a job_name is required");
      } else if (!jobs.insert(c.job_name).second) {
        error(n["job_name"], join(sf, "job_name"),
              "found multiple scrape configs with job name \"" + c.job_name + "\"");
      }
      if (auto v = n["scheme"]) {
        if (auto s = scalar(v, join(sf, "scheme"))) {
          if (*s != "http" && *s != "https") {
            error(v, join(sf, "scheme"), "expected http or https");
          }
          c.scheme = *s;
        }
      }
      if (auto v = n["metrics_path"]) {
        if (auto s = scalar(v, join(sf, "metrics_path"))) {
          if (!s->starts_with("/")) {
            error(v, join(sf, "metrics_path"), "must start with /");
          }
          c.metrics_path = *s;
        }
      }
      if (auto v = n["honor_labels"]) {
        if (auto b = boolean(v, join(sf, "honor_labels"))) {
          c.honor_labels = *b;
        }
      }
      if (auto v = n["sample_limit"]) {
        if (auto s = scalar(v, join(sf, "sample_limit"))) {
          auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), c.sample_limit);
          if (ec != std::errc() || end != s->data() + s->size()) {
            error(v, join(sf, "sample_limit"), "expected a number of samples");
          }
        }
      }
      if (auto v = n["body_size_limit"]) {
        if (auto s = scalar(v, join(sf, "body_size_limit"))) {
          if (auto size = parseByteSize(*s); size && *size > 0) {
            c.body_size_limit = *size;
          } else {
            error(v, join(sf, "body_size_limit"), "expected a size such as 10MiB");
          }
        }
      }
      if (auto t = n["tls_config"]) {
        readTlsConfig(t, join(sf, "tls_config"), c.ca_file, c.insecure_skip_verify);
      }
      if (auto v = n["relabel_configs"]) {
        readRelabelConfigs(v, join(sf, "relabel_configs"), c.relabel_configs);
      }
      if (auto v = n["metric_relabel_configs"]) {
        readRelabelConfigs(v, join(sf, "metric_relabel_configs"), c.metric_relabel_configs);
      }
      if (auto sc = n["static_configs"]; sc && checkList(sc, join(sf, "static_configs"))) {
        for (std::size_t k = 0; k < sc.size(); ++k) {
          const std::string kf = index(join(sf, "static_configs"), k);
          if (!checkMap(sc[k], kf, {"targets", "labels"})) {
            continue;
          }
          std::vector<Label> labels;
          if (auto l = sc[k]["labels"]) {
            if (!l.IsMap()) {
              error(l, join(kf, "labels"), "expected a mapping, got " + kindOf(l));
            } else {
              for (const auto& kv : l) {
                const std::string name = kv.first.Scalar();
                if (!isValidLabelName(name) || name.starts_with("__")) {
                  error(kv.first, join(join(kf, "labels"), name), "invalid label name");
                } else if (auto v = scalar(kv.second, join(join(kf, "labels"), name))) {
                  labels.push_back({name, *v});
                }
              }
            }
          }
          if (auto targets = sc[k]["targets"]) {
            if (auto list = stringList(targets, join(kf, "targets"))) {
              for (const auto& address : *list) {
                const auto colon = address.rfind(':');
                if (colon == std::string::npos || colon + 1 == address.size()) {
                  error(targets, join(kf, "targets"),
                        "expected host:port, got \"" + address + "\"");
                  continue;
                }
                c.targets.push_back({address, labels});
              }
            }
          }
        }
      }
      if (auto v = n["kubernetes_sd_configs"]) {
        readKubernetesSdConfigs(v, join(sf, "kubernetes_sd_configs"), c.kubernetes_sd_configs);
      }
      out.push_back(std::move(c));
    }
  }

  // A scrape-side tls_config: the CA to trust, or no verification at all.
  void readTlsConfig(const YAML::Node& t, const std::string& tf, std::string& ca_file,
                     bool& insecure_skip_verify) {
    if (!checkMap(t, tf, {"ca_file", "insecure_skip_verify"})) {
      return;
    }
    if (auto v = t["ca_file"]) {
      if (auto s = scalar(v, join(tf, "ca_file"))) {
        ca_file = *s;
      }
    }
    if (auto v = t["insecure_skip_verify"]) {
      if (auto b = boolean(v, join(tf, "insecure_skip_verify"))) {
        insecure_skip_verify = *b;
      }
    }
  }

  void readKubernetesSdConfigs(const YAML::Node& node, const std::string& f,
                               std::vector<KubernetesSdConfig>& out) {
    if (!checkList(node, f)) {
      return;
    }
    for (std::size_t i = 0; i < node.size(); ++i) {
      if (KubernetesSdConfig k; readKubernetesSdConfig(node[i], index(f, i), k, true)) {
        out.push_back(std::move(k));
      }
    }
  }

  // One place to list this node's pods: a kubernetes_sd_config (`with_role`: role pod is
  // required, as in Prometheus) or the container collector's `kubernetes:`.
  bool readKubernetesSdConfig(const YAML::Node& n, const std::string& kf, KubernetesSdConfig& k,
                              bool with_role) {
    const bool is_map =
        with_role ? checkMap(n, kf,
                             {"role", "api_server", "kubelet_url", "node_name", "namespaces",
                              "selectors", "bearer_token_file", "tls_config", "refresh_interval"})
                  : checkMap(n, kf,
                             {"api_server", "kubelet_url", "node_name", "namespaces", "selectors",
                              "bearer_token_file", "tls_config", "refresh_interval"});
    if (!is_map) {
      return false;
    }
    auto text = [&](const char* key, std::string& into) {
      if (auto v = n[key]) {
        if (auto s = scalar(v, join(kf, key))) {
          into = *s;
        }
      }
    };
    if (with_role) {
      std::string role;
      text("role", role);
      if (role != "pod") {
        error(n["role"] ? n["role"] : n, join(kf, "role"),
              role.empty() ? "a role is required (vigil discovers role: pod, the pods of its node)"
                           : "role " + role +
                                 " is not supported: vigil discovers role: pod, the pods of its "
                                 "node");
      }
    }
    text("api_server", k.api_server);
    text("kubelet_url", k.kubelet_url);
    text("node_name", k.node_name);
    text("bearer_token_file", k.bearer_token_file);
    for (const auto& [key, url] :
         {std::pair{"api_server", &k.api_server}, std::pair{"kubelet_url", &k.kubelet_url}}) {
      if (!url->empty() && !url->starts_with("http://") && !url->starts_with("https://")) {
        error(n[key], join(kf, key), "expected an http:// or https:// URL");
      }
    }
    if (!k.api_server.empty() && !k.kubelet_url.empty()) {
      error(n, join(kf, "kubelet_url"), "set api_server or kubelet_url, not both");
    }
    if (auto ns = n["namespaces"]; ns && checkMap(ns, join(kf, "namespaces"), {"names"})) {
      if (auto names = ns["names"]) {
        if (auto list = stringList(names, join(join(kf, "namespaces"), "names"))) {
          k.namespaces = *list;
        }
      }
    }
    if (auto sel = n["selectors"]; sel && checkList(sel, join(kf, "selectors"))) {
      for (std::size_t s = 0; s < sel.size(); ++s) {
        const std::string sf = index(join(kf, "selectors"), s);
        if (!checkMap(sel[s], sf, {"role", "label", "field"})) {
          continue;
        }
        if (auto r = sel[s]["role"]; r && r.Scalar() != "pod") {
          error(r, join(sf, "role"), "only selectors for role pod apply");
        }
        auto add = [&](const char* key, std::string& into) {
          if (auto v = sel[s][key]) {
            if (auto text = scalar(v, join(sf, key))) {
              into += (into.empty() ? "" : ",") + *text;
            }
          }
        };
        add("label", k.label_selector);
        add("field", k.field_selector);
      }
      if (!k.kubelet_url.empty() && (!k.label_selector.empty() || !k.field_selector.empty())) {
        error(sel, join(kf, "selectors"), "the kubelet's pod list takes no selectors");
      }
    }
    if (auto t = n["tls_config"]) {
      readTlsConfig(t, join(kf, "tls_config"), k.ca_file, k.insecure_skip_verify);
    }
    if (auto v = n["refresh_interval"]) {
      if (auto d = duration(v, join(kf, "refresh_interval"), Duration{1000}, kMaxInterval)) {
        k.refresh_interval = *d;
      }
    }
    return true;
  }

  void readProbes(const YAML::Node& node, const std::string& f, std::vector<ProbeTarget>& out) {
    if (!checkList(node, f)) {
      return;
    }
    std::set<std::string> targets;
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string pf = index(f, i);
      const YAML::Node& n = node[i];
      if (!checkMap(n, pf,
                    {"url", "tcp", "valid_status_codes", "body_regex", "ca_file",
                     "insecure_skip_verify"})) {
        continue;
      }
      ProbeTarget p;
      if (auto v = n["url"]) {
        if (auto s = scalar(v, join(pf, "url"))) {
          p.url = *s;
          if (!p.url.starts_with("http://") && !p.url.starts_with("https://")) {
            error(v, join(pf, "url"), "expected an http:// or https:// URL");
          }
        }
      }
      if (auto v = n["tcp"]) {
        if (auto s = scalar(v, join(pf, "tcp"))) {
          p.tcp = *s;
          const auto colon = p.tcp.rfind(':');
          if (colon == std::string::npos || colon + 1 == p.tcp.size()) {
            error(v, join(pf, "tcp"), "expected host:port, got \"" + p.tcp + "\"");
          }
        }
      }
      if (p.url.empty() == p.tcp.empty()) {
        error(n, pf, "give exactly one of url and tcp");
      } else if (!targets.insert(p.url + p.tcp).second) {
        // The target is the series' label: two probes of it would be one series twice.
        error(n, pf, "\"" + p.url + p.tcp + "\" is probed twice");
      }
      if (auto v = n["valid_status_codes"]) {
        if (auto list = stringList(v, join(pf, "valid_status_codes"))) {
          for (const auto& code : *list) {
            int c = 0;
            auto [end, ec] = std::from_chars(code.data(), code.data() + code.size(), c);
            if (ec != std::errc() || end != code.data() + code.size() || c < 100 || c > 599) {
              error(v, join(pf, "valid_status_codes"), "not an HTTP status code: " + code);
            } else {
              p.valid_status_codes.push_back(c);
            }
          }
        }
      }
      if (auto v = n["body_regex"]) {
        if (auto s = scalar(v, join(pf, "body_regex"))) {
          RE2 re(*s, RE2::Quiet);
          if (!re.ok()) {
            error(v, join(pf, "body_regex"), "invalid regular expression: " + re.error());
          }
          p.body_regex = *s;
        }
      }
      if (auto v = n["ca_file"]) {
        if (auto s = scalar(v, join(pf, "ca_file"))) {
          p.ca_file = *s;
        }
      }
      if (auto v = n["insecure_skip_verify"]) {
        if (auto b = boolean(v, join(pf, "insecure_skip_verify"))) {
          p.insecure_skip_verify = *b;
        }
      }
      out.push_back(std::move(p));
    }
  }

  void readRuleFiles(const YAML::Node& node, Config& config, const std::string& base_dir) {
    if (!node.IsSequence()) {
      error(node, "rule_files", "expected a list of file globs, got " + kindOf(node));
      return;
    }
    for (std::size_t i = 0; i < node.size(); ++i) {
      const std::string f = "rule_files[" + std::to_string(i) + "]";
      if (auto s = scalar(node[i], f)) {
        if (s->empty()) {
          error(node[i], f, "must not be empty");
          continue;
        }
        std::filesystem::path p(*s);
        if (p.is_relative() && !base_dir.empty()) {
          p = std::filesystem::path(base_dir) / p;
        }
        config.rule_files.push_back(p.string());
      }
    }
  }
};

}  // namespace

ConfigParseResult parseConfig(std::string_view yaml_text, std::string_view file,
                              const std::vector<CollectorInfo>& collectors) {
  ConfigParseResult result;
  ConfigReader reader{std::string(file), result.errors};
  if (!file.empty() && file.front() != '<') {
    reader.base_dir_ = std::filesystem::path(std::string(file)).parent_path().string();
  }
  YAML::Node root;
  try {
    root = YAML::Load(std::string(yaml_text));
  } catch (const YAML::Exception& e) {
    ConfigError err;
    err.file = std::string(file);
    if (e.mark.line >= 0) {
      err.line = e.mark.line + 1;
      err.column = e.mark.column + 1;
    }
    err.message = "invalid YAML: " + e.msg;
    result.errors.push_back(std::move(err));
    return result;
  }

  Config config;
  config.source = std::string(file);
  if (root.IsNull()) {
    // An empty file is a valid configuration with every default.
    root = YAML::Node(YAML::NodeType::Map);
  }
  try {
    if (reader.checkMap(root, "",
                        {"global", "web", "collectors", "storage", "rule_files", "alerting",
                         "alertmanagers", "anomaly", "remote_write"})) {
      if (auto n = root["global"]) {
        reader.readGlobal(n, config.global);
      }
      if (auto n = root["web"]; n && !n.IsNull()) {
        reader.readWeb(n, config.global.listen_address, config.web);
      }
      reader.readCollectors(root["collectors"], collectors, config);
      if (auto n = root["storage"]; n && !n.IsNull()) {
        reader.readStorage(n, config.storage);
      }
      if (auto n = root["rule_files"]; n && !n.IsNull()) {
        std::string base_dir;
        if (!file.empty() && file.front() != '<') {
          base_dir = std::filesystem::path(std::string(file)).parent_path().string();
        }
        reader.readRuleFiles(n, config, base_dir);
      }
      if (auto n = root["alerting"]; n && !n.IsNull() && !(n.IsMap() && n.size() == 0)) {
        reader.readAlerting(n, config, file);
      }
      if (auto n = root["alertmanagers"]; n && !n.IsNull()) {
        auto targets = std::make_shared<std::vector<alerting::AlertmanagerTarget>>();
        alerting::readAlertmanagerTargets(reader, n, "alertmanagers", *targets);
        config.alertmanagers = std::move(targets);
      }
      if (auto n = root["anomaly"]; n && !n.IsNull()) {
        reader.readAnomaly(n, config.anomaly);
      }
      if (auto n = root["remote_write"]; n && !n.IsNull()) {
        auto endpoints = std::make_shared<std::vector<RemoteWriteConfig>>();
        reader.readRemoteWrite(n, "remote_write", *endpoints);
        config.remote_write = std::move(endpoints);
      }
    }
  } catch (const YAML::Exception& e) {
    // yaml-cpp throws on some malformed trees (e.g. a mapping used as a key); report it with its
    // position rather than letting it escape.
    ConfigError err;
    err.file = std::string(file);
    if (e.mark.line >= 0) {
      err.line = e.mark.line + 1;
      err.column = e.mark.column + 1;
    }
    err.message = "invalid configuration: " + e.msg;
    result.errors.push_back(std::move(err));
  }
  if (result.errors.empty()) {
    result.config = std::move(config);
  }
  return result;
}

ConfigParseResult loadConfigFile(const std::string& path,
                                 const std::vector<CollectorInfo>& collectors) {
  auto text = readConfigText(path);
  if (!text) {
    ConfigParseResult result;
    result.errors.push_back(ConfigError{path, 0, 0, text.status().message()});
    return result;
  }
  return parseConfig(*text, path, collectors);
}

}  // namespace vigil
