#!/usr/bin/env bash
# The sanitizer jobs, in clang builds, any report fatal:
#  1. the unit tests (every module's hermetic test executable) with AddressSanitizer and
#     UndefinedBehaviorSanitizer (build-asan);
#  2. every libFuzzer target (build-asan) (tests/fuzz) for FUZZ_SECONDS (default 20) each, starting from its
#     kept corpus (tests/fuzz/corpus/NAME), while the ThreadSanitizer build (build-tsan) runs.
#     New inputs go to a scratch directory; an input that crashes, leaks, hangs or trips a
#     sanitizer is left in build-asan/findings/NAME/ and fails the run (once fixed, add it to
#     the corpus: it is replayed on every run after);
#  3. the unit tests of the modules with threads with ThreadSanitizer.
# Usage: scripts/sanitizers.sh [FUZZ_SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-20}
# Unoptimised, with line tables only, linked by lld: the builds are most of this script's time
# on CI's two cores, and -O0 compiles the Asio/Beast units two and a half times faster than
# -O1 (for tests that run a few seconds longer); assertions on. The parsers the fuzzers drive
# are the exception (VIGIL_OPTIMIZE_PARSERS): -O1, for 3 to 300 times more inputs a second.
# The libraries in unity batches (VIGIL_UNITY_LIBRARIES, see CMakeLists.txt): the headers
# parsed once a batch of eight files, about half the compile time at -O0.
sanitizer_build_flags=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-O0 -gline-tables-only"
  -DCMAKE_EXE_LINKER_FLAGS="-fuse-ld=lld" -DVIGIL_UNITY_LIBRARIES=ON)
CXX=clang++ CC=clang cmake -S . -B build-asan "${sanitizer_build_flags[@]}" \
  -DVIGIL_SANITIZE=address,undefined -DVIGIL_BUILD_FUZZERS=ON -DVIGIL_OPTIMIZE_PARSERS=ON \
  -DVIGIL_BUILD_TESTS=ON >/dev/null
unit_tests=(vigil_store_tests vigil_agent_tests vigil_rules_tests vigil_alerting_tests vigil_anomaly_tests
  vigil_exporters_tests)
echo "== building with AddressSanitizer + UndefinedBehaviorSanitizer (at ${SECONDS}s)"
cmake --build build-asan -j"$(nproc)" --target "${unit_tests[@]}" fuzzers

# ThreadSanitizer: the unit tests of the modules with threads (the store's concurrent appends
# and queries, the scheduler, the HTTP server, the notification queues, the alerting
# service's loop...) in a second clang build, any report fatal. The PromQL engine and the
# anomaly detectors are single-threaded computation (AddressSanitizer covers them above; the
# threads that run them are the agent's), so they are not built a third time.
threaded_tests=(vigil_store_tests vigil_agent_tests vigil_alerting_tests vigil_exporters_tests)
CXX=clang++ CC=clang cmake -S . -B build-tsan "${sanitizer_build_flags[@]}" \
  -DVIGIL_SANITIZE=thread -DVIGIL_BUILD_TESTS=ON >/dev/null
# The TSan build runs while the AddressSanitizer tests and the fuzzers do (one process on one
# core each): together they take little longer than the build alone. During the tests it runs
# at the lowest priority, so that their timing stays what it is on an idle core; during the
# fuzzers, which run for a set time however much CPU they get, at the normal one (where that
# is allowed: lowering a niceness needs root). Its own process group, so that both reach the
# compilers it starts.
echo "== building with ThreadSanitizer, in the background (at ${SECONDS}s)"
nice -n 19 setsid cmake --build build-tsan -j"$(nproc)" --target "${threaded_tests[@]}" \
  >build-tsan/build.log 2>&1 &
tsan_build=$!
# A failing test ends the script (set -e): the build goes with it.
trap 'kill -- -"$tsan_build" 2>/dev/null || true' EXIT

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
for t in "${unit_tests[@]}"; do
  echo "== $t under AddressSanitizer + UndefinedBehaviorSanitizer (at ${SECONDS}s)"
  build-asan/tests/"$t"
done
renice -n 0 -g "$tsan_build" >/dev/null 2>&1 || true

status=0
for fuzzer in build-asan/fuzz/*_fuzz; do
  name=$(basename "$fuzzer" _fuzz)
  scratch=build-asan/fuzz-scratch/$name
  findings=build-asan/findings/$name
  rm -rf "$scratch"
  mkdir -p "$scratch" "$findings"
  echo "== fuzzing $name for ${seconds}s (corpus tests/fuzz/corpus/$name) (at ${SECONDS}s)"
  if ! "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$findings/" "$scratch" "tests/fuzz/corpus/$name" \
    >"build-asan/fuzz-$name.log" 2>&1; then
    echo "FINDING in $name: see build-asan/fuzz-$name.log and $findings/"
    tail -40 "build-asan/fuzz-$name.log"
    status=1
  fi
  grep -a -E "stat::number_of_executed_units|stat::peak_rss_mb" "build-asan/fuzz-$name.log" | tr '\n' ' '
  echo
done
if ! wait "$tsan_build"; then
  tail -60 build-tsan/build.log
  echo "FAILED: the ThreadSanitizer build (build-tsan/build.log)"
  exit 1
fi
echo "== ThreadSanitizer build done (at ${SECONDS}s)"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp"
# One process per test case: TSan knows a mutex by its address, and std::mutex never tells it
# that one is gone, so two tests whose objects happen to reuse each other's stack addresses in
# other roles make a lock-order cycle that no program has. A real inversion still shows within
# the test that takes both locks.
tsan_each_case() {
  local binary=$1 name log
  log=$(mktemp)
  while IFS= read -r name; do
    [[ -n "$name" ]] || continue
    # Catch's test spec: commas, brackets and backslashes are escaped to match the name.
    if ! "$binary" "$(printf '%s' "$name" | sed 's/[][,\\]/\\&/g')" >"$log" 2>&1; then
      cat "$log"
      echo "FAILED under ThreadSanitizer: $(basename "$binary") \"$name\""
      rm -f "$log"
      return 1
    fi
    if ! grep -q "All tests passed" "$log"; then
      cat "$log"
      echo "no test ran for \"$name\""
      rm -f "$log"
      return 1
    fi
  done < <("$binary" --list-test-names-only)
  rm -f "$log"
}
for t in "${threaded_tests[@]}"; do
  echo "== $t under ThreadSanitizer (each test case alone) (at ${SECONDS}s)"
  tsan_each_case build-tsan/tests/"$t"
done

exit $status
