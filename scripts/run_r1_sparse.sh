#!/usr/bin/env bash
# Issue 8, item 4: runs the full-shape DeepSeek-R1 671B Q4_K_M file (forged, sparse, 404 GB
# apparent) with `swapmoe run --mem` inside a memory cgroup at the budget, on this 24 GB
# machine, and prints what the run proves: it completes, the cgroup's peak, prompt and
# decode tokens/s, the expert-cache hit rate and the bytes read per token.
#
#   scripts/run_r1_sparse.sh [MODEL] [MEM=20G] [N=16]
#
# Environment: SWAPMOE (the swapmoe binary; default build/swapmoe), THREADS (2), CTX (256),
# PROMPT, POLICY (nextuse), LIMIT (the cgroup limit; default MEM), TIMEOUT (900 s),
# LOG (where the full stderr goes; default /tmp/run_r1_sparse.$$.log).
#
# The run takes the machine-wide memory lock (/work/big/.memlock, see notes) so that no
# other big run shares the 24 GB, and scripts/cgroup_run.sh drops the page cache first.
#
# Why the bytes read per token are meaningful although the file is made of holes: swapmoe
# reads a missing expert with O_DIRECT whatever it contains; a hole just reads as zeros
# (faster than a real disk, which is why the tokens/s here are NOT a disk measurement).
# What a hole-filled file does change is the routing: with all-zero weights every token
# picks the same experts (sigmoid(0) ties, broken by index), so the hit rate here is the
# one of a fixed expert set larger or smaller than the cache, not of real routing. The
# per-token I/O of real routing comes from the slice (scripts/bench_r1_slice.sh).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
model=${1:-/work/big/r1-671b-sparse.gguf}
mem=${2:-20G}
n=${3:-16}
swapmoe=${SWAPMOE:-$root/build/swapmoe}
threads=${THREADS:-2}
ctx=${CTX:-256}
prompt=${PROMPT:-"The capital of France is"}
policy=${POLICY:-nextuse}
limit=${LIMIT:-$mem}
timeout_s=${TIMEOUT:-900}
log=${LOG:-/tmp/run_r1_sparse.$$.log}
lock=${MEMLOCK:-/work/big/.memlock}

[ -x "$swapmoe" ] || { echo "run_r1_sparse: set SWAPMOE=/path/to/swapmoe (not executable: $swapmoe)" >&2; exit 1; }
[ -f "$model" ] || { echo "run_r1_sparse: no model file $model (swapmoe-forge --preset deepseek-r1-671b-q4km --sparse-all)" >&2; exit 1; }

echo "model: $model ($(du -h --apparent-size "$model" | cut -f1) apparent, $(du -h "$model" | cut -f1) on disk)"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $(awk '/MemAvailable/ { printf "%.1f GiB available", $2 / 1048576 }' /proc/meminfo)"
echo "command: swapmoe run --mem $mem --cache-policy $policy -t $threads --ctx $ctx -n $n --temp 0 --print-ids -p \"$prompt\" (cgroup $limit)"
"$swapmoe" plan "$model" --mem "$mem" --ctx "$ctx" | sed 's/^/plan: /'

start=$(date +%s.%N)
# flock waits for the other big runs; timeout keeps this one from hogging the machine.
flock "$lock" timeout "$timeout_s" "$root/scripts/cgroup_run.sh" "$limit" -- \
  /usr/bin/time -f "time: max RSS %M KiB, %e s wall, %U s user, %S s sys, %F major faults" \
  "$swapmoe" run "$model" --mem "$mem" --cache-policy "$policy" -t "$threads" --ctx "$ctx" -n "$n" \
  --temp 0 --print-ids -p "$prompt" 2> "$log"
rc=$?
end=$(date +%s.%N)
echo "stderr of the run ($log):"
sed 's/^/  /' "$log"
awk -v a="$start" -v b="$end" 'BEGIN { printf "wall (lock wait included): %.1f s\n", b - a }'
if [ "$rc" != 0 ]; then
  echo "run_r1_sparse: FAILED rc $rc (124: over TIMEOUT=$timeout_s s; 137: OOM-killed)" >&2
  exit "$rc"
fi
echo "run_r1_sparse: ok"
