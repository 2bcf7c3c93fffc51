#!/usr/bin/env bash
# Runs a command under a hard memory limit, the way the --mem claims of swapmoe are
# checked: page cache dropped first (so earlier runs do not help), the command placed in a
# fresh memory cgroup with swap forbidden, its peak usage printed, OOM kills detected.
#
#   scripts/cgroup_run.sh [--no-drop] [--budget SIZE] LIMIT -- CMD [ARGS...]
#     LIMIT: bytes with an optional binary suffix: 512M, 6G, 1.5G, 6GiB.
#     --budget SIZE: the command's peak resident set (getrusage's ru_maxrss, through GNU time)
#     must also stay at or below SIZE, the --mem budget it was given. LIMIT is usually budget
#     + 5%, so the kernel alone would let 5% over the budget pass; and the cgroup's own peak
#     counts reclaimable page cache too (it sits at LIMIT whenever the command reads files),
#     so it cannot be held to the budget itself.
#
# Needs root (or a delegated cgroup). Works with cgroup v2 (memory.max, memory.swap.max,
# memory.peak, memory.events) and v1 (memory.limit_in_bytes, memory.memsw.limit_in_bytes,
# memory.max_usage_in_bytes, memory.oom_control). The cgroup is created under
# $SWAPMOE_CGROUP_PARENT if set, else at the top of the memory hierarchy.
#
# Exit status: the command's (137 when the kernel's OOM killer ended it; 1 when it exited 0
# but its peak was over --budget); 77 with "skip: cannot create a memory cgroup" when no
# memory cgroup can be made (tests treat 77 as skipped, or as a failure under CI=true:
# scripts/skip.sh); 3 when swap cannot be forbidden on a machine that has swap (a run that
# may swap proves nothing about memory); 2 on bad usage.
# Stderr gets one summary line: "cgroup_run: v1 limit 512.0 MiB peak 301.2 MiB rc 0".
set -u

die() { echo "cgroup_run: $*" >&2; exit 2; }

drop=1
budget_text=""
while [ $# -gt 0 ]; do
  case "$1" in
    --no-drop) drop=0; shift ;;
    --budget) [ $# -ge 2 ] || die "--budget needs a SIZE"; budget_text=$2; shift 2 ;;
    *) break ;;
  esac
