// Discovery of this node's pods against a small fake API server (and kubelet) on loopback that
// serves a recorded pod list: Prometheus's __meta_kubernetes_* target labels, the
// prometheus.io annotations, the namespace/pod/container/node labels, refresh failures and
// pods that go away.
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "agent/collectors/common/kubernetes_pods.h"
#include "agent/collectors/container/cgroup_collector.h"
#include "agent/collectors/service/scrape_collector.h"
#include "tests/support/collect.h"
#include "tests/support/loopback_server.h"
#include "tests/support/relabel.h"

using namespace vigil;
using namespace vigil::test;
using namespace std::chrono_literals;

namespace {

std::string recordedPods(int api_port, int web_port) {
  std::ifstream in(VIGIL_FIXTURES "/kubernetes/pods.json");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  for (const auto& [from, to] : {std::pair{std::string("@API_PORT@"), std::to_string(api_port)},
                                 std::pair{std::string("@WEB_PORT@"), std::to_string(web_port)}}) {
    for (auto at = text.find(from); at != std::string::npos; at = text.find(from)) {
      text.replace(at, from.size(), to);
    }
  }
  return text;
}

std::string label(const LabelSet& labels, const std::string& name) {
  for (const auto& l : labels) {
    if (l.name == name) {
      return l.value;
    }
  }
  return "";
}

std::map<std::string, double> collectOnce(Collector& collector) {
  return flattenBatch(collectBatch(collector, 4s));
}

// Waits (up to 10 s) until the API server has answered two more refreshes, so that the one
// that started before a change is behind us too.
bool twoMoreRequests(const std::atomic<int>& requests) {
  const int from = requests.load();
  const auto until = std::chrono::steady_clock::now() + 10s;
  while (requests.load() < from + 2) {
    if (std::chrono::steady_clock::now() > until) {
      return false;
    }
    std::this_thread::sleep_for(50ms);
  }
  return true;
}

std::size_t countPrefix(const std::map<std::string, double>& m, const std::string& prefix) {
  std::size_t n = 0;
  for (const auto& [key, v] : m) {
    n += key.starts_with(prefix) ? 1 : 0;
  }
  return n;
}

}  // namespace

TEST_CASE("Kubernetes discovery: a pod list gives Prometheus's pod-role targets", "[kubernetes]") {
  auto targets = collectors::podTargets(recordedPods(8080, 8081));
  REQUIRE(targets);
  // api: two containers with a port each and a portless init container; redis-0: one port;
  // web: a container without ports; the finished backup and the pending worker: nothing.
  REQUIRE(targets->size() == 5);
  const auto& api = (*targets)[1];
  CHECK(api.address == "127.0.0.1:8080");
  const std::string m = "__meta_kubernetes_";
  CHECK(label(api.labels, m + "namespace") == "shop");
  CHECK(label(api.labels, m + "pod_name") == "api-7d9f8b6c5-x2k4p");
  CHECK(label(api.labels, m + "pod_ip") == "127.0.0.1");
  CHECK(label(api.labels, m + "pod_node_name") == "node-a");
  CHECK(label(api.labels, m + "pod_host_ip") == "127.0.0.1");
  CHECK(label(api.labels, m + "pod_uid") == "0b7e3f0e-5c1a-4f0e-9d7b-2b1d3c4e5f60");
  CHECK(label(api.labels, m + "pod_phase") == "Running");
  CHECK(label(api.labels, m + "pod_ready") == "true");
  CHECK(label(api.labels, m + "pod_controller_kind") == "ReplicaSet");
  CHECK(label(api.labels, m + "pod_controller_name") == "api-7d9f8b6c5");
  CHECK(label(api.labels, m + "pod_container_name") == "api");
  CHECK(label(api.labels, m + "pod_container_image") == "registry.example.com/api:1.42.0");
  CHECK(label(api.labels, m + "pod_container_init") == "false");
  CHECK(label(api.labels, m + "pod_container_port_name") == "http");
  CHECK(label(api.labels, m + "pod_container_port_number") == "8080");
  CHECK(label(api.labels, m + "pod_container_port_protocol") == "TCP");
  // Label and annotation names sanitized, with their "present" twins.
  CHECK(label(api.labels, m + "pod_label_app_kubernetes_io_name") == "api");
  CHECK(label(api.labels, m + "pod_labelpresent_app_kubernetes_io_name") == "true");
  CHECK(label(api.labels, m + "pod_annotation_prometheus_io_port") == "8080");
  CHECK(label(api.labels, m + "pod_annotationpresent_prometheus_io_scrape") == "true");
  CHECK(std::is_sorted(api.labels.begin(), api.labels.end()));

  const auto& migrate = (*targets)[2];
  CHECK(migrate.address == "127.0.0.1");
  CHECK(label(migrate.labels, m + "pod_container_init") == "true");
  CHECK(label(migrate.labels, m + "pod_container_port_number").empty());
  CHECK((*targets)[3].address == "127.0.0.2:6379");
  CHECK(label((*targets)[4].labels, m + "pod_ready") == "false");

  CHECK(collectors::kubernetesAnnotationRelabeling().size() == 8);  // every rule compiles
  CHECK(collectors::podTargets("{\"kind\":\"PodList\",\"items\":null}")->empty());
  CHECK(collectors::podTargets("{\"kind\":\"Status\",\"code\":403}").status().message() ==
        "the pod list has no \"items\" array (kind Status)");
  CHECK_FALSE(collectors::podTargets("<html>").isOk());
}

