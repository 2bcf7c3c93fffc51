#!/usr/bin/env bash
# Memory-budget comparison in one run: decode tokens/s of
#   (a) swapmoe run --mem LIMIT        inside scripts/cgroup_run.sh LIMIT (page cache dropped first)
#   (b) llama.cpp, mmap + --no-repack  inside the same cgroup limit (tools/llama-driver); the
#       page cache of the model file is charged to the cgroup, so llama.cpp pages weights in
#       and out through the kernel's page cache
#   (c) swapmoe run, no --mem, no cgroup: the resident ceiling
# each repeated R times, alternating a/b/c, medians; ratios (a)/(b) and (a)/(c); swapmoe's
# expert-cache stats line from (a); the I/O bound measured by `swapmoe bench --mem LIMIT`.
#
#   scripts/bench_budget.sh MODEL [LIMIT=6G] [N=32]
#
# Environment: R=3, THREADS=2, PROMPT_TOKENS=16, MEM (swapmoe's --mem, default LIMIT),
# SKIP_RESIDENT=1 to leave out (c) (a model larger than RAM), CONFIGS (default "a b c"),
# R_B / N_B: repetitions / tokens for llama.cpp (b) (default R / N; it is ~10x slower),
# LOCK=FILE: hold flock on FILE for each single run (so that other big runs can interleave
# and no lock is held for long; e.g. /work/big/.memlock), NEED_GIB_C: skip (c) when less
# memory than this is available at its turn, SWAPMOE_ARGS: extra flags for (a) and bench,
# SKIP_BENCH=1, SWAPMOE, LLAMA_DRIVER (scripts/bench_lib.sh), BENCH_LOG_DIR (default: a
# temporary directory, printed). Needs root for the cgroup and for dropping the page cache.
# The summary gives (a)'s median against the I/O bound of `swapmoe bench` (bytes missed
# per token / the disk bandwidth it measured), as a fraction.
set -uo pipefail
. "$(dirname "$0")/bench_lib.sh"

