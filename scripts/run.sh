#!/usr/bin/env bash
# Quick start: installs what vigil needs, builds it, and runs it on the embedded default
# configuration (collects this machine, serves http://127.0.0.1:9810/metrics). Arguments are
# passed to `vigil run`, e.g. scripts/run.sh --config deploy/vigil.example.yaml
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh -DVIGIL_BUILD_TESTS=OFF
exec build/vigil run "$@"
