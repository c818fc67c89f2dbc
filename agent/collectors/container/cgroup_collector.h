#pragma once
// container_* metrics (cAdvisor names) from the cgroup v2 hierarchy.

#include "vigil/collector.h"

namespace vigil::collectors {

Result<CollectorPtr> makeCgroupCollector(const CollectorSettings& settings, const HostPaths& paths);

/// What a cgroup path says about the Kubernetes workload in it (both cgroup drivers, every QoS
/// class). Empty fields when the path is not a pod's or a container's.
struct KubepodsPath {
  bool is_pod = false;        // the pod's own cgroup
  bool is_container = false;  // a container's cgroup inside a pod
  std::string qos;            // "guaranteed", "burstable" or "besteffort"
  std::string pod_uid;        // with dashes, as the API server writes it
  std::string container_id;   // 64 hex digits
  std::string runtime;        // "containerd", "cri-o", "docker" or "" (cgroupfs driver)
};
KubepodsPath parseKubepodsPath(std::string_view path);

}  // namespace vigil::collectors
