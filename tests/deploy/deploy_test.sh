#!/usr/bin/env bash
# deploy/ validated offline: the kustomizations build, every manifest passes the Kubernetes and
# Prometheus Operator schemas, an unknown-field pass and vigil's policy checks; the configuration,
# rules, Prometheus and Alertmanager configurations in the ConfigMaps pass vigil, promtool and
# amtool; dashboard queries parse as PromQL; the rule copies match rules/library; the systemd
# unit passes systemd-analyze verify; the Dockerfile installs what vigil links.
# Usage: deploy_test.sh VIGIL_BINARY
set -euo pipefail
vigil=$(realpath "$1")
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
step() { echo "--- $*"; }
bad() { echo "FAIL $*"; failed=1; }

step "npm ci (deploy/tools)"
(cd "$root/deploy/tools" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)

export KUBECONFIG=/nonexistent
for k in kubernetes monitoring-stack; do
  if command -v kubectl >/dev/null; then
    step "kubectl kustomize deploy/$k"
    kubectl kustomize "$root/deploy/$k" >"$work/$k.yaml" || bad "kubectl kustomize deploy/$k"
  else
    # Without kubectl, the subset of kustomize deploy/ uses, by deploy/tools/render.mjs.
    step "deploy/$k rendered without kubectl (not installed): kustomize itself is not checked"
    node "$root/deploy/tools/render.mjs" "$root/deploy/$k" >"$work/$k.yaml" || bad "render deploy/$k"
  fi
done

step "schemas, unknown fields and policy"
node "$root/deploy/tools/check-manifests.mjs" "$work/kubernetes.yaml" "$work/monitoring-stack.yaml" ||
  bad "manifest checks"

step "contents of the ConfigMaps and dashboards"
node "$root/deploy/tools/extract.mjs" "$work/out" "$root/deploy/monitoring-stack/dashboards" \
  "$root/deploy/rules" "$work/kubernetes.yaml" "$work/monitoring-stack.yaml" >"$work/extract.log" ||
  { cat "$work/extract.log"; bad "ConfigMap and dashboard contents"; }
"$vigil" check config "$work/out/vigil.yaml" || bad "vigil check config (the agent's ConfigMap)"
"$vigil" check rules "$work/out/rules/"*.yml >/dev/null || bad "vigil check rules (the rules ConfigMap)"
promtool check rules "$work/out/rules/"*.yml >/dev/null || bad "promtool check rules (the rules ConfigMap)"
(cd "$work/out" && promtool check config --syntax-only prometheus.yml >/dev/null) ||
  bad "promtool check config (Prometheus's ConfigMap)"
amtool check-config "$work/out/alertmanager.yml" >/dev/null || bad "amtool check-config"
if ! promtool check rules "$work/out/dashboard-queries.yml" >"$work/queries.log" 2>&1 ||
  ! "$vigil" check rules "$work/out/dashboard-queries.yml" >>"$work/queries.log" 2>&1; then
  cat "$work/queries.log" "$work/extract.log"
  bad "dashboard queries do not parse as PromQL"
fi

step "unit tests of the rules about vigil itself"
(cd "$root/deploy/rules" && promtool test rules vigil-self_test.yml >/dev/null) ||
  bad "promtool test rules deploy/rules/vigil-self_test.yml"
(cd "$root/deploy/rules" && "$vigil" test rules vigil-self_test.yml >/dev/null) ||
  bad "vigil test rules deploy/rules/vigil-self_test.yml"

step "rule copies"
for f in node services slo cost; do
  cmp -s "$root/rules/library/$f.yml" "$root/deploy/rules/$f.yml" ||
    bad "deploy/rules/$f.yml differs from rules/library/$f.yml (run scripts/sync-deploy.sh)"
done

step "systemd unit"
sed "s|^ExecStart=/usr/bin/vigil|ExecStart=$vigil|" "$root/deploy/systemd/vigil.service" >"$work/vigil.service"
out=$(systemd-analyze verify "$work/vigil.service" 2>&1) || bad "systemd-analyze verify: $out"
[[ -z "$out" ]] || bad "systemd-analyze verify: $out"

step "Dockerfile runtime libraries"
for lib in $(objdump -p "$vigil" | awk '/NEEDED/ {print $2}'); do
  # (awk reads all of ldconfig's output: stopping early would fail the pipe under pipefail)
  path=$(ldconfig -p | awk -v l="$lib" '$1 == l && !found {print $NF; found = 1}')
  pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | sed -n '1s/:.*//p') || true
  case "$pkg" in
    "" | libc6 | libstdc++6 | libgcc-s1) continue ;;  # in every Debian image
  esac
  grep -qw "$pkg" "$root/deploy/Dockerfile" || bad "deploy/Dockerfile does not install $pkg (for $lib)"
done

if ((failed)); then
  echo "deploy checks: FAILED"
  exit 1
fi
echo "deploy checks: all passed"