TEST_CASE(
    "Kubernetes discovery: the annotated pods of this node are scraped with namespace, pod, "
    "container and node labels",
    "[kubernetes][integration]") {
  LoopbackServer api;
  api.http.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("orders_total 7\n", "text/plain");
  });
  api.start();
  LoopbackServer web;
  web.http.Get("/custom/metrics", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("page_views_total 3\n", "text/plain");
  });
  web.start();

  std::mutex mu;
  std::string pods = recordedPods(api.port, web.port);
  std::atomic<int> status{200};
  std::atomic<int> requests{0};
  LoopbackServer apiserver;
  apiserver.http.Get("/api/v1/pods", [&](const httplib::Request& req, httplib::Response& res) {
    ++requests;
    // Only this node's pods, asked for with the service account's token.
    if (req.get_header_value("Authorization") != "Bearer test-token" ||
        req.get_param_value("fieldSelector") != "spec.nodeName=node-a") {
      res.status = 403;
      res.set_content("{\"kind\":\"Status\",\"code\":403}", "application/json");
      return;
    }
    res.status = status.load();
    std::lock_guard lock(mu);
    res.set_content(status.load() == 200 ? pods : "{}", "application/json");
  });
  apiserver.start();

  const auto token =
      std::filesystem::temp_directory_path() / ("vigil-k8s-token-" + std::to_string(::getpid()));
  std::ofstream(token) << "test-token\n";
  KubernetesSdConfig sd;
  sd.api_server = "http://127.0.0.1:" + std::to_string(apiserver.port);
  sd.node_name = "node-a";
  sd.bearer_token_file = token.string();
  sd.refresh_interval = 1000ms;
  ScrapeConfig c;
  c.job_name = "kubernetes-pods";
  c.kubernetes_sd_configs = {sd};
  CollectorSettings settings;
  settings.scrapes = {c};
  auto collector = collectors::makeScrapeCollector(settings, HostPaths{});
  REQUIRE(collector);

  auto m = collectOnce(**collector);
  const std::string job = "|job=kubernetes-pods";
  const std::string api_labels = "|container=api|instance=127.0.0.1:" + std::to_string(api.port) +
                                 job + "|namespace=shop|node=node-a|pod=api-7d9f8b6c5-x2k4p";
  const std::string web_labels = "|container=web|instance=127.0.0.1:" + std::to_string(web.port) +
                                 job + "|namespace=shop|node=node-a|pod=web-5f6d7c8b9-qq7rt";
  // The api pod's three containers point at one annotated port: scraped once, labelled by the
  // container that declares it. redis-0 is not annotated; the others have nothing to scrape.
  CHECK(countPrefix(m, "up|") == 2);
  CHECK(m["up" + api_labels] == 1);
  CHECK(m["orders_total" + api_labels] == 7);
  CHECK(m["up" + web_labels] == 1);
  CHECK(m["page_views_total" + web_labels] == 3);
  CHECK(m["vigil_discovery_targets" + job] == 5);
  CHECK(m["vigil_discovery_refresh_failures_total" + job] == 0);

  // The API server fails: the targets stay, the failures are counted.
  status = 500;
  REQUIRE(twoMoreRequests(requests));
  m = collectOnce(**collector);
  CHECK(countPrefix(m, "up|") == 2);
  CHECK(m["up" + api_labels] == 1);
  CHECK(m["vigil_discovery_refresh_failures_total" + job] >= 1);

  // The web pod is deleted: once the API server answers again, its target goes.
  {
    std::lock_guard lock(mu);
    const auto at = pods.find("    {\n      \"metadata\": {\n        \"name\": \"web-");
    const auto end = pods.find("    {\n      \"metadata\": {\n        \"name\": \"backup-");
    REQUIRE(at != std::string::npos);
    pods.erase(at, end - at);
  }
  status = 200;
  REQUIRE(twoMoreRequests(requests));
  m = collectOnce(**collector);
  CHECK(countPrefix(m, "up|") == 1);
  CHECK(m.count("up" + web_labels) == 0);
  CHECK(m["vigil_discovery_targets" + job] == 4);
  std::filesystem::remove(token);
}

