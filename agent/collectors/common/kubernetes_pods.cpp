#include "kubernetes_pods.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "http_get.h"
#include "proc_file.h"
#include "vigil/percent_encoding.h"
#include "vigil/thread_name.h"

namespace vigil::collectors {

namespace {

using json = nlohmann::json;

constexpr std::string_view kMeta = "__meta_kubernetes_";
constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount/";
constexpr std::size_t kMaxPodListBytes = 64 << 20;

// Prometheus's strutil.SanitizeLabelName: every byte outside [a-zA-Z0-9_] becomes '_'.
std::string sanitize(std::string_view name) {
  std::string out(name);
  for (char& c : out) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!ok) {
      c = '_';
    }
  }
  return out;
}

std::string str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

const json& member(const json& j, const char* key) {
  static const json kEmpty = json::object();
  auto it = j.find(key);
  return it != j.end() && (it->is_object() || it->is_array()) ? *it : kEmpty;
}

// host:port as Go's net.JoinHostPort writes it (IPv6 in brackets).
std::string joinHostPort(const std::string& host, const std::string& port) {
  return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port;
}

// Labels by name: a later value for a name (two annotations that sanitize alike) replaces the
// earlier one, as in Prometheus's label maps.
using LabelMap = std::map<std::string, std::string>;

LabelSet toLabelSet(const LabelMap& map) {
  LabelSet out;
  out.reserve(map.size());
  for (const auto& [name, value] : map) {
    out.push_back({name, value});
  }
  return out;
}

