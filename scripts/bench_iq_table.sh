#!/bin/sh
# One table for issue 13's twelve low-bit types: swapmoe's matmul vs llama.cpp's own CPU
# kernels (ggml from node-llama-cpp, dlopen()ed by bench_kernels_ggml.cpp), single thread,
# process CPU time (BENCH_CPU_TIME=1, so other users of a shared machine count less), medians
# of alternating runs. B=1 is decode (ggml: vec_dot; ours: vec_dot), B>1 is prefill-like
# (ggml: its mul_mat path for the type, e.g. the IQ panel gemm or the repacked layout; ours:
# matmul with vec_dot_multi or the row tile). ratio = ggml time / our time (>1: we are faster).
# Usage: scripts/bench_iq_table.sh [build-dir] > table.md
# Environment: TYPES, SHAPE (default qwen3: 768x2048 gate/up and 2048x768 down of
# Qwen3-30B-A3B), BATCHES (default "1 64 256"), GGML_LIB_DIR, GGML_CPU_VARIANT (default zen4).
set -e
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
cmake --build "$build" --target swapmoe_ops -j2 > /dev/null
ggml_dir=${GGML_LIB_DIR:-$root/tests/conformance/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64}
[ -f "$ggml_dir/libggml-base.so" ] || { echo "bench_iq_table: no libggml-base.so in $ggml_dir (npm ci in tests/conformance, or GGML_LIB_DIR)" >&2; exit 1; }
libs="$build/libswapmoe_ops.a $build/libswapmoe_quant.a $build/libswapmoe_util.a -lpthread"
g++ -std=c++20 -O2 -I"$root/src" "$root/scripts/bench_kernels_ggml.cpp" $libs -ldl -o "$build/bench_kernels_ggml"
types=${TYPES:-"IQ1_S IQ1_M IQ2_XXS IQ2_XS IQ2_S IQ3_XXS IQ3_S IQ4_NL IQ4_XS TQ1_0 TQ2_0 MXFP4"}
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
BENCH_CPU_TIME=1 TYPES="$types" SHAPE=${SHAPE:-qwen3} BATCHES=${BATCHES:-"1 64 256"} \
  "$build/bench_kernels_ggml" "$ggml_dir" "${GGML_CPU_VARIANT:-zen4}" 1 > "$build/bench_iq_table.raw"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
# Lines: "<shape words> <TYPE> t=1 B=<b> ours <gflops> GFLOP/s <gbs> GB/s | ggml plain <gflops> <gbs> GB/s (x<r>) [| ggml repack <gflops> (x<r>)]"
awk '
  / t=1 B=/ {
    for (i = 1; i <= NF; ++i) if ($i ~ /^t=/) break;
    type = $(i - 1); shape = $(i - 2); b = substr($(i + 1), 3);
    ours = $(i + 3); gg = $(i + 10); r = $(i + 13); gsub(/[(x)]/, "", r);
    rp = "";
    if ($0 ~ /repack/) { rp = $NF; gsub(/[(x)]/, "", rp); }
    printf "| %-7s | %-9s | %4s | %7s | %7s | %5s | %5s |\n", type, shape, b, ours, gg, r, rp;
  }
  BEGIN {
    print "| type    | shape     |    B | ours GFLOP/s | ggml GFLOP/s | ggml/ours | ggml repack/ours |";
    print "|---------|-----------|------|------|------|------|------|";
  }' "$build/bench_iq_table.raw"
