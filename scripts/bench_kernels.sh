#!/bin/sh
# Builds the kernel libraries in BUILD (default /work/build-kernels) and runs
#   bench_kernels         single-thread vec_dot GB/s per format and ISA;
#   bench_kernels_matmul  batched matmul vs per-token matvec (B = 1..512) and the decode
#                         layer (separate matvec calls vs matvec_multi vs a streaming read).
# Usage: scripts/bench_kernels.sh [build-dir] [quick|full] [overhead|decode|prefill|shape-substring]
# SWAPMOE_ISA=avx2|scalar caps the kernels (see util/cpu.h).
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-/work/build-kernels}
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build "$build" --target swapmoe_ops -j2 > /dev/null
libs="$build/libswapmoe_ops.a $build/libswapmoe_quant.a $build/libswapmoe_util.a -lpthread"
g++ -std=c++20 -O2 -I"$root/src" "$root/scripts/bench_kernels.cpp" $libs -o "$build/bench_kernels"
g++ -std=c++20 -O2 -I"$root/src" "$root/scripts/bench_kernels_matmul.cpp" $libs -o "$build/bench_kernels_matmul"
mode=${2:-full}
if [ $# -ge 2 ]; then shift 2; else shift $#; fi
quick=""
if [ "$mode" = "quick" ]; then quick=quick; else "$build/bench_kernels"; fi
"$build/bench_kernels_matmul" $quick "$@"
# llama.cpp comparison: ggml's CPU libraries from node-llama-cpp's npm package, when
# present (GGML_LIB_DIR overrides the path; GGML_CPU_VARIANT picks the libggml-cpu-*.so).
ggml_dir=${GGML_LIB_DIR:-/tmp/nlc/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64}
if [ -f "$ggml_dir/libggml-base.so" ]; then
  g++ -std=c++20 -O2 -I"$root/src" "$root/scripts/bench_kernels_ggml.cpp" $libs -ldl -o "$build/bench_kernels_ggml"
  "$build/bench_kernels_ggml" "$ggml_dir" "${GGML_CPU_VARIANT:-zen4}" 1 2
fi
