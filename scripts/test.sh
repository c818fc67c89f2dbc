#!/usr/bin/env bash
# Installs every package and test server, builds with warnings as errors, and runs the whole
# suite through ctest: unit tests, integration tests against real promtool and Prometheus,
# formatting, and (scripts/sanitizers.sh) the unit tests under AddressSanitizer +
# UndefinedBehaviorSanitizer (and those with threads under ThreadSanitizer), and every fuzzer
# for 8 s (from its kept corpus, replayed whole each time). The fuzzers share the two cores
# with the ThreadSanitizer build, the sanitizer phase's longest part: at 12 s each, the run
# took 29m42s of its 30 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
# Minutes since the start at each phase: CI has a 30-minute budget on two cores.
phase() { echo "=== $1 (at $((SECONDS / 60))m$((SECONDS % 60))s)"; }
phase "setup"
scripts/setup.sh --with-test-servers
phase "build"
scripts/build.sh -DVIGIL_BUILD_TESTS=ON -DVIGIL_WERROR=ON

phase "ctest"
# Four at once on two cores: most tests wait on servers and child processes (ctest at -j2 kept
# the two cores a quarter busy), and -j4 takes 84 s where -j2 took 139.
ctest --test-dir build --output-on-failure -j4 "$@"

# The soak test's short version: 2 minutes of the full load, nothing lost, nothing logged
# as an error (the 30-minute run is `build/bench/soak_bench`, see the README).
phase "soak"
build/bench/soak_bench --minutes 2 --check

phase "sanitizers and fuzzers"
scripts/sanitizers.sh 8
phase "done"
