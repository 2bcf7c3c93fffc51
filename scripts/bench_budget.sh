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
# SKIP_RESIDENT=1 to leave out (c) (a model larger than RAM), SWAPMOE, LLAMA_DRIVER
# (scripts/bench_lib.sh), BENCH_LOG_DIR (default: a temporary directory, printed).
# Needs root for the cgroup and for dropping the page cache.
set -uo pipefail
. "$(dirname "$0")/bench_lib.sh"

[ $# -ge 1 ] || { sed -n '2,17p' "$0" >&2; exit 2; }
model=$1; LIMIT=${2:-6G}; N=${3:-32}
R=${R:-3}; THREADS=${THREADS:-2}; PROMPT_TOKENS=${PROMPT_TOKENS:-16}; MEM=${MEM:-$LIMIT}
[ -f "$model" ] || bench_die "no such model: $model"
bench_find_binaries
cg="$bench_root/scripts/cgroup_run.sh"
logs=${BENCH_LOG_DIR:-$(mktemp -d /tmp/bench_budget.XXXXXX)}
mkdir -p "$logs"
name=$(basename "$model" .gguf)
ctx=$(( (PROMPT_TOKENS + N + 256) / 256 * 256 ))
pfile=$logs/$name.prompt.txt
bench_prompt_file "$model" "$PROMPT_TOKENS" "$pfile"

have_mem=0
"$SWAPMOE" run --help 2>&1 | grep -q -- '--mem' && have_mem=1
have_bench=0
"$SWAPMOE" --help 2>&1 | grep -Eq "^ +bench( |$)" && have_bench=1

echo "# bench_budget: $name ($(du -h --apparent-size "$model" | cut -f1) file, $(du -h "$model" | cut -f1) on disk)," \
     "limit $LIMIT, swapmoe --mem $MEM, R=$R threads=$THREADS prompt=$PROMPT_TOKENS generate=$N, logs $logs"
bench_machine_state
[ "$have_mem" = 1 ] || echo "warning: $SWAPMOE has no --mem option; (a) is skipped"

run_a() {
  "$cg" "$LIMIT" -- "$SWAPMOE" run "$model" -p "$(cat "$pfile")" -n "$N" --temp 0 --threads "$THREADS" \
    --ctx "$ctx" --mem "$MEM" --print-ids
}
run_b() {
  "$cg" "$LIMIT" -- "$LLAMA_DRIVER" -m "$model" --prompt-file "$pfile" -n "$N" --threads "$THREADS" --ctx "$ctx" \
    --mmap --no-repack
}
run_c() {
  "$SWAPMOE" run "$model" -p "$(cat "$pfile")" -n "$N" --temp 0 --threads "$THREADS" --ctx "$ctx" --print-ids
}

a_tg=(); b_tg=(); c_tg=()
configs="a b c"
[ "$have_mem" = 1 ] || configs="b c"
[ "${SKIP_RESIDENT:-0}" = 1 ] && configs=${configs% c}
for r in $(seq 1 "$R"); do
  # Rotate the order each round so drifts in the shared machine's load hit every config.
  set -- $configs
  case $((r % 3)) in 1) order="$*" ;; 2) order="${*:2} $1" ;; 0) order="${*: -1} ${*:1:$#-1}" ;; esac
  for c in $order; do
    log=$logs/$name.$c.$r.log
    "run_$c" > "$log.out" 2> "$log"
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
echo "| config | decode tok/s (median of $R) |"
echo "|---|---|"
echo "| (a) swapmoe --mem $MEM, cgroup $LIMIT | $a |"
echo "| (b) llama.cpp mmap --no-repack, cgroup $LIMIT | $b |"
echo "| (c) swapmoe resident, no limit | $c |"
echo "ratio (a)/(b) = $(bench_ratio "$a" "$b"), (a)/(c) = $(bench_ratio "$a" "$c")"
stats=$(grep -h '^swapmoe: --mem' "$logs/$name.a."*.log 2>/dev/null | tail -1)
echo "swapmoe stats (last (a) run): ${stats:-none}"

if [ "$have_bench" = 1 ]; then
  "$cg" "$LIMIT" -- "$SWAPMOE" bench "$model" --mem "$MEM" -n "$N" --threads "$THREADS" --ctx "$ctx" \
    > "$logs/$name.bench.out" 2> "$logs/$name.bench.log"
  echo "swapmoe bench (rc $?):"
  grep -E '^(decode|experts|cache|I/O bound):' "$logs/$name.bench.out" | sed 's/^/  /'
else
  echo "swapmoe bench: not available in $SWAPMOE"
fi
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