// The labels every target of a pod has.
LabelMap podLabels(const json& pod) {
  const json& meta = member(pod, "metadata");
  const json& spec = member(pod, "spec");
  const json& status = member(pod, "status");
  auto m = [](std::string_view name) { return std::string(kMeta) + std::string(name); };
  LabelMap labels = {
      {m("namespace"), str(meta, "namespace")},  {m("pod_name"), str(meta, "name")},
      {m("pod_ip"), str(status, "podIP")},       {m("pod_node_name"), str(spec, "nodeName")},
      {m("pod_host_ip"), str(status, "hostIP")}, {m("pod_uid"), str(meta, "uid")},
      {m("pod_phase"), str(status, "phase")},
  };
  std::string ready = "unknown";
  for (const json& c : member(status, "conditions")) {
    if (c.is_object() && str(c, "type") == "Ready") {
      ready = str(c, "status");
      std::transform(ready.begin(), ready.end(), ready.begin(),
                     [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    }
  }
  labels[m("pod_ready")] = ready;
  for (const json& owner : member(meta, "ownerReferences")) {
    if (owner.is_object() && owner.value("controller", false)) {
      labels[m("pod_controller_kind")] = str(owner, "kind");
      labels[m("pod_controller_name")] = str(owner, "name");
      break;
    }
  }
  for (const auto& [kind, key] : {std::pair{"label", "labels"}, {"annotation", "annotations"}}) {
    for (const auto& [name, value] : member(meta, key).items()) {
      if (!value.is_string()) {
        continue;
      }
      const std::string clean = sanitize(name);
      labels[m("pod_" + std::string(kind) + "_" + clean)] = value.get<std::string>();
      labels[m("pod_" + std::string(kind) + "present_" + clean)] = "true";
    }
  }
  return labels;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool exists(const std::string& path) { return std::ifstream(path).good(); }

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// The fixed rules below are valid; a bug in one shows in the tests as a missing rule.
void add(std::vector<RelabelConfig>& rules, RelabelAction action, std::vector<std::string> sources,
         std::string regex, std::string target, std::string replacement = "$1") {
  auto rule = RelabelConfig::make(action, std::move(sources), std::move(regex), std::move(target),
                                  std::move(replacement));
  if (rule) {
    rules.push_back(std::move(*rule));
  }
}

}  // namespace

namespace {

// A PodList's JSON, checked once for what both readings below rely on: an object whose
// "items" is an array (null, as Go writes an empty list, becomes an empty array).
Result<json> parsePodList(std::string_view text) {
  json list = json::parse(text, nullptr, false);
  if (list.is_discarded() || !list.is_object()) {
    return invalidArgument("the pod list is not a JSON object");
  }
  auto items = list.find("items");
  if (items == list.end() || !(items->is_array() || items->is_null())) {
    return invalidArgument("the pod list has no \"items\" array (kind " + str(list, "kind") + ")");
  }
  if (items->is_null()) {
    *items = json::array();
  }
  return list;
}

std::vector<ScrapeConfig::Target> targetsOf(const json& list) {
  std::vector<ScrapeConfig::Target> targets;
  for (const json& pod : list["items"]) {
    if (!pod.is_object()) {
      continue;
    }
    const json& status = member(pod, "status");
    const std::string ip = str(status, "podIP");
    const std::string phase = str(status, "phase");
    if (ip.empty() || phase == "Succeeded" || phase == "Failed") {
      continue;  // nothing to scrape: not started, or finished
    }
    const LabelMap base = podLabels(pod);
    const json& spec = member(pod, "spec");
    for (const auto& [key, init] : {std::pair{"containers", "false"}, {"initContainers", "true"}}) {
      for (const json& c : member(spec, key)) {
        if (!c.is_object()) {
          continue;
        }
        LabelMap labels = base;
        labels[std::string(kMeta) + "pod_container_name"] = str(c, "name");
        labels[std::string(kMeta) + "pod_container_image"] = str(c, "image");
        labels[std::string(kMeta) + "pod_container_init"] = init;
        const json& ports = member(c, "ports");
        if (ports.empty()) {
          targets.push_back({ip, toLabelSet(labels)});
          continue;
        }
        for (const json& p : ports) {
          if (!p.is_object() || !p.contains("containerPort") ||
              !p["containerPort"].is_number_integer()) {
            continue;
          }
          const std::string port = std::to_string(p["containerPort"].get<int64_t>());
          LabelMap with_port = labels;
          with_port[std::string(kMeta) + "pod_container_port_name"] = str(p, "name");
          with_port[std::string(kMeta) + "pod_container_port_number"] = port;
          with_port[std::string(kMeta) + "pod_container_port_protocol"] =
              p.contains("protocol") ? str(p, "protocol") : "TCP";
          targets.push_back({joinHostPort(ip, port), toLabelSet(with_port)});
        }
      }
    }
  }
  return targets;
}

std::vector<PodInfo> podsOf(const json& list) {
  std::vector<PodInfo> pods;
  for (const json& pod : list["items"]) {
    if (!pod.is_object()) {
      continue;
    }
    const json& meta = member(pod, "metadata");
    const json& status = member(pod, "status");
    PodInfo info{
        str(meta, "namespace"), str(meta, "name"), str(meta, "uid"), str(status, "phase"), {}, {}};
    for (const json& c : member(member(pod, "spec"), "containers")) {
      const json& requests = member(member(c, "resources"), "requests");
      auto quantity = [&](const char* resource) {
        return parseQuantity(str(requests, resource)).value_or(0);
      };
      info.requests.push_back({str(c, "name"), quantity("cpu"), quantity("memory"),
                               quantity("nvidia.com/gpu") + quantity("amd.com/gpu"),
                               quantity("ephemeral-storage")});
    }
    for (const char* key :
         {"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"}) {
      for (const json& c : member(status, key)) {
        std::string id = c.is_object() ? str(c, "containerID") : std::string();
        if (auto scheme = id.find("://"); scheme != std::string::npos) {
          id.erase(0, scheme + 3);
        }
        if (!id.empty()) {
          info.containers.push_back({std::move(id), str(c, "name"), str(c, "image")});
        }
      }
    }
    pods.push_back(std::move(info));
  }
  return pods;
}

}  // namespace

std::optional<double> parseQuantity(std::string_view q) {
  // The number: digits with at most one point, optionally signed, then an optional exponent
  // (e or E, which no suffix starts with except "E" alone, exa).
  std::size_t i = 0;
  if (i < q.size() && (q[i] == '+' || q[i] == '-')) {
    ++i;
  }
  const std::size_t digits_start = i;
  while (i < q.size() && ((q[i] >= '0' && q[i] <= '9') || q[i] == '.')) {
    ++i;
  }
  if (i == digits_start) {
    return std::nullopt;
  }
  if (i + 1 < q.size() && (q[i] == 'e' || q[i] == 'E') &&
      ((q[i + 1] >= '0' && q[i + 1] <= '9') || q[i + 1] == '+' || q[i + 1] == '-')) {
    ++i;
    if (q[i] == '+' || q[i] == '-') {
      ++i;
    }
    while (i < q.size() && q[i] >= '0' && q[i] <= '9') {
      ++i;
    }
  }
  // from_chars takes no leading '+'.
  auto number = parseDouble(q.substr(q[0] == '+' ? 1 : 0, q[0] == '+' ? i - 1 : i));
  if (!number) {
    return std::nullopt;
  }
  static const std::pair<std::string_view, double> kSuffixes[] = {
      {"", 1},        {"n", 1e-9},    {"u", 1e-6},    {"m", 1e-3},   {"k", 1e3},     {"M", 1e6},
      {"G", 1e9},     {"T", 1e12},    {"P", 1e15},    {"E", 1e18},   {"Ki", 0x1p10}, {"Mi", 0x1p20},
      {"Gi", 0x1p30}, {"Ti", 0x1p40}, {"Pi", 0x1p50}, {"Ei", 0x1p60}};
  for (const auto& [suffix, scale] : kSuffixes) {
    if (q.substr(i) == suffix) {
      return *number * scale;
    }
  }
  return std::nullopt;
}

Result<std::vector<ScrapeConfig::Target>> podTargets(std::string_view pod_list_json) {
  auto list = parsePodList(pod_list_json);
  if (!list) {
    return list.status();
  }
  return targetsOf(*list);
}

Result<std::vector<PodInfo>> podInfos(std::string_view pod_list_json) {
  auto list = parsePodList(pod_list_json);
  if (!list) {
    return list.status();
  }
  return podsOf(*list);
}

std::vector<RelabelConfig> kubernetesAnnotationRelabeling() {
  const std::string a = std::string(kMeta) + "pod_annotation_prometheus_io_";
  const std::string m(kMeta);
  std::vector<RelabelConfig> rules;
  add(rules, RelabelAction::kKeep, {a + "scrape"}, "true", "");
  add(rules, RelabelAction::kReplace, {a + "path"}, "(.+)", "__metrics_path__");
  add(rules, RelabelAction::kReplace, {"__address__", a + "port"}, R"(([^:]+)(?::\d+)?;(\d+))",
      "__address__", "$1:$2");
  add(rules, RelabelAction::kReplace, {a + "scheme"}, "(https?)", "__scheme__");
  add(rules, RelabelAction::kReplace, {m + "namespace"}, "(.*)", "namespace");
  add(rules, RelabelAction::kReplace, {m + "pod_name"}, "(.*)", "pod");
  add(rules, RelabelAction::kReplace, {m + "pod_container_name"}, "(.*)", "container");
  add(rules, RelabelAction::kReplace, {m + "pod_node_name"}, "(.*)", "node");
  return rules;
}

PodDiscovery::PodDiscovery(KubernetesSdConfig config) : config_(std::move(config)) {
  thread_ = std::thread([this] {
    nameThisThread("k8s-pods");
    run();
  });
}

PodDiscovery::~PodDiscovery() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

std::shared_ptr<const PodDiscovery::Listing> PodDiscovery::listing(
    std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, deadline, [&] { return first_done_ || stopping_; });
  return listing_;
}

PodDiscovery::Stats PodDiscovery::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void PodDiscovery::run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto found = refresh();
    lock.lock();
    ++stats_.refreshes;
    if (found) {
      listing_ = std::make_shared<const Listing>(std::move(*found));
      stats_.targets = listing_->targets.size();
      if (last_failed_) {
        spdlog::info("pod discovery recovered pods={}", listing_->pods.size());
      }
      last_failed_ = false;
    } else {
      ++stats_.failures;
      if (!last_failed_) {
        spdlog::warn("pod discovery failed, keeping the last targets error=\"{}\"",
                     found.status().message());
      }
      last_failed_ = true;
    }
    first_done_ = true;
    cv_.notify_all();
    cv_.wait_for(lock, config_.refresh_interval, [&] { return stopping_; });
  }
}

