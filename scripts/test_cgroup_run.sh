#!/usr/bin/env bash
# Checks scripts/cgroup_run.sh for real: a program that stays under the limit must pass,
# one that allocates past it must be OOM-killed (137), and an impossible cgroup must give
# 77 ("skip"), a peak over --budget must fail (1). Exits 77 itself where memory cgroups cannot be
# created (not root, etc.), or 1 under CI=true / SWAPMOE_REQUIRE=all (scripts/skip.sh).
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/skip.sh"
command -v python3 >/dev/null || { swapmoe_skip python3 "python3 is not installed (it allocates the test memory)" && exit 77; exit 1; }
run="$here/cgroup_run.sh"
alloc='import sys; n=int(sys.argv[1])<<20; b=bytearray(n); b[::4096]=b"\x01"*len(range(0,n,4096))'
fails=0
check() {  # name expected actual
  if [ "$2" = "$3" ]; then echo "ok   $1 (rc $3)"; else echo "FAIL $1: expected rc $2, got $3"; fails=$((fails + 1)); fi
}

"$run" --no-drop 256M -- python3 -c "$alloc" 64
rc=$?
if [ "$rc" = 77 ]; then swapmoe_skip cgroup "no memory cgroups here" && exit 77; exit 1; fi
check "64 MiB under a 256 MiB limit passes" 0 "$rc"
"$run" --no-drop 256M -- python3 -c "$alloc" 512
check "512 MiB under a 256 MiB limit is OOM-killed" 137 $?
"$run" --no-drop --budget 128M 256M -- python3 -c "$alloc" 64
check "64 MiB with a 128 MiB budget passes" 0 $?
"$run" --no-drop --budget 96M 256M -- python3 -c "$alloc" 160
check "160 MiB over a 96 MiB budget (under the limit) fails" 1 $?
"$run" --no-drop 256M -- sh -c 'exit 3'
check "the command's exit status is passed through" 3 $?
SWAPMOE_CGROUP_PARENT=/nonexistent/dir "$run" --no-drop 256M -- true
check "no cgroup possible -> skip" 77 $?
"$run" 12Q -- true 2>/dev/null
check "bad limit -> usage error" 2 $?
leftover=$(ls -d /sys/fs/cgroup/memory/swapmoe-run-* /sys/fs/cgroup/swapmoe-run-* 2>/dev/null | wc -l)
check "no cgroups left behind" 0 "$leftover"
exit $((fails > 0))
