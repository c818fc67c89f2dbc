#!/usr/bin/env bash
# Installs every package and test server, builds with warnings as errors, and runs the whole
# suite through ctest: unit tests, integration tests against real promtool and Prometheus,
# formatting, the store's concurrency tests under ThreadSanitizer, and (scripts/sanitizers.sh)
# the unit tests under AddressSanitizer + UndefinedBehaviorSanitizer and every fuzzer for 15 s.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --with-test-servers
scripts/build.sh -DVIGIL_BUILD_TESTS=ON -DVIGIL_WERROR=ON

# ThreadSanitizer build of the store alone (small: it depends on nothing networked).
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DVIGIL_SANITIZE=thread \
  -DVIGIL_WERROR=ON >/dev/null
cmake --build build-tsan -j"$(nproc)" --target vigil_store_tests
echo "store tests under ThreadSanitizer:"
TSAN_OPTIONS="halt_on_error=1" build-tsan/tests/vigil_store_tests

ctest --test-dir build --output-on-failure -j2 "$@"

# The soak test's short version: 2.5 minutes of the full load, nothing lost, nothing logged
# as an error (the 30-minute run is `build/bench/soak_bench`, see the README).
build/bench/soak_bench --minutes 2.5 --check

scripts/sanitizers.sh 15