[ $# -ge 1 ] || { sed -n '2,24p' "$0" >&2; exit 2; }
model=$1; LIMIT=${2:-6G}; N=${3:-32}
R=${R:-3}; THREADS=${THREADS:-2}; PROMPT_TOKENS=${PROMPT_TOKENS:-16}; MEM=${MEM:-$LIMIT}
R_B=${R_B:-$R}; N_B=${N_B:-$N}; LOCK=${LOCK:-}; NEED_GIB_C=${NEED_GIB_C:-0}; SWAPMOE_ARGS=${SWAPMOE_ARGS:-}
avail_gib() { awk '/MemAvailable/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo; }
# Runs "$@" holding $LOCK when set.
locked() {
  [ -n "$LOCK" ] && { exec 9> "$LOCK"; flock 9; }
  "$@"
  local rc=$?
  [ -n "$LOCK" ] && { flock -u 9; exec 9>&-; }
  return $rc
}
[ -f "$model" ] || bench_die "no such model: $model"
bench_find_binaries
cg="$bench_root/scripts/cgroup_run.sh"
logs=${BENCH_LOG_DIR:-$(mktemp -d /tmp/bench_budget.XXXXXX)}
mkdir -p "$logs"
name=$(basename "$model" .gguf)
nmax=$(( N > N_B ? N : N_B ))
ctx=$(( (PROMPT_TOKENS + nmax + 256) / 256 * 256 ))
pfile=$logs/$name.prompt.txt
bench_prompt_file "$model" "$PROMPT_TOKENS" "$pfile"

have_mem=0
"$SWAPMOE" run --help 2>&1 | grep -q -- '--mem' && have_mem=1
have_bench=0
"$SWAPMOE" --help 2>&1 | grep -Eq "^ +bench( |$)" && have_bench=1

echo "# bench_budget: $name ($(du -h --apparent-size "$model" | cut -f1) file, $(du -h "$model" | cut -f1) on disk)," \
     "limit $LIMIT, swapmoe --mem $MEM $SWAPMOE_ARGS, R=$R threads=$THREADS prompt=$PROMPT_TOKENS generate=$N" \
     "(llama.cpp: R=$R_B generate=$N_B), logs $logs"
bench_machine_state
[ "$have_mem" = 1 ] || echo "warning: $SWAPMOE has no --mem option; (a) is skipped"

run_a() {
  "$cg" "$LIMIT" -- "$SWAPMOE" run "$model" -p "$(cat "$pfile")" -n "$N" --temp 0 --threads "$THREADS" \
    --ctx "$ctx" --mem "$MEM" --print-ids $SWAPMOE_ARGS
}
run_b() {
  "$cg" "$LIMIT" -- "$LLAMA_DRIVER" -m "$model" --prompt-file "$pfile" -n "$N_B" --threads "$THREADS" --ctx "$ctx" \
    --mmap --no-repack
}
run_c() {
  "$SWAPMOE" run "$model" -p "$(cat "$pfile")" -n "$N" --temp 0 --threads "$THREADS" --ctx "$ctx" --print-ids
}

a_tg=(); b_tg=(); c_tg=()
configs=${CONFIGS:-a b c}
[ "$have_mem" = 1 ] || configs=${configs//a/}
[ "${SKIP_RESIDENT:-0}" = 1 ] && configs=${configs//c/}
configs=$(echo $configs)
rmax=$(( R > R_B ? R : R_B ))
for r in $(seq 1 "$rmax"); do
  # Rotate the order each round so drifts in the shared machine's load hit every config.
  set -- $configs
  [ $# -gt 0 ] || break
  case $(($# > 1 ? r % $# : 0)) in 0) order="$*" ;; 1) order="${*:2} $1" ;; *) order="${*: -1} ${*:1:$#-1}" ;; esac
  for c in $order; do
    if [ "$c" = b ]; then [ "$r" -le "$R_B" ] || continue; else [ "$r" -le "$R" ] || continue; fi
    if [ "$c" = c ] && ! awk -v a="$(avail_gib)" -v n="$NEED_GIB_C" 'BEGIN { exit !(a + 0 >= n + 0) }'; then
      echo "run $r (c) skipped: $(avail_gib) GiB available, NEED_GIB_C=$NEED_GIB_C"
      continue
    fi
    log=$logs/$name.$c.$r.log
    locked "run_$c" > "$log.out" 2> "$log"
    rc=$?
    if [ "$c" = b ]; then tg=$(bench_json decode_tps < "$log.out"); else tg=$(bench_swapmoe_decode_tps < "$log"); fi
    peak=$(sed -n 's/^cgroup_run: .* peak \([0-9.]* MiB\).*/\1/p' "$log" | tail -1)
    grep -q 'OOM-KILLED' "$log" && peak="$peak OOM-KILLED"
    if [ "$rc" = 0 ] && [ -n "$tg" ]; then
      case $c in a) a_tg+=("$tg") ;; b) b_tg+=("$tg") ;; c) c_tg+=("$tg") ;; esac
    fi
    printf 'run %d (%s) rc %-3s decode %8s tok/s  cgroup peak %-14s load %s\n' "$r" "$c" "$rc" "${tg:--}" "${peak:--}" \
      "$(cut -d' ' -f1 /proc/loadavg)"
  done
done

a=$(bench_median "${a_tg[@]}"); b=$(bench_median "${b_tg[@]}"); c=$(bench_median "${c_tg[@]}")
echo
echo "| config | runs (decode tok/s) | median |"
echo "|---|---|---|"
echo "| (a) swapmoe --mem $MEM $SWAPMOE_ARGS, cgroup $LIMIT | ${a_tg[*]:-} | $a |"
echo "| (b) llama.cpp mmap --no-repack, cgroup $LIMIT | ${b_tg[*]:-} | $b |"
echo "| (c) swapmoe resident, no limit | ${c_tg[*]:-} | $c |"
echo "ratio (a)/(b) = $(bench_ratio "$a" "$b"), (a)/(c) = $(bench_ratio "$a" "$c")"
stats=$(grep -h '^swapmoe: --mem' "$logs/$name.a."*.log 2>/dev/null | tail -1)
echo "swapmoe stats (last (a) run): ${stats:-none}"

if [ "${SKIP_BENCH:-0}" = 1 ]; then
  :
elif [ "$have_bench" = 1 ]; then
  locked "$cg" "$LIMIT" -- "$SWAPMOE" bench "$model" --mem "$MEM" -n "$N" --threads "$THREADS" --ctx "$ctx" $SWAPMOE_ARGS \
    > "$logs/$name.bench.out" 2> "$logs/$name.bench.log"
  echo "swapmoe bench (rc $?):"
  grep -E '^(decode|experts|cache|I/O bound):' "$logs/$name.bench.out" | sed 's/^/  /'
  # The bound from bench (bytes missed per token / its measured disk bandwidth) against
  # (a)'s median from the runs above.
  bound=$(sed -n 's/^I\/O bound: .* -> at most \([0-9.]*\) tok\/s.*/\1/p' "$logs/$name.bench.out" | tail -1)
  [ -n "$bound" ] && echo "(a) median / I/O bound = $a / $bound = $(bench_ratio "$a" "$bound")"
else
  echo "swapmoe bench: not available in $SWAPMOE"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
