#!/usr/bin/env bash
# Decode under a memory budget for files of the same shape in different expert types (issue 13:
# Qwen3-30B-A3B with Q4_K_M, IQ2_XXS and IQ1_S experts): `swapmoe bench MODEL --mem LIMIT` inside
# scripts/cgroup_run.sh LIMIT (page cache dropped before each run), R rounds with the models in
# rotating order, medians of decode tok/s and of MiB read per decoded token, each file's expert
# bytes, and the ratios against the first MODEL (the reference, e.g. the Q4_K_M file). Expected:
# reads per token fall by about the ratio of bytes per expert, and tok/s rises with them.
#
#   scripts/bench_lowbit_mem.sh MODEL_REF MODEL [MODEL...]
#
# Environment: R=3, LIMIT=6G (cgroup and --mem), N=32 tokens decoded (after a 4-token prompt),
# THREADS=2, LOCK=FILE (flock held for each run), SWAPMOE_ARGS, SWAPMOE, BENCH_LOG_DIR.
# Needs root for the cgroup and for dropping the page cache.
set -uo pipefail
. "$(dirname "$0")/bench_lib.sh"

[ $# -ge 2 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
R=${R:-3}; LIMIT=${LIMIT:-6G}; N=${N:-32}; THREADS=${THREADS:-2}; LOCK=${LOCK:-}; SWAPMOE_ARGS=${SWAPMOE_ARGS:-}
if [ -z "${SWAPMOE:-}" ]; then SWAPMOE=$bench_root/build/swapmoe; fi
[ -x "$SWAPMOE" ] || bench_die "SWAPMOE=$SWAPMOE is not executable"
for m in "$@"; do [ -f "$m" ] || bench_die "no such model: $m"; done
logs=${BENCH_LOG_DIR:-$(mktemp -d /tmp/bench_lowbit_mem.XXXXXX)}
mkdir -p "$logs"
cg="$bench_root/scripts/cgroup_run.sh"
# MiB from swapmoe's sizes ("753.2 MiB", "1.20 GiB", "512.0 KiB").
to_mib() { awk -v v="$1" -v u="$2" 'BEGIN { m = (u == "GiB") ? 1024 : (u == "KiB") ? 1 / 1024 : (u == "B") ? 1 / 1048576 : 1; printf "%.1f", v * m }'; }

echo "# bench_lowbit_mem: limit $LIMIT, swapmoe bench --mem $LIMIT -n $N $SWAPMOE_ARGS, R=$R threads=$THREADS, logs $logs"
echo "machine: $(nproc) cores, $(awk '/MemAvailable/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) available, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "swapmoe: $SWAPMOE ($(git -C "$bench_root" rev-parse --short HEAD 2>/dev/null))"
declare -A tps mib bound
models=("$@")
for r in $(seq 1 "$R"); do
  k=$(( (r - 1) % ${#models[@]} ))
  order=("${models[@]:k}" "${models[@]:0:k}")
  for m in "${order[@]}"; do
    name=$(basename "$m" .gguf)
    log=$logs/$name.$r
    [ -n "$LOCK" ] && { exec 9> "$LOCK"; flock 9; }
    "$cg" "$LIMIT" -- "$SWAPMOE" bench "$m" --mem "$LIMIT" -n "$N" --threads "$THREADS" $SWAPMOE_ARGS > "$log.out" 2> "$log.log"
    rc=$?
    [ -n "$LOCK" ] && { flock -u 9; exec 9>&-; }
    t=$(sed -n 's/^decode: .*, \([0-9.]*\) tok\/s$/\1/p' "$log.out")
    read -r v u < <(sed -n 's/^experts: .*| read \([0-9.]*\) \([KMG]*i*B\)\/token .*/\1 \2/p' "$log.out")
    b=$(sed -n 's/^I\/O bound: .* -> at most \([0-9.]*\) tok\/s.*/\1/p' "$log.out")
    mb=""; [ -n "${v:-}" ] && mb=$(to_mib "$v" "$u")
    [ "$rc" = 0 ] && [ -n "$t" ] && tps[$name]="${tps[$name]:-} $t"
    [ "$rc" = 0 ] && [ -n "$mb" ] && mib[$name]="${mib[$name]:-} $mb"
    [ "$rc" = 0 ] && [ -n "$b" ] && bound[$name]="${bound[$name]:-} $b"
    printf 'round %d %-26s rc %-3s decode %6s tok/s  read %8s MiB/token  I/O bound %6s tok/s  %s  (load %s)\n' "$r" "$name" \
      "$rc" "${t:--}" "${mb:--}" "${b:--}" "$(grep -o 'peak [0-9.]* MiB.*' "$log.log" | tail -1)" "$(cut -d' ' -f1 /proc/loadavg)"
  done
done
echo
echo "| file | expert bytes | decode tok/s | x ref | MiB read/token | x ref | expert bytes x ref | I/O bound tok/s (bench) |"
echo "|---|---|---|---|---|---|---|---|"
ref=$(basename "$1" .gguf); ref_e=""
for m in "$@"; do
  name=$(basename "$m" .gguf)
  read -r _ e _ _ _ _ < <(python3 "$bench_root/scripts/gguf_decode_bytes.py" "$m")
  [ -z "$ref_e" ] && ref_e=$e
  t=$(bench_median ${tps[$name]:-}); mb=$(bench_median ${mib[$name]:-}); b=$(bench_median ${bound[$name]:-})
  echo "| $name | $(awk -v e="$e" 'BEGIN { printf "%.2f GiB", e / 2^30 }') | $t | $(bench_ratio "$t" "$(bench_median ${tps[$ref]:-})") |" \
       "$mb | $(bench_ratio "$mb" "$(bench_median ${mib[$ref]:-})") | $(bench_ratio "$e" "$ref_e") | $b |"
done
echo "(medians of $R runs; x ref = against $ref)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