TEST_CASE(
    "Kubernetes discovery: from the kubelet's pod list, with namespaces and the job's own "
    "relabel_configs",
    "[kubernetes][integration]") {
  LoopbackServer kubelet;
  const std::string pods = recordedPods(8080, 8081);
  kubelet.http.Get("/pods", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(pods, "application/json");
  });
  kubelet.start();
  KubernetesSdConfig sd;
  sd.kubelet_url = "http://127.0.0.1:" + std::to_string(kubelet.port);
  sd.namespaces = {"cache"};
  ScrapeConfig c;
  c.job_name = "pods";
  c.kubernetes_sd_configs = {sd};
  // No annotation needed with these: every container port, labelled by pod.
  c.relabel_configs = {
      relabelRule(RelabelAction::kReplace, {"__meta_kubernetes_pod_name"}, "(.*)", "pod")};
  CollectorSettings settings;
  settings.scrapes = {c};
  auto collector = collectors::makeScrapeCollector(settings, HostPaths{});
  REQUIRE(collector);
  auto m = collectOnce(**collector);
  // Only redis-0 is in namespace cache; nothing listens on its port, so it is down.
  CHECK(countPrefix(m, "up|") == 1);
  CHECK(m.count("up|instance=127.0.0.2:6379|job=pods|pod=redis-0") == 1);
  CHECK(m["vigil_discovery_targets|job=pods"] == 1);
}

