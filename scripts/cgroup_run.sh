#!/usr/bin/env bash
# Runs a command under a hard memory limit, the way the --mem claims of swapmoe are
# checked: page cache dropped first (so earlier runs do not help), the command placed in a
# fresh memory cgroup with swap forbidden, its peak usage printed, OOM kills detected.
#
#   scripts/cgroup_run.sh [--no-drop] LIMIT -- CMD [ARGS...]
#     LIMIT: bytes with an optional binary suffix: 512M, 6G, 1.5G, 6GiB.
#
# Needs root (or a delegated cgroup). Works with cgroup v2 (memory.max, memory.swap.max,
# memory.peak, memory.events) and v1 (memory.limit_in_bytes, memory.memsw.limit_in_bytes,
# memory.max_usage_in_bytes, memory.oom_control). The cgroup is created under
# $SWAPMOE_CGROUP_PARENT if set, else at the top of the memory hierarchy.
#
# Exit status: the command's (137 when the kernel's OOM killer ended it); 77 with
# "skip: cannot create a memory cgroup" when no memory cgroup can be made (tests treat 77
# as skipped); 2 on bad usage.
# Stderr gets one summary line: "cgroup_run: v1 limit 512.0 MiB peak 301.2 MiB rc 0".
set -u

die() { echo "cgroup_run: $*" >&2; exit 2; }

drop=1
if [ "${1:-}" = "--no-drop" ]; then drop=0; shift; fi
[ $# -ge 3 ] || die "usage: cgroup_run.sh [--no-drop] LIMIT -- CMD [ARGS...]"
limit_text=$1; shift
[ "$1" = "--" ] || die "expected -- after LIMIT"
shift

# Size parsing: binary units whatever the spelling (6G = 6GiB = 6 * 2^30).
limit=$(awk -v s="$limit_text" 'BEGIN {
  if (match(s, /^[0-9]+(\.[0-9]+)?/) == 0) exit 1
  v = substr(s, 1, RLENGTH); u = toupper(substr(s, RLENGTH + 1))
  m = 1
  if (u == "" || u == "B") m = 1
  else if (u ~ /^K(I?B)?$/) m = 1024
  else if (u ~ /^M(I?B)?$/) m = 1024 ^ 2
  else if (u ~ /^G(I?B)?$/) m = 1024 ^ 3
  else if (u ~ /^T(I?B)?$/) m = 1024 ^ 4
  else exit 1
  printf "%.0f\n", v * m }') || die "invalid LIMIT '$limit_text' (use e.g. 512M, 6G, 1.5GiB)"
[ "$limit" -gt 0 ] 2>/dev/null || die "LIMIT must be positive"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
skip() { echo "skip: cannot create a memory cgroup ($*)" >&2; exit 77; }

# Which hierarchy has the memory controller?
version=""
if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
  version=2; root=/sys/fs/cgroup
elif [ -d /sys/fs/cgroup/memory ] && [ -f /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then
  version=1; root=/sys/fs/cgroup/memory
else
  skip "no cgroup v2 memory controller and no v1 memory hierarchy"
fi
parent=${SWAPMOE_CGROUP_PARENT:-$root}
cg="$parent/swapmoe-run-$$-$RANDOM"

if [ "$drop" = 1 ]; then
  sync
  if ! (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then
    echo "cgroup_run: warning: cannot drop the page cache (not root?); cached file pages may make the run look faster" >&2
  fi
fi

mkdir "$cg" 2>/dev/null || skip "mkdir $cg failed"
cleanup() {
  # Anything still inside was started by the command: end it, then remove the group.
  if [ -f "$cg/cgroup.procs" ]; then
    for pid in $(cat "$cg/cgroup.procs" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  fi
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    rmdir "$cg" 2>/dev/null && return
    [ -d "$cg" ] || return
    sleep 0.2
  done
  echo "cgroup_run: warning: could not remove $cg" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$version" = 2 ]; then
  echo "$limit" > "$cg/memory.max" 2>/dev/null || skip "cannot write memory.max"
  [ -f "$cg/memory.swap.max" ] && echo 0 > "$cg/memory.swap.max" 2>/dev/null
else
  echo "$limit" > "$cg/memory.limit_in_bytes" 2>/dev/null || skip "cannot write memory.limit_in_bytes"
  # memsw (memory + swap) must not be below the memory limit; equal forbids swapping.
  [ -f "$cg/memory.memsw.limit_in_bytes" ] && echo "$limit" > "$cg/memory.memsw.limit_in_bytes" 2>/dev/null
  [ -f "$cg/memory.swappiness" ] && echo 0 > "$cg/memory.swappiness" 2>/dev/null
fi

# The child joins the cgroup itself and then becomes the command, so nothing of the
# command ever runs outside the limit.
bash -c 'echo $$ > "$1/cgroup.procs" || exit 125; shift; exec "$@"' cgroup_run_child "$cg" "$@" &
child=$!
wait "$child"
rc=$?
[ "$rc" = 125 ] && skip "cannot move the command into $cg"

oom=0
if [ "$version" = 2 ]; then
  peak=$(cat "$cg/memory.peak" 2>/dev/null || echo 0)
  oom=$(awk '$1 == "oom_kill" { print $2 }' "$cg/memory.events" 2>/dev/null)
else
  peak=$(cat "$cg/memory.max_usage_in_bytes" 2>/dev/null || echo 0)
  oom=$(awk '$1 == "oom_kill" { print $2 }' "$cg/memory.oom_control" 2>/dev/null)
fi
oom=${oom:-0}
msg="cgroup_run: v$version limit $(mib "$limit") peak $(mib "$peak") rc $rc"
if [ "$oom" != 0 ] || [ "$rc" = 137 ]; then
  msg="$msg OOM-KILLED (oom_kill events: $oom)"
  [ "$rc" = 0 ] || rc=137
fi
echo "$msg" >&2
exit "$rc"
