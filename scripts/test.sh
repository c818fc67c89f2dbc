#!/usr/bin/env bash
# Installs every package and test server, builds with warnings as errors, and runs the whole
# suite through ctest: unit tests, integration tests against real promtool and Prometheus,
# formatting, and (scripts/sanitizers.sh) the unit tests under AddressSanitizer +
# UndefinedBehaviorSanitizer and under ThreadSanitizer, and every fuzzer for 15 s.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-test-servers
scripts/build.sh -DVIGIL_BUILD_TESTS=ON -DVIGIL_WERROR=ON

ctest --test-dir build --output-on-failure -j2 "$@"

# The soak test's short version: 2.5 minutes of the full load, nothing lost, nothing logged
# as an error (the 30-minute run is `build/bench/soak_bench`, see the README).
build/bench/soak_bench --minutes 2.5 --check

scripts/sanitizers.sh 15
