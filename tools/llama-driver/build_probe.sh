#!/usr/bin/env bash
# Builds tools/llama-driver/swapmoe_probe.cpp (swapmoe-probe: greedy ids, top-2 gaps and
# per-step logits from swapmoe, for comparison with llama-driver --logits-out) against the
# static libraries of a swapmoe build directory. A diagnostic tool, kept out of the CMake
# build on purpose.
#
#   tools/llama-driver/build_probe.sh BUILD_DIR     -> BUILD_DIR/swapmoe-probe
# BUILD_DIR must have built the target swapmoe (so every libswapmoe_*.a exists).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: build_probe.sh BUILD_DIR}" && pwd)
libs=()
for l in runtime model cache expert arch template io ops quant tokenizer gguf util; do
  [ -f "$build/libswapmoe_$l.a" ] || { echo "build_probe: $build/libswapmoe_$l.a missing (build the swapmoe target)" >&2; exit 1; }
  libs+=("$build/libswapmoe_$l.a")
done
uring=$(pkg-config --libs liburing 2>/dev/null || true)
g++ -std=c++20 -O2 -Wall -Wextra -Wno-unused-parameter -I"$root/src" "$root/tools/llama-driver/swapmoe_probe.cpp" \
  -Wl,--start-group "${libs[@]}" -Wl,--end-group $uring $(pkg-config --libs icu-uc icu-i18n) -lpthread \
  -o "$build/swapmoe-probe"
echo "$build/swapmoe-probe"
