#!/usr/bin/env bash
# The whole test suite, as CI runs it: install deps, release build + all tests (unit,
# conformance against llama.cpp, CLI smoke tests), then an ASan+UBSan build running the
# unit tests, then a bounded libFuzzer run over the GGUF parser.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
jobs="${JOBS:-$(nproc)}"
bash scripts/install-deps.sh

echo "== release build"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
echo "== tests (release)"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "== sanitizer build (ASan + UBSan), unit tests"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSWAPMOE_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" -L unit

if [ -x scripts/fuzz.sh ] || [ -f scripts/fuzz.sh ]; then
  echo "== fuzzing the GGUF parser (${FUZZ_SECONDS:-60}s)"
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
fi
echo "== all tests passed"
