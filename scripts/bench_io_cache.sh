#!/usr/bin/env bash
# Expert-cache read path under uniform routing (no compute): streaming (request + acquire_any,
# all 8 experts' reads in flight) vs serial acquires, io_uring vs the pread pool.
#   scripts/bench_io_cache.sh [BUILD_DIR] [DIR] [N_LAYER]
# Needs BUILD_DIR's swapmoe_cache, swapmoe_io, swapmoe_gguf, swapmoe_util built. Writes
# N_LAYER x 128 experts x 2.53 MiB (default 4 layers: 1.3 GB) in DIR and deletes it after.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")/src
build=${1:-/work/build-cache}
dir=${2:-/tmp}
layers=${3:-4}
bin="$build/bench_io_cache"
g++ -std=c++20 -O2 -I"$src" -DSWAPMOE_HAVE_URING=1 "$here/bench_io_cache.cpp" "$build/libswapmoe_cache.a" "$build/libswapmoe_io.a" \
  "$build/libswapmoe_gguf.a" "$build/libswapmoe_util.a" $(pkg-config --libs liburing) -lpthread -o "$bin"
file="$dir/swapmoe_bench_cache.$$.gguf"
trap 'rm -f "$file"' EXIT
"$bin" "$file" "$layers" 0 0 pread stream write
sync
drop() { (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null || true; }
for eng in uring pread; do
  for mode in stream serial; do
    drop; "$bin" "$file" "$layers" $((layers * 16)) 40 $eng $mode
  done
done
