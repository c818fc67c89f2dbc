#pragma once
// Discovery of the pods on this node for the scrape collector (`kubernetes_sd_configs`, role
// pod), with the target labels Prometheus 2.42 gives them (`__meta_kubernetes_*`), so that
// relabel_configs written for Prometheus work unchanged. Pods are listed from the API server
// (fieldSelector spec.nodeName=NODE) or from the kubelet's /pods every refresh_interval, on a
// thread of their own; a failed refresh keeps the targets of the last good one.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "vigil/config.h"
#include "vigil/relabel.h"
#include "vigil/status.h"

namespace vigil::collectors {

/// The targets of a PodList (the JSON of GET /api/v1/pods or of the kubelet's /pods): one per
/// port each container declares, and one without a port for a container that declares none.
/// Pods without an IP yet and finished pods (Succeeded, Failed) have none.
Result<std::vector<ScrapeConfig::Target>> podTargets(std::string_view pod_list_json);

/// What the container collector needs to name a pod's cgroups, and the cost collector to
/// price what its containers reserve.
struct PodInfo {
  std::string namespace_name;
  std::string name;
  std::string uid;
  std::string phase;  // status.phase: Pending, Running, Succeeded, Failed, Unknown
  struct Container {
    std::string id;  // the runtime's container ID, without its "containerd://" scheme
    std::string name;
    std::string image;
  };
  std::vector<Container> containers;  // every container the pod runs (init and ephemeral too)
  /// What each of spec.containers requests (init containers run before them, not beside them,
  /// so they reserve nothing while the pod runs). A resource without a request is 0.
  struct Requests {
    std::string container;
    double cpu_cores = 0;
    double memory_bytes = 0;
    double gpus = 0;  // nvidia.com/gpu, amd.com/gpu
    double ephemeral_storage_bytes = 0;
  };
  std::vector<Requests> requests;
};

/// A Kubernetes resource quantity ("250m", "1.5", "128Mi", "1G", "2e3") as a number of units;
/// nullopt if it is not one.
std::optional<double> parseQuantity(std::string_view quantity);

/// The pods of a PodList with their containers' runtime IDs (from status.*containerStatuses).
Result<std::vector<PodInfo>> podInfos(std::string_view pod_list_json);

/// What a Node object says about the node's price class, from well-known labels.
struct NodeClass {
  std::string instance_type;  // node.kubernetes.io/instance-type (or the beta label)
  std::string region;         // topology.kubernetes.io/region
  std::string zone;           // topology.kubernetes.io/zone
  std::string provider_id;    // spec.providerID
  bool spot = false;          // GKE spot/preemptible, EKS/Karpenter capacity type, AKS priority
  std::string name;           // metadata.name
  std::vector<std::pair<std::string, std::string>> labels;  // metadata.labels, by name
};
Result<NodeClass> nodeClass(std::string_view node_json);
/// GET /api/v1/nodes/NODE from the API server `config` names, read as a NodeClass.
Result<NodeClass> fetchNodeClass(const KubernetesSdConfig& config,
                                 std::chrono::steady_clock::time_point deadline);

/// The relabel_configs a Kubernetes job without its own gets: pods annotated
/// prometheus.io/scrape: "true" are kept, prometheus.io/path, /port and /scheme say where to
/// scrape, and the series are labelled namespace, pod, container and node.
std::vector<RelabelConfig> kubernetesAnnotationRelabeling();

class PodDiscovery {
 public:
  /// Starts refreshing at once. What the configuration leaves out comes from the environment:
  /// the node from NODE_NAME, the in-cluster API server from KUBERNETES_SERVICE_HOST and _PORT.
  explicit PodDiscovery(KubernetesSdConfig config);
  ~PodDiscovery();
  PodDiscovery(const PodDiscovery&) = delete;
  PodDiscovery& operator=(const PodDiscovery&) = delete;

  /// What the last good refresh found. A refresh replaces the whole listing, so a reader may
  /// keep the pointer and compare it to tell whether anything was refreshed.
  struct Listing {
    std::vector<ScrapeConfig::Target> targets;
    std::vector<PodInfo> pods;
  };
  /// The last good listing (empty before any); before the first refresh has finished, waits
  /// for it until `deadline`.
  std::shared_ptr<const Listing> listing(std::chrono::steady_clock::time_point deadline);

  struct Stats {
    uint64_t refreshes = 0;
    uint64_t failures = 0;
    std::size_t targets = 0;
  };
  Stats stats() const;

 private:
  void run();
  Result<Listing> refresh();

  const KubernetesSdConfig config_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;     // guarded by mu_
  bool first_done_ = false;   // guarded by mu_
  bool last_failed_ = false;  // guarded by mu_; errors are logged when this changes
  std::shared_ptr<const Listing> listing_ = std::make_shared<const Listing>();  // guarded by mu_
  Stats stats_;                                                                 // guarded by mu_
  std::thread thread_;
};

}  // namespace vigil::collectors
