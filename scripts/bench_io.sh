#!/usr/bin/env bash
# O_DIRECT read bandwidth: one read in flight vs many, io_uring vs the pread pool.
#   scripts/bench_io.sh [BUILD_DIR] [DIR_FOR_THE_TEST_FILE] [SIZE_MIB]
# Builds scripts/bench_io.cpp against BUILD_DIR's swapmoe_io (build that target first:
# cmake --build BUILD_DIR --target swapmoe_io), writes a SIZE_MIB file (default 2048) in
# DIR (default /tmp), runs the matrix, deletes the file.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
src=$(dirname "$here")/src
build=${1:-/work/build-cache}
dir=${2:-/tmp}
size=${3:-2048}
bin="$build/bench_io"
uring_flags=""
if grep -q "SWAPMOE_HAVE_URING" "$build/CMakeCache.txt" 2>/dev/null || pkg-config --exists liburing; then
  uring_flags="-DSWAPMOE_HAVE_URING=1 $(pkg-config --libs liburing)"
fi
g++ -std=c++20 -O2 -I"$src" "$here/bench_io.cpp" "$build/libswapmoe_io.a" "$build/libswapmoe_util.a" $uring_flags -lpthread -o "$bin"
file="$dir/swapmoe_bench_io.$$.bin"
trap 'rm -f "$file"' EXIT
dd if=/dev/zero of="$file" bs=4M count=$((size / 4)) oflag=direct status=none
sync
drop() { (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null || true; }
total=1024  # MiB read per configuration
drop; "$bin" "$file" sync 1 4096 4096 $total seq
drop; "$bin" "$file" sync 1 4096 4096 $total seq buffered
for eng in uring pread; do
  for n in 1 2 4 8 16 32; do
    drop; "$bin" "$file" $eng $n 1024 1024 $total rand
  done
  # One expert-sized read (3 MiB) at a time, split into 256 KiB chunks read in parallel.
  drop; "$bin" "$file" $eng 1 3072 256 $total rand
  drop; "$bin" "$file" $eng 4 3072 256 $total rand
  # Small reads: where many in flight matter most.
  for n in 1 8 32 64; do
    drop; "$bin" "$file" $eng $n 128 128 $((total / 2)) rand
  done
done
