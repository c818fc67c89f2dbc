#!/usr/bin/env bash
# Installs every package and test server, builds with warnings as errors, and runs the whole
# suite (unit, integration against real promtool and Prometheus, formatting) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-test-servers
scripts/build.sh -DVIGIL_BUILD_TESTS=ON -DVIGIL_WERROR=ON
ctest --test-dir build --output-on-failure -j2 "$@"
