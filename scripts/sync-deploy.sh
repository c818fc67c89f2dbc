#!/usr/bin/env bash
# Copies the shipped rule library into deploy/rules, where the kustomizations can read it
# (kustomize reads no file outside its directory tree). The deploy test fails until they match.
set -euo pipefail
cd "$(dirname "$0")/.."
for f in node services slo cost; do
  cp "rules/library/$f.yml" "deploy/rules/$f.yml"
done
echo "deploy/rules: node.yml services.yml slo.yml cost.yml copied from rules/library"