done
[ $# -ge 3 ] || die "usage: cgroup_run.sh [--no-drop] [--budget SIZE] LIMIT -- CMD [ARGS...]"
limit_text=$1; shift
[ "$1" = "--" ] || die "expected -- after LIMIT"
shift

# Size parsing: binary units whatever the spelling (6G = 6GiB = 6 * 2^30).
to_bytes() { awk -v s="$1" 'BEGIN {
  if (match(s, /^[0-9]+(\.[0-9]+)?/) == 0) exit 1
  v = substr(s, 1, RLENGTH); u = toupper(substr(s, RLENGTH + 1))
  m = 1
  if (u == "" || u == "B") m = 1
  else if (u ~ /^K(I?B)?$/) m = 1024
  else if (u ~ /^M(I?B)?$/) m = 1024 ^ 2
  else if (u ~ /^G(I?B)?$/) m = 1024 ^ 3
  else if (u ~ /^T(I?B)?$/) m = 1024 ^ 4
  else exit 1
  printf "%.0f\n", v * m }'; }
limit=$(to_bytes "$limit_text") || die "invalid LIMIT '$limit_text' (use e.g. 512M, 6G, 1.5GiB)"
[ "$limit" -gt 0 ] 2>/dev/null || die "LIMIT must be positive"
budget=0
timer=()
if [ -n "$budget_text" ]; then
  budget=$(to_bytes "$budget_text") || die "invalid --budget '$budget_text'"
  [ "$budget" -gt 0 ] 2>/dev/null || die "--budget must be positive"
  [ -x /usr/bin/time ] || die "--budget needs GNU time (/usr/bin/time, Debian package time)"
  rss_file=$(mktemp "${TMPDIR:-/tmp}/cgroup_run.rss.XXXXXX")
  timer=(/usr/bin/time -q -f %M -o "$rss_file")
fi

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
cleanup_all() {
  cleanup
  [ -n "${rss_file:-}" ] && rm -f "$rss_file"
}
trap cleanup_all EXIT
trap 'exit 130' INT TERM

# Swap must be forbidden: a command that swaps can exceed its limit in effect and still pass.
# Where the cgroup cannot forbid it (no swap accounting) that is acceptable only on a machine
# without swap; otherwise the run is refused (exit 3).
swap_total=$(awk '$1 == "SwapTotal:" { print $2 }' /proc/meminfo 2>/dev/null)
no_swap() {
  if [ "${swap_total:-1}" = 0 ]; then
    echo "cgroup_run: note: $* (the machine has no swap, so nothing can swap)" >&2
  else
    echo "cgroup_run: cannot forbid swap: $*, and the machine has ${swap_total:-?} kB of swap" >&2
    exit 3
  fi
}
if [ "$version" = 2 ]; then
  echo "$limit" > "$cg/memory.max" 2>/dev/null || skip "cannot write memory.max"
  if [ -f "$cg/memory.swap.max" ]; then
    echo 0 > "$cg/memory.swap.max" 2>/dev/null && [ "$(cat "$cg/memory.swap.max")" = 0 ] || no_swap "cannot set memory.swap.max to 0"
  else
    no_swap "no memory.swap.max (swap accounting off)"
  fi
else
  echo "$limit" > "$cg/memory.limit_in_bytes" 2>/dev/null || skip "cannot write memory.limit_in_bytes"
  # memsw (memory + swap) must not be below the memory limit; equal forbids swapping.
  if [ -f "$cg/memory.memsw.limit_in_bytes" ]; then
    echo "$limit" > "$cg/memory.memsw.limit_in_bytes" 2>/dev/null &&
      [ "$(cat "$cg/memory.memsw.limit_in_bytes")" = "$(cat "$cg/memory.limit_in_bytes")" ] ||
      no_swap "cannot set memory.memsw.limit_in_bytes to the limit"
  else
    no_swap "no memory.memsw.limit_in_bytes (swap accounting off)"
  fi
  [ -f "$cg/memory.swappiness" ] && echo 0 > "$cg/memory.swappiness" 2>/dev/null
fi

# The child joins the cgroup itself and then becomes the command, so nothing of the
# command ever runs outside the limit.
bash -c 'echo $$ > "$1/cgroup.procs" || exit 125; shift; exec "$@"' cgroup_run_child "$cg" "${timer[@]}" "$@" &
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
rss=0
if [ "$budget" -gt 0 ]; then
  rss_kb=$(tail -n 1 "$rss_file" 2>/dev/null)
  [[ "$rss_kb" =~ ^[0-9]+$ ]] && rss=$((rss_kb * 1024))
  msg="cgroup_run: v$version budget $(mib "$budget") limit $(mib "$limit") peak RSS $(mib "$rss") cgroup peak $(mib "$peak") rc $rc"
fi
if [ "$oom" != 0 ] || [ "$rc" = 137 ]; then
  msg="$msg OOM-KILLED (oom_kill events: $oom)"
  [ "$rc" = 0 ] || rc=137
elif [ "$budget" -gt 0 ] && [ "$rss" = 0 ]; then
  msg="$msg NO PEAK RSS (GNU time wrote none)"
  [ "$rc" = 0 ] && rc=1
elif [ "$budget" -gt 0 ] && [ "$rss" -gt "$budget" ]; then
  msg="$msg PEAK RSS OVER BUDGET by $(mib $((rss - budget)))"
  [ "$rc" = 0 ] && rc=1
elif [ "$peak" = 0 ]; then
  msg="$msg NO PEAK READ (the cgroup's peak file was empty)"
  [ "$rc" = 0 ] && rc=1
fi
echo "$msg" >&2
exit "$rc"