namespace {

// How to reach the API server or the kubelet that `config` names: the base URL (no path), the
// request options with the bearer token and CA, and this node's name (empty for the kubelet,
// which knows its own).
struct ApiAccess {
  std::string base;
  HttpGetOptions options;
  std::string node;
};

Result<ApiAccess> apiAccess(const KubernetesSdConfig& config) {
  ApiAccess a;
  a.options.accept = "application/json";
  a.options.user_agent = "vigil";
  a.options.max_bytes = kMaxPodListBytes;
  a.options.ca_file = config.ca_file;
  a.options.insecure_skip_verify = config.insecure_skip_verify;
  const bool in_cluster = config.api_server.empty() && config.kubelet_url.empty();
  std::string token_file = config.bearer_token_file;
  if (token_file.empty() && exists(std::string(kServiceAccountDir) + "token") &&
      (in_cluster || !config.kubelet_url.empty())) {
    token_file = std::string(kServiceAccountDir) + "token";
  }
  if (a.options.ca_file.empty() && in_cluster) {
    a.options.ca_file = std::string(kServiceAccountDir) + "ca.crt";
  }
  if (!token_file.empty()) {
    std::string token = readFile(token_file);  // read each time: tokens are rotated
    while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())) != 0) {
      token.pop_back();
    }
    if (token.empty() || std::any_of(token.begin(), token.end(),
                                     [](unsigned char c) { return c < 0x21 || c > 0x7e; })) {
      return invalidArgument("bearer token file " + token_file + " is empty or unreadable");
    }
    a.options.headers.push_back({"Authorization", "Bearer " + token});
  }
  if (!config.kubelet_url.empty()) {
    a.base = config.kubelet_url;
    return a;
  }
  a.base = config.api_server;
  if (a.base.empty()) {
    const std::string host = env("KUBERNETES_SERVICE_HOST");
    const std::string port = env("KUBERNETES_SERVICE_PORT");
    if (host.empty() || port.empty()) {
      return invalidArgument(
          "no api_server set and not in a cluster (KUBERNETES_SERVICE_HOST and "
          "KUBERNETES_SERVICE_PORT are unset)");
    }
    a.base = "https://" + joinHostPort(host, port);
  }
  a.node = config.node_name.empty() ? env("NODE_NAME") : config.node_name;
  if (a.node.empty()) {
    return invalidArgument(
        "no node name: set node_name, or NODE_NAME in the environment (the downward API's "
        "spec.nodeName)");
  }
  return a;
}

