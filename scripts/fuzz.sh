#!/usr/bin/env bash
# Builds the libFuzzer target for the GGUF parser with clang (ASan + UBSan + coverage)
# and runs it for N seconds (default 60) over the seed corpus.
#   scripts/fuzz.sh [SECONDS]
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (build jobs, default 2),
# FUZZ_USE_CMAKE=1 to build through the top-level CMake fuzz block instead.
# New corpus entries go to $FUZZ_BUILD_DIR/corpus-gguf (the committed seeds in
# fuzz/corpus/gguf are only read); crash inputs go to $FUZZ_BUILD_DIR/artifacts/.
# Exit status is non-zero if the fuzzer found a crash, leak, timeout or OOM.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seconds="${1:-60}"
build="${FUZZ_BUILD_DIR:-build-fuzz}"
jobs="${FUZZ_JOBS:-2}"
cc="${FUZZ_CC:-clang}"
cxx="${FUZZ_CXX:-clang++}"

mkdir -p "$build"
if [ "${FUZZ_USE_CMAKE:-0}" = 1 ]; then
  # The project's own fuzz build (top-level CMakeLists, SWAPMOE_FUZZ=ON): instruments
  # every library it links.
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWAPMOE_FUZZ=ON -DSWAPMOE_TESTS=OFF \
    -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
  cmake --build "$build" --target fuzz_gguf -j"$jobs"
else
  # Default: compile just the parser's sources. The fuzzer then does not depend on the
  # rest of the tree building with clang (and links in seconds).
  launcher=""
  command -v ccache >/dev/null && launcher=ccache
  flags="-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -Isrc"
  objs=()
  for f in src/gguf/*.cpp src/util/ggml_type.cpp fuzz/fuzz_gguf.cpp; do
    o="$build/$(echo "$f" | tr / _).o"
    $launcher "$cxx" $flags -c "$f" -o "$o"
    objs+=("$o")
  done
  "$cxx" $flags "${objs[@]}" -o "$build/fuzz_gguf"
fi

mkdir -p "$build/corpus-gguf" "$build/artifacts"
# Inputs are tiny, so anything near these limits is a bug (e.g. a count not bounded
# by the bytes remaining); -timeout catches hangs.
"$build/fuzz_gguf" "$build/corpus-gguf" fuzz/corpus/gguf \
  -dict=fuzz/gguf.dict \
  -max_total_time="$seconds" \
  -max_len=4096 \
  -timeout=5 \
  -rss_limit_mb=1024 \
  -malloc_limit_mb=128 \
  -artifact_prefix="$build/artifacts/" \
  -print_final_stats=1
