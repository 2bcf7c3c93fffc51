#!/usr/bin/env bash
# Builds tools/llama-driver (our own benchmark driver for llama.cpp) against the prebuilt
# llama.cpp CPU libraries inside node-llama-cpp, with llama.h / ggml headers taken from the
# llama.cpp git bundle shipped in the same npm package (same tag as the libraries, so the
# struct layouts agree; the driver also checks them at start-up). No network is used.
#
#   scripts/build_llama_driver.sh [BUILD_DIR]      (default: build/llama-driver, git-ignored)
#
# Output: BUILD_DIR/llama-driver, with an RPATH to the node_modules bins directory, so it
# runs without LD_LIBRARY_PATH. Needs tests/conformance/node_modules (`npm ci` there).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/llama-driver}
nm=$root/tests/conformance/node_modules
bins=$nm/@node-llama-cpp/linux-x64/bins/linux-x64
bundle=$nm/node-llama-cpp/llama/gitRelease.bundle

if [ ! -f "$bins/libllama.v0.4.0.so" ] || [ ! -f "$bundle" ]; then
  echo "build_llama_driver: node-llama-cpp is missing; running npm ci in tests/conformance" >&2
  (cd "$root/tests/conformance" && npm ci --no-audit --no-fund >&2)
fi
[ -f "$bins/libllama.v0.4.0.so" ] || { echo "build_llama_driver: $bins/libllama.v0.4.0.so not found" >&2; exit 1; }
[ -f "$bundle" ] || { echo "build_llama_driver: $bundle not found" >&2; exit 1; }

mkdir -p "$out"
hdr=$out/llama-headers
# Extract only the public headers of the bundle's HEAD (a bare clone of a local bundle
# file; re-done when the bundle's commit changes).
want=$(git bundle list-heads "$bundle" | awk '$2 == "HEAD" { print $1 }')
have=$(cat "$hdr/COMMIT" 2>/dev/null || true)
if [ "$want" != "$have" ] || [ ! -f "$hdr/include/llama.h" ]; then
  rm -rf "$out/llama.git" "$hdr"
  git clone --quiet --bare "$bundle" "$out/llama.git"
  mkdir -p "$hdr"
  git --git-dir="$out/llama.git" archive HEAD include ggml/include | tar -x -C "$hdr"
  echo "$want" > "$hdr/COMMIT"
  rm -rf "$out/llama.git"
fi

# The libraries' sonames are libllama.v0.4.0.so / libggml*.so, so link them by full path;
# the CPU backend (libggml-cpu-<variant>.so) is not linked: the driver loads the best
# variant at run time with ggml_backend_load_all_from_path.
g++ -std=c++20 -O2 -Wall -Wextra \
  -I"$hdr/include" -I"$hdr/ggml/include" \
  "$root/tools/llama-driver/llama_driver.cpp" \
  "$bins/libllama.v0.4.0.so" "$bins/libggml.v0.4.0.so" "$bins/libggml-base.so" \
  -Wl,-rpath,"$bins" -o "$out/llama-driver"
echo "$out/llama-driver (headers: llama.cpp $(cut -c1-12 "$hdr/COMMIT"), libs: $bins)"
