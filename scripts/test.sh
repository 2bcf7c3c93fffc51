#!/usr/bin/env bash
# The whole test suite, as CI runs it: install deps, release build + all tests (unit,
# conformance against llama.cpp, CLI smoke, budget, end-to-end, server), then an ASan+UBSan
# build running the unit and server tests, a ThreadSanitizer build running the threaded unit
# tests (io, cache, swapmoe, server), and bounded libFuzzer runs (scripts/fuzz.sh).
#
# Skips: under CI=true (or SWAPMOE_REQUIRE=all) a test that cannot run what it is about fails
# instead of skipping (tests/unit/require.h, scripts/skip.sh); SWAPMOE_ALLOW_SKIP=class,...
# allows named classes on purpose. The summary at the end lists every stage's time, what ran,
# and every skip with its reason, pass or fail.
# Environment: JOBS (build/test parallelism, default nproc), FUZZ_SECONDS (per fuzz target,
# default 45), SWAPMOE_TEST_STAGES (default "release asan tsan fuzz").
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
jobs="${JOBS:-$(nproc)}"
stages="${SWAPMOE_TEST_STAGES:-release asan tsan fuzz}"
mkdir -p build
summary="$root/build/test-summary.txt"
export SWAPMOE_SKIP_LOG="$root/build/skips.log"
: > "$SWAPMOE_SKIP_LOG"
: > "$summary"
rm -f "$root"/build/ctest-*.log
t_start=$(date +%s)

stage_t0=0
stage() { stage_t0=$(date +%s); echo "== $*"; }
stage_done() { echo "$(printf '%-46s' "$1") $(( $(date +%s) - stage_t0 )) s" >> "$summary"; }

# ctest_run LOGNAME ARGS...: runs ctest, keeps its output for the summary.
ctest_run() {
  local log="$root/build/ctest-$1.log"; shift
  set +e
  ctest "$@" 2>&1 | tee "$log"
  local rc=${PIPESTATUS[0]}
  set -e
  return "$rc"
}

print_summary() {
  local rc=$?
  echo
  echo "================ test summary ($( [ "${CI:-}" = true ] || [ "${SWAPMOE_REQUIRE:-}" = all ] && echo strict: skips fail || echo 'not strict: set CI=true to make skips fail'))"
  cat "$summary"
  for log in "$root"/build/ctest-*.log; do
    [ -f "$log" ] || continue
    echo "-- $(basename "$log" .log): $(grep -E 'tests passed|tests failed' "$log" | tail -n 1)"
    # CTest lists tests that did not run (skipped, disabled) with the reason in brackets.
    sed -n '/The following tests did not run:/,/^$/p' "$log" | sed '1d;/^$/d;s/^/   did not run: /'
    sed -n '/The following tests FAILED:/,/^$/p' "$log" | sed '1d;/^$/d;s/^/   FAILED: /'
  done
  if [ -s "$SWAPMOE_SKIP_LOG" ]; then
    echo "-- skips recorded by the tests (SKIP = allowed here, FAIL = required under CI=true):"
    sort "$SWAPMOE_SKIP_LOG" | uniq -c | sed 's/^/   /'
  else
    echo "-- skips recorded by the tests: none"
  fi
  echo "-- total: $(( $(date +%s) - t_start )) s, exit status $rc"
  [ $rc -eq 0 ] && echo "== all tests passed" || echo "== FAILED"
}
trap print_summary EXIT

stage "install dependencies"
bash scripts/install-deps.sh
stage_done "install dependencies"

if [[ " $stages " == *" release "* ]]; then
  stage "release build"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$jobs"
  stage_done "release build"
  stage "tests (release): unit, conformance, smoke, budget, e2e, server"
  ctest_run release --test-dir build --output-on-failure -j"$jobs"
  stage_done "tests (release)"
fi

if [[ " $stages " == *" asan "* ]]; then
  stage "sanitizer build (ASan + UBSan)"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSWAPMOE_SANITIZE=ON >/dev/null
  cmake --build build-asan -j"$jobs"
  stage_done "ASan build"
  stage "ASan + UBSan: unit tests and server tests"
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest_run asan --test-dir build-asan --output-on-failure -j"$jobs" -L '^(unit|server)$'
  stage_done "ASan tests"
fi

if [[ " $stages " == *" tsan "* ]]; then
  # Only what runs threads: the read engines, the expert cache (prefetch, streaming compute),
  # SwapMoE's background swaps and the server's slots and queue.
  stage "ThreadSanitizer build (io, cache, swapmoe, server)"
  cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DSWAPMOE_TSAN=ON >/dev/null
  cmake --build build-tsan -j"$jobs" --target test_io test_cache test_swapmoe test_server
  stage_done "TSan build"
  stage "ThreadSanitizer: io, cache, swapmoe, server unit tests"
  # Only those four test executables are built here; the label picks exactly their cases
  # (CMake's <target>_NOT_BUILT placeholders for the others carry no label).
  TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" \
    ctest_run tsan --test-dir build-tsan --output-on-failure -j"$jobs" -L '^unit$'
  stage_done "TSan tests"
fi

if [[ " $stages " == *" fuzz "* ]]; then
  stage "fuzzing (${FUZZ_SECONDS:-45} s per target)"
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-45}"
  stage_done "fuzzing"
fi