// GET of a JSON document; an HTTP error carries the start of the API's answer.
Result<std::string> getJson(const std::string& url, const HttpGetOptions& options,
                            std::chrono::steady_clock::time_point deadline) {
  auto got = httpGet(url, options, deadline);
  if (!got.status.isOk()) {
    return Status(got.status.code(), url + ": " + got.status.message());
  }
  if (got.code != 200) {
    return Status(StatusCode::kUnavailable, url + ": HTTP status " + std::to_string(got.code) +
                                                ": " + got.body.substr(0, 200));
  }
  return std::move(got.body);
}

// Well-known node labels that say a node is spot or preemptible capacity.
bool spotByLabels(const json& labels) {
  auto is = [&](const char* key, std::string_view value) {
    auto it = labels.find(key);
    if (it == labels.end() || !it->is_string()) {
      return false;
    }
    std::string v = it->get<std::string>();
    std::transform(v.begin(), v.end(), v.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return v == value;
  };
  return is("cloud.google.com/gke-spot", "true") ||
         is("cloud.google.com/gke-preemptible", "true") ||
         is("eks.amazonaws.com/capacityType", "spot") || is("karpenter.sh/capacity-type", "spot") ||
         is("kubernetes.azure.com/scalesetpriority", "spot") ||
         is("node.kubernetes.io/lifecycle", "spot");
}

}  // namespace

