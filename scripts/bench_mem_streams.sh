#!/usr/bin/env bash
# Decode under a memory budget at 1 and more streams (issue 16): `swapmoe bench MODEL --mem
# LIMIT --parallel N` inside scripts/cgroup_run.sh LIMIT (page cache dropped before each run),
# for each N in STREAMS, R rounds with the N in rotating order. Per run and as medians:
# aggregate decode tok/s, MiB read per generated token, the share of the decode time with an
# expert read in flight (disk busy), the rate the disk gave while busy, the disk's bandwidth
# measured right after at the loop's own queue (bench's `disk bandwidth:` line), and
# achieved / bound = tok/s / (that bandwidth / MiB per token). Last, each N's aggregate
# against the first N's.
#
#   scripts/bench_mem_streams.sh MODEL
#
# Environment: STREAMS="1 4", R=3, LIMIT=6G (cgroup and --mem), N=24 tokens per stream,
# CTX=256 tokens of context per stream (the default 4096 would give N=8 streams 3 GiB of KV
# cache on the Qwen3-30B shape, half of a 6 GiB budget), THREADS=2, LOCK=FILE (flock held for each run), SWAPMOE_ARGS, SWAPMOE, BENCH_LOG_DIR,
# VARIANTS="ARGS;ARGS..." (extra options, ;-separated: every N runs with each, alternating
# within a round, e.g. VARIANTS="--speculate 0;--speculate 8"; one row per N and variant).
# Needs root for the cgroup and for dropping the page cache.
#
# Why medians of several rounds, and why both bandwidth columns: on a shared virtual disk the
# bandwidth drifts between 1.0 and 1.9 GiB/s from one second to the next (docs/benchmarks.md),
# so one run's achieved / bound is off by up to a third either way. The busy share does not
# depend on how fast the disk happened to be; the bandwidth columns say how fast it was.
set -uo pipefail
. "$(dirname "$0")/bench_lib.sh"

