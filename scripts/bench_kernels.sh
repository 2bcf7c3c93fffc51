#!/bin/sh
# Builds swapmoe_quant in BUILD (default /work/build-quant) and runs the single-thread
# vec_dot benchmark. Usage: scripts/bench_kernels.sh [build-dir]
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-/work/build-quant}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$build" --target swapmoe_quant -j2 > /dev/null
g++ -std=c++20 -O2 -I"$root/src" "$root/scripts/bench_kernels.cpp" \
  "$build/libswapmoe_quant.a" "$build/libswapmoe_util.a" -lpthread -o "$build/bench_kernels"
"$build/bench_kernels"