TEST_CASE(
    "Kubernetes pod list: container metrics named by namespace, pod and container, sandboxes "
    "left out",
    "[kubernetes][cgroup][integration]") {
  // The pods whose cgroups the recorded tree under tests/fixtures/cgroup holds.
  const std::string a64(64, 'a');
  const std::string b64(64, 'b');
  const std::string pods = R"({"kind":"PodList","apiVersion":"v1","items":[
    {"metadata":{"name":"api-1","namespace":"shop","uid":"1234abcd-5678-90ef-aaaa-bbbbccccdddd"},
     "spec":{"nodeName":"node-a","containers":[{"name":"api","image":"api:1.42"}]},
     "status":{"phase":"Running","podIP":"10.0.0.7","containerStatuses":[
       {"name":"api","image":"registry.example.com/api:1.42","containerID":"containerd://)" +
                           a64 + R"("}]}},
    {"metadata":{"name":"redis-0","namespace":"cache","uid":"99990000-1111-2222-3333-444455556666"},
     "spec":{"nodeName":"node-a","containers":[{"name":"redis","image":"redis:7"}]},
     "status":{"phase":"Running","podIP":"10.0.0.8","containerStatuses":[
       {"name":"redis","image":"docker.io/library/redis:7","containerID":"cri-o://)" +
                           b64 + R"("}]}},
    {"metadata":{"name":"backup-1","namespace":"db","uid":"0000aaaa-bbbb-cccc-dddd-eeeeffff0000"},
     "spec":{"nodeName":"node-a","containers":[{"name":"backup","image":"postgres:15"}]},
     "status":{"phase":"Running","podIP":"10.0.0.9","containerStatuses":[
       {"name":"backup","image":"postgres:15","containerID":"docker://)" +
                           std::string(64, 'd') + R"("}]}}]})";
  LoopbackServer apiserver;
  apiserver.http.Get("/api/v1/pods", [&](const httplib::Request& req, httplib::Response& res) {
    if (req.get_param_value("fieldSelector") != "spec.nodeName=node-a") {
      res.status = 400;
      return;
    }
    res.set_content(pods, "application/json");
  });
  apiserver.start();

  HostPaths paths;
  paths.sysfs = VIGIL_FIXTURES "/cgroup/sys";
  paths.procfs = VIGIL_FIXTURES "/cgroup/proc";
  CollectorSettings settings;
  KubernetesSdConfig k;
  k.api_server = "http://127.0.0.1:" + std::to_string(apiserver.port);
  k.node_name = "node-a";
  settings.kubernetes = k;
  auto collector = collectors::makeCgroupCollector(settings, paths);
  REQUIRE(collector);
  const MetricBatch batch = collectBatch(**collector, 4s);

  // Each container_cpu_usage_seconds_total series, by its cgroup (id).
  std::map<std::string, LabelSet> cpu;
  for (const auto& f : batch.families()) {
    if (f.name == "container_cpu_usage_seconds_total") {
      for (const auto& s : f.samples) {
        cpu[label(s.labels, "id")] = s.labels;
      }
    }
  }
  const std::string api_pod =
      "/kubepods.slice/kubepods-burstable.slice/"
      "kubepods-burstable-pod1234abcd_5678_90ef_aaaa_bbbbccccdddd.slice";
  REQUIRE(cpu.count(api_pod) == 1);
  CHECK(label(cpu[api_pod], "namespace") == "shop");
  CHECK(label(cpu[api_pod], "pod") == "api-1");
  CHECK(label(cpu[api_pod], "container").empty());  // the pod's own cgroup
  const std::string api_container = api_pod + "/cri-containerd-" + a64 + ".scope";
  REQUIRE(cpu.count(api_container) == 1);
  CHECK(label(cpu[api_container], "container") == "api");
  CHECK(label(cpu[api_container], "image") == "registry.example.com/api:1.42");
  CHECK(label(cpu[api_container], "pod_uid") == "1234abcd-5678-90ef-aaaa-bbbbccccdddd");
  const std::string redis =
      "/kubepods.slice/kubepods-pod99990000_1111_2222_3333_444455556666.slice/crio-" + b64 +
      ".scope";
  REQUIRE(cpu.count(redis) == 1);
  CHECK(label(cpu[redis], "namespace") == "cache");
  CHECK(label(cpu[redis], "container") == "redis");
  // backup-1's statuses do not name the container in the tree: its sandbox, left out (without
  // the pod list it is reported, see tests/fixtures/cgroup/expected.prom).
  const std::string sandbox =
      "/kubepods/besteffort/pod0000aaaa-bbbb-cccc-dddd-eeeeffff0000/" + std::string(64, 'c');
  CHECK(cpu.count(sandbox) == 0);
  // Services outside Kubernetes are as before.
  CHECK(cpu.count("/system.slice/nginx.service") == 1);
}