Result<NodeClass> nodeClass(std::string_view node_json) {
  json node = json::parse(node_json, nullptr, false);
  if (node.is_discarded() || !node.is_object() || str(node, "kind") != "Node") {
    return invalidArgument("not a Node object");
  }
  const json& labels = member(member(node, "metadata"), "labels");
  auto first = [&](std::initializer_list<const char*> keys) {
    for (const char* k : keys) {
      if (std::string v = str(labels, k); !v.empty()) {
        return v;
      }
    }
    return std::string();
  };
  NodeClass c;
  c.instance_type = first({"node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type"});
  c.region = first({"topology.kubernetes.io/region", "failure-domain.beta.kubernetes.io/region"});
  c.zone = first({"topology.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/zone"});
  c.provider_id = str(member(node, "spec"), "providerID");
  c.spot = spotByLabels(labels);
  c.name = str(member(node, "metadata"), "name");
  for (const auto& [k, v] : labels.items()) {
    if (v.is_string()) {
      c.labels.emplace_back(k, v.get<std::string>());
    }
  }
  std::sort(c.labels.begin(), c.labels.end());
  return c;
}

Result<NodeClass> fetchNodeClass(const KubernetesSdConfig& config,
                                 std::chrono::steady_clock::time_point deadline) {
  if (!config.kubelet_url.empty()) {
    return invalidArgument(
        "the kubelet serves no Node object: set api_server (or leave it out "
        "in-cluster) to read the node's labels");
  }
  auto access = apiAccess(config);
  if (!access) {
    return access.status();
  }
  auto body = getJson(access->base + "/api/v1/nodes/" + percentEncoded(access->node),
                      access->options, deadline);
  if (!body) {
    return body.status();
  }
  return nodeClass(*body);
}

Result<PodDiscovery::Listing> PodDiscovery::refresh() {
  auto access = apiAccess(config_);
  if (!access) {
    return access.status();
  }
  const HttpGetOptions& options = access->options;
  std::vector<std::string> urls;
  if (!config_.kubelet_url.empty()) {
    urls.push_back(access->base + "/pods");
  } else {
    std::string query = "?fieldSelector=" + percentEncoded("spec.nodeName=" + access->node +
                                                           (config_.field_selector.empty()
                                                                ? std::string()
                                                                : "," + config_.field_selector));
    if (!config_.label_selector.empty()) {
      query += "&labelSelector=" + percentEncoded(config_.label_selector);
    }
    if (config_.namespaces.empty()) {
      urls.push_back(access->base + "/api/v1/pods" + query);
    }
    for (const auto& ns : config_.namespaces) {
      urls.push_back(access->base + "/api/v1/namespaces/" + percentEncoded(ns) + "/pods" + query);
    }
  }

  Listing all;
  const auto deadline =
      std::chrono::steady_clock::now() +
      std::min<std::chrono::milliseconds>(config_.refresh_interval, std::chrono::seconds(10));
  for (const auto& url : urls) {
    auto got = getJson(url, options, deadline);
    if (!got) {
      return got.status();
    }
    auto list = parsePodList(*got);
    if (!list) {
      return Status(list.status().code(), url + ": " + list.status().message());
    }
    if (!config_.kubelet_url.empty() && !config_.namespaces.empty()) {
      // The kubelet lists every namespace; keep the configured ones.
      json& items = (*list)["items"];
      items.erase(std::remove_if(items.begin(), items.end(),
                                 [&](const json& pod) {
                                   return std::find(config_.namespaces.begin(),
                                                    config_.namespaces.end(),
                                                    str(member(pod, "metadata"), "namespace")) ==
                                          config_.namespaces.end();
                                 }),
                  items.end());
    }
    auto targets = targetsOf(*list);
    auto pods = podsOf(*list);
    all.targets.insert(all.targets.end(), std::make_move_iterator(targets.begin()),
                       std::make_move_iterator(targets.end()));
    all.pods.insert(all.pods.end(), std::make_move_iterator(pods.begin()),
                    std::make_move_iterator(pods.end()));
  }
  return all;
}

}  // namespace vigil::collectors
