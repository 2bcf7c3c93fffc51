#!/usr/bin/env bash
# Builds llama.cpp natively (-DGGML_NATIVE=ON, Release) from the source bundled in
# node-llama-cpp@3.21.1 (tests/conformance/node_modules/node-llama-cpp/llama/gitRelease.bundle,
# llama.cpp commit 80fb11ac, tag v0.4.0): the peer a user would compile on this machine, as
# opposed to the prebuilt per-CPU libraries that tools/llama-driver links. Builds only
# llama-bench, llama-server, llama-completion and llama-gguf-split. No network is used: the
# source is a local git bundle, and the server's web UI is neither built with npm nor
# downloaded (a placeholder page is embedded; the API is unaffected).
#
#   scripts/build_llama_native.sh [DIR]     (default: /work/llama-native if /work exists, else
#                                            $HOME/llama-native; outside the repository)
#
# Environment: JOBS (default 2). Idempotent: the source is cloned once (and again when the
# bundle's commit changes), cmake re-runs only what changed. The binaries end up in
# DIR/build/bin/; the last line printed is that directory.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -d /work ]; then default_dir=/work/llama-native; else default_dir=$HOME/llama-native; fi
dir=${1:-$default_dir}
jobs=${JOBS:-2}
bundle=$root/tests/conformance/node_modules/node-llama-cpp/llama/gitRelease.bundle

if [ ! -f "$bundle" ]; then
  echo "build_llama_native: $bundle missing; running npm ci in tests/conformance" >&2
  (cd "$root/tests/conformance" && npm ci --no-audit --no-fund >&2)
fi
[ -f "$bundle" ] || { echo "build_llama_native: $bundle not found" >&2; exit 1; }

want=$(git bundle list-heads "$bundle" | awk '$2 == "HEAD" { print $1 }')
src=$dir/src
have=$(git -C "$src" rev-parse HEAD 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  rm -rf "$src"
  mkdir -p "$dir"
  git -c advice.detachedHead=false clone --quiet "$bundle" "$src"
  git -C "$src" checkout --quiet "$want"
fi

launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
gen=()
command -v ninja > /dev/null && [ ! -f "$dir/build/Makefile" ] && gen=(-G Ninja)

# Only what the benchmarks need: no tests, no examples, no OpenSSL, no web UI download.
cmake -S "$src" -B "$dir/build" "${gen[@]}" "${launcher[@]}" \
  -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF > "$dir/cmake-configure.log"
# One target at a time, the benchmark tool first, so it can be used while the rest builds.
for t in llama-bench llama-gguf-split llama-completion llama-server; do
  cmake --build "$dir/build" -j"$jobs" --target "$t"
done

for t in llama-bench llama-server llama-completion llama-gguf-split; do
  [ -x "$dir/build/bin/$t" ] || { echo "build_llama_native: $dir/build/bin/$t was not built" >&2; exit 1; }
done
echo "llama.cpp $(echo "$want" | cut -c1-8) (node-llama-cpp bundle), GGML_NATIVE=ON, Release:"
echo "$dir/build/bin"