[ $# -eq 1 ] || { sed -n '2,24p' "$0" >&2; exit 2; }
model=$1
STREAMS=${STREAMS:-1 4}; R=${R:-3}; LIMIT=${LIMIT:-6G}; N=${N:-24}; CTX=${CTX:-256}; THREADS=${THREADS:-2}; LOCK=${LOCK:-}
SWAPMOE_ARGS=${SWAPMOE_ARGS:-}
IFS=';' read -r -a variants <<< "${VARIANTS:-}"
[ ${#variants[@]} -gt 0 ] || variants=("")
if [ -z "${SWAPMOE:-}" ]; then SWAPMOE=$bench_root/build/swapmoe; fi
[ -x "$SWAPMOE" ] || bench_die "SWAPMOE=$SWAPMOE is not executable"
[ -f "$model" ] || bench_die "no such model: $model"
logs=${BENCH_LOG_DIR:-$(mktemp -d /tmp/bench_mem_streams.XXXXXX)}
mkdir -p "$logs"
cg="$bench_root/scripts/cgroup_run.sh"
# MiB from swapmoe's sizes ("753.2 MiB", "1.20 GiB", "512.0 KiB").
to_mib() { awk -v v="$1" -v u="$2" 'BEGIN { m = (u == "GiB") ? 1024 : (u == "KiB") ? 1 / 1024 : (u == "B") ? 1 / 1048576 : 1; printf "%.1f", v * m }'; }

echo "# bench_mem_streams: $(basename "$model"), limit $LIMIT, swapmoe bench --mem $LIMIT -n $N --ctx $CTX --parallel S $SWAPMOE_ARGS, S in {$STREAMS}, variants {${VARIANTS:-none}}, R=$R threads=$THREADS, logs $logs"
echo "machine: $(nproc) cores, $(awk '/MemAvailable/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) available, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "swapmoe: $SWAPMOE ($(git -C "$bench_root" rev-parse --short HEAD 2>/dev/null))"
declare -A tps mib busy bwbusy bw ratio
read -r -a streams <<< "$STREAMS"
# Every (streams, variant) pair is a key "S/V"; the keys run in rotating order per round.
keys=()
for s in "${streams[@]}"; do for v in "${!variants[@]}"; do keys+=("$s/$v"); done; done
for r in $(seq 1 "$R"); do
  k=$(( (r - 1) % ${#keys[@]} ))
  order=("${keys[@]:k}" "${keys[@]:0:k}")
  for key in "${order[@]}"; do
    s=${key%/*}; vi=${key#*/}
    log=$logs/n$s.v$vi.$r
    [ -n "$LOCK" ] && { exec 9> "$LOCK"; flock 9; }
    "$cg" "$LIMIT" -- "$SWAPMOE" bench "$model" --mem "$LIMIT" -n "$N" --ctx "$CTX" --threads "$THREADS" --parallel "$s" $SWAPMOE_ARGS ${variants[$vi]} \
      > "$log.out" 2> "$log.log"
    rc=$?
    [ -n "$LOCK" ] && { flock -u 9; exec 9>&-; }
    t=$(sed -n 's/^decode: .* \([0-9.]*\) tok\/s\( aggregate.*\)*$/\1/p' "$log.out")
    read -r v u < <(sed -n 's/^experts: .*| read \([0-9.]*\) \([KMG]*i*B\)\/token .*/\1 \2/p' "$log.out")
    b=$(sed -n 's/^disk: busy \([0-9.]*\)%.*/\1/p' "$log.out")
    read -r wv wu < <(sed -n 's/^disk: .* read \([0-9.]*\) \([KMG]*i*B\)\/s while busy.*/\1 \2/p' "$log.out")
    read -r dv du < <(sed -n 's/^disk bandwidth: \([0-9.]*\) \([KMG]*i*B\)\/s at .*/\1 \2/p' "$log.out")
    a=$(sed -n 's/^I\/O bound: .*achieved\/bound \([0-9.]*\).*/\1/p' "$log.out")
    mb=""; [ -n "${v:-}" ] && mb=$(to_mib "$v" "$u")
    wb=""; [ -n "${wv:-}" ] && wb=$(awk -v m="$(to_mib "$wv" "$wu")" 'BEGIN { printf "%.2f", m / 1024 }')
    db=""; [ -n "${dv:-}" ] && db=$(awk -v m="$(to_mib "$dv" "$du")" 'BEGIN { printf "%.2f", m / 1024 }')
    if [ "$rc" = 0 ] && [ -n "$t" ]; then
      tps[$key]="${tps[$key]:-} $t"
      [ -n "$mb" ] && mib[$key]="${mib[$key]:-} $mb"
      [ -n "$b" ] && busy[$key]="${busy[$key]:-} $b"
      [ -n "$wb" ] && bwbusy[$key]="${bwbusy[$key]:-} $wb"
      [ -n "$db" ] && bw[$key]="${bw[$key]:-} $db"
      [ -n "$a" ] && ratio[$key]="${ratio[$key]:-} $a"
    fi
    printf 'round %d N=%-3s %s rc %-3s %6s tok/s  %8s MiB/token  busy %5s%%  %5s GiB/s while busy  disk %5s GiB/s  achieved/bound %5s  %s  (load %s)\n' \
      "$r" "$s" "[${variants[$vi]}]" "$rc" "${t:--}" "${mb:--}" "${b:--}" "${wb:--}" "${db:--}" "${a:--}" \
      "$(grep -o 'peak [0-9.]* MiB.*' "$log.log" | tail -1)" "$(cut -d' ' -f1 /proc/loadavg)"
  done
done
echo
echo "| streams | options | aggregate tok/s | x first row | MiB read/token | x first row | disk busy | GiB/s while busy | disk GiB/s after (BW(q)) | achieved / bound |"
echo "|---|---|---|---|---|---|---|---|---|---|"
t0=$(bench_median ${tps[${keys[0]}]:-}); m0=$(bench_median ${mib[${keys[0]}]:-})
for key in "${keys[@]}"; do
  s=${key%/*}; vi=${key#*/}
  t=$(bench_median ${tps[$key]:-}); mb=$(bench_median ${mib[$key]:-})
  echo "| $s | ${variants[$vi]:--} | $t | $(bench_ratio "$t" "$t0") | $mb | $(bench_ratio "$mb" "$m0") | $(bench_median ${busy[$key]:-})% |" \
       "$(bench_median ${bwbusy[$key]:-}) | $(bench_median ${bw[$key]:-}) | $(bench_median ${ratio[$key]:-}) |"
done
echo "(medians of $R runs)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