TEST_CASE("Kubernetes node class: instance type, region and spot from well-known labels",
          "[kubernetes][cost]") {
  std::ifstream in(VIGIL_FIXTURES "/kubernetes/node.json");
  std::stringstream ss;
  ss << in.rdbuf();
  auto gke = collectors::nodeClass(ss.str());
  REQUIRE(gke);
  CHECK(gke->instance_type == "e2-standard-4");
  CHECK(gke->region == "us-central1");
  CHECK(gke->zone == "us-central1-a");
  CHECK(gke->provider_id == "gce://shop-prod/us-central1-a/gke-shop-spot-pool-1a2b3c4d-x9z8");
  CHECK(gke->spot);
  auto node = [](const std::string& labels) {
    return collectors::nodeClass(R"({"kind":"Node","metadata":{"labels":{)" + labels + "}}}");
  };
  CHECK(node(R"("eks.amazonaws.com/capacityType":"SPOT")")->spot);
  CHECK_FALSE(node(R"("eks.amazonaws.com/capacityType":"ON_DEMAND")")->spot);
  CHECK(node(R"("karpenter.sh/capacity-type":"spot")")->spot);
  CHECK(node(R"("kubernetes.azure.com/scalesetpriority":"spot")")->spot);
  CHECK(node(R"("cloud.google.com/gke-preemptible":"true")")->spot);
  CHECK(node(R"("beta.kubernetes.io/instance-type":"m5.large")")->instance_type == "m5.large");
  CHECK_FALSE(node("")->spot);
  auto labelled = node(R"("pool":"batch","kubernetes.io/arch":"amd64")");
  CHECK(labelled->labels == std::vector<std::pair<std::string, std::string>>{
                                {"kubernetes.io/arch", "amd64"}, {"pool", "batch"}});
  CHECK_FALSE(collectors::nodeClass(R"({"kind":"Status","code":404})").isOk());
}

TEST_CASE("Kubernetes quantities and the requests of a pod's containers", "[kubernetes][cost]") {
  using collectors::parseQuantity;
  CHECK(parseQuantity("250m") == Approx(0.25));
  CHECK(parseQuantity("1") == 1);
  CHECK(parseQuantity("0.5") == 0.5);
  CHECK(parseQuantity("128Mi") == 128.0 * 1024 * 1024);
  CHECK(parseQuantity("1Gi") == 1024.0 * 1024 * 1024);
  CHECK(parseQuantity("1G") == 1e9);
  CHECK(parseQuantity("2e3") == 2000);
  CHECK(parseQuantity("1E") == 1e18);  // exa, not an exponent
  CHECK(parseQuantity("500k") == 500000);
  CHECK(parseQuantity("+1") == 1);
  CHECK_FALSE(parseQuantity(""));
  CHECK_FALSE(parseQuantity("Mi"));
  CHECK_FALSE(parseQuantity("1MB"));
  CHECK_FALSE(parseQuantity("one"));

  auto pods = collectors::podInfos(recordedPods(8080, 8081));
  REQUIRE(pods);
  const collectors::PodInfo* api = nullptr;
  for (const auto& p : *pods) {
    if (p.name == "api-7d9f8b6c5-x2k4p") {
      api = &p;
    }
  }
  REQUIRE(api != nullptr);
  CHECK(api->phase == "Running");
  // spec.containers only: the init container reserves nothing while the pod runs.
  REQUIRE(api->requests.size() == 2);
  CHECK(api->requests[0].container == "log-shipper");
  CHECK(api->requests[0].cpu_cores == Approx(0.05));
  CHECK(api->requests[0].memory_bytes == 64.0 * 1024 * 1024);
  CHECK(api->requests[1].container == "api");
  CHECK(api->requests[1].cpu_cores == Approx(0.25));
}
