#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan + coverage) and runs each for a
# bounded time over its committed seed corpus.
#   scripts/fuzz.sh [SECONDS] [TARGET...]      SECONDS per target (default 60); default: all
# Targets (fuzz/fuzz_NAME.cpp, seeds in fuzz/corpus/NAME/):
#   gguf         GGUF parser (every input parses or throws; invariants on what parses)
#   gguf_split   split sets: parts parsed alone, then validated and joined (gguf_join_split)
#   template     Jinja chat-template parser + renderer
#   tokenizer    byte-level BPE and SentencePiece: ids in range, decode(encode(x)) == x
#   server_json  the server's request body parsing and field accessors
#   tool_calls   tool-call parsing, one-shot and streamed
# Environment: FUZZ_BUILD_DIR (default build-fuzz), FUZZ_JOBS (build jobs, default 2),
# FUZZ_USE_CMAKE=1 to build gguf through the top-level CMake fuzz block instead.
# New corpus entries go to $FUZZ_BUILD_DIR/corpus-NAME (the committed seeds are only read);
# crash inputs go to $FUZZ_BUILD_DIR/artifacts/NAME-*.
# Exit status is non-zero if a fuzzer found a crash, leak, timeout or OOM (all targets run).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
seconds="${1:-60}"
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf gguf_split template tokenizer server_json tool_calls)
build="${FUZZ_BUILD_DIR:-build-fuzz}"
jobs="${FUZZ_JOBS:-2}"
cc="${FUZZ_CC:-clang}"
cxx="${FUZZ_CXX:-clang++}"

# Sources each target needs besides its own file (only the layers under test, so the fuzzers
# do not depend on the rest of the tree building with clang, and link in seconds).
sources_for() {
  case "$1" in
    gguf|gguf_split) echo src/gguf/*.cpp src/util/ggml_type.cpp src/util/regular_file.cpp src/util/atomic_output.cpp ;;
    template) echo src/template/*.cpp ;;
    tokenizer) echo src/tokenizer/*.cpp src/gguf/*.cpp src/util/ggml_type.cpp src/util/regular_file.cpp src/util/atomic_output.cpp ;;
    server_json|tool_calls) echo src/server/api_util.cpp src/server/tool_calls.cpp ;;
    *) echo "fuzz: unknown target $1" >&2; return 1 ;;
  esac
}
# Longest input libFuzzer builds: the real chat templates in the seeds are up to ~20 KB.
maxlen_for() { case "$1" in template) echo 32768 ;; gguf_split) echo 8192 ;; *) echo 4096 ;; esac; }
libs_for() {
  case "$1" in
    tokenizer) pkg-config --libs icu-uc icu-i18n ;;
    *) echo "" ;;
  esac
}

mkdir -p "$build/artifacts"
launcher=""
command -v ccache >/dev/null && launcher=ccache
flags="-std=c++20 -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined -Isrc"

build_target() {
  local t=$1
  if [ "$t" = gguf ] && [ "${FUZZ_USE_CMAKE:-0}" = 1 ]; then
    # The project's own fuzz build (top-level CMakeLists, SWAPMOE_FUZZ=ON): instruments
    # every library it links.
    cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWAPMOE_FUZZ=ON -DSWAPMOE_TESTS=OFF \
      -DCMAKE_C_COMPILER="$cc" -DCMAKE_CXX_COMPILER="$cxx" >/dev/null
    cmake --build "$build" --target fuzz_gguf -j"$jobs"
    return
  fi
  local objs=() f o pids=()
  # shellcheck disable=SC2046
  for f in $(sources_for "$t") "fuzz/fuzz_$t.cpp"; do
    o="$build/$(echo "$f" | tr / _).o"
    objs+=("$o")
    # Up to $jobs compilers at once.
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
    $launcher "$cxx" $flags -c "$f" -o "$o" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  # shellcheck disable=SC2046
  "$cxx" $flags "${objs[@]}" $(libs_for "$t") -o "$build/fuzz_$t"
}

failed=()
for t in "${targets[@]}"; do
  echo "== fuzz_$t: build"
  build_target "$t"
  mkdir -p "$build/corpus-$t"
  seeds="fuzz/corpus/$t"
  [ -d "$seeds" ] || { echo "fuzz: no seed corpus $seeds" >&2; exit 1; }
  dict=()
  [ -f "fuzz/$t.dict" ] && dict=(-dict="fuzz/$t.dict")
  echo "== fuzz_$t: ${seconds}s over $seeds"
  # Inputs are small, so anything near these limits is a bug (e.g. a count not bounded by
  # the bytes remaining); -timeout catches hangs.
  if ! FUZZ_VOCAB_DIR="$root/tests/data/vocab" "$build/fuzz_$t" "$build/corpus-$t" "$seeds" \
      "${dict[@]}" \
      -max_total_time="$seconds" \
      -max_len="$(maxlen_for "$t")" \
      -timeout=5 \
      -rss_limit_mb=1024 \
      -malloc_limit_mb=256 \
      -artifact_prefix="$build/artifacts/$t-" \
      -print_final_stats=1 2>&1 | tail -n 40; then
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]} (reproducers in $build/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no crash in ${seconds}s each"
